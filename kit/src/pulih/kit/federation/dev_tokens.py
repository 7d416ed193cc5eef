"""Development tokens of a local federation: a facilitator and an admin per regency, a national
one, and each regency's own set as ``pulih up`` names them. Signed with the key derived from the
development secret (or ``PULIH_JWT_SECRET``), which each regency's JWKS holds; never valid in
production (another issuer and key)."""

from __future__ import annotations

from pathlib import Path

from pulih.kit.auth import NATIONAL_SCOPE, Role, issue_token
from pulih.kit.federation import names
from pulih.kit.federation.layout import Layout, nats_url
from pulih.kit.federation.secrets import Secrets
from pulih.kit.settings import Settings


def development_tokens(settings: Settings, codes: list[str]) -> dict[str, str]:
    """Tokens for trying the APIs by hand: a facilitator and an admin per regency, and a national
    one for the national reporting. Signed with the development secret (or ``PULIH_JWT_SECRET``)."""
    secret = settings.jwt_secret.get_secret_value()
    tokens = {}
    for code in codes:
        tokens[f"FACILITATOR_TOKEN_{code}"] = issue_token(
            secret, sub=f"fasilitator-{code}-dev", role=Role.FACILITATOR, regency=code
        )
        tokens[f"ADMIN_TOKEN_{code}"] = issue_token(
            secret, sub=f"admin-{code}-dev", role=Role.ADMIN, regency=code
        )
    tokens["NATIONAL_TOKEN"] = issue_token(secret, sub="bnn-dev", role=Role.NATIONAL, regency=NATIONAL_SCOPE)
    return tokens


def regency_tokens(settings: Settings, code: str) -> dict[str, str]:
    """A regency's development tokens as ``pulih up`` names them (FACILITATOR_TOKEN…)."""
    from pulih.kit.local_regency import development_tokens as regency_development_tokens

    return regency_development_tokens(settings.model_copy(update={"regency": code}), from_secret=True)


def write_tokens(path: Path, tokens: dict[str, str]) -> None:
    """``tokens`` as ``export NAME=value`` lines, readable by the owner only."""
    path.write_text("".join(f"export {k}={v}\n" for k, v in tokens.items()))
    path.chmod(0o600)


def write_token_files(settings: Settings, lay: Layout) -> tuple[dict[str, str], Path]:
    """``<data dir>/tokens.env`` (the federation's tokens and the hub administrator's
    ``HUB_NATS_URL``) and each regency's ``r<code>/tokens.env``; the federation's tokens and
    where they are."""
    secrets_file = lay.data_dir / "secrets.json"
    tokens = development_tokens(settings, [p.code for p in lay.regencies])
    hub_env = {
        "HUB_NATS_URL": nats_url(
            names.HUB_ADMIN_USER, Secrets.load_or_create(secrets_file).hub_admin(), lay.hub_client_port
        )
    }
    tokens_file = lay.data_dir / "tokens.env"
    write_tokens(tokens_file, {**tokens, **hub_env})
    for place in lay.regencies:
        write_tokens(place.data_dir / "tokens.env", regency_tokens(settings, place.code))
    return tokens, tokens_file
