"""Production signs no token: it starts only with an OpenID Connect provider to verify against
(``PULIH_OIDC_ISSUER``), refuses the development secret (whose key would let every service
holding it mint a facilitator's token), and nowhere takes an empty secret."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from pulih.kit.errors import Unavailable
from pulih.kit.service_tokens import IDENTITY_SCOPE, service_bearer
from pulih.kit.settings import Settings

ISSUER = "https://sso.test/realms/pulih"


@pytest.fixture
def production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A production environment but for its identity provider, as a service reads it at start."""
    for name in ("PULIH_JWT_SECRET", "PULIH_OIDC_ISSUER", "PULIH_JWKS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PULIH_ENV", "production")
    monkeypatch.setenv("PULIH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PULIH_MASTER_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    return tmp_path


def test_production_without_an_issuer_is_refused(production: Path) -> None:
    with pytest.raises(ValueError, match="PULIH_OIDC_ISSUER must be set when PULIH_ENV=production"):
        Settings()


def test_a_jwks_url_alone_is_no_provider_in_production(
    production: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an issuer the services would check tokens for the development issuer."""
    monkeypatch.setenv("PULIH_JWKS_URL", "https://sso.test/realms/pulih/protocol/openid-connect/certs")
    with pytest.raises(ValueError, match="PULIH_OIDC_ISSUER must be set"):
        Settings()


def test_production_with_only_a_jwt_secret_is_refused(
    production: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULIH_JWT_SECRET", base64.b64encode(secrets.token_bytes(48)).decode())
    with pytest.raises(ValueError, match="PULIH_JWT_SECRET is for development only"):
        Settings()
    monkeypatch.setenv("PULIH_OIDC_ISSUER", ISSUER)  # a provider does not make the secret welcome
    with pytest.raises(ValueError, match="PULIH_JWT_SECRET is for development only"):
        Settings()


def test_production_with_an_issuer_starts(production: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULIH_OIDC_ISSUER", ISSUER)
    assert Settings().oidc_issuer == ISSUER


@pytest.mark.parametrize("env", ["development", "production"])
def test_an_empty_jwt_secret_is_refused(production: Path, monkeypatch: pytest.MonkeyPatch, env: str) -> None:
    monkeypatch.setenv("PULIH_ENV", env)
    monkeypatch.setenv("PULIH_OIDC_ISSUER", ISSUER)
    monkeypatch.setenv("PULIH_JWT_SECRET", "")
    with pytest.raises(ValueError, match="PULIH_JWT_SECRET is empty"):
        Settings()


async def test_with_a_provider_a_service_without_its_client_signs_no_token(tmp_path: Path) -> None:
    """A token signed here would be refused by the callee, which verifies the provider's."""
    settings = Settings(PULIH_DATA_DIR=tmp_path, PULIH_OIDC_ISSUER=ISSUER)
    with pytest.raises(Unavailable) as refusal:
        await service_bearer(settings, "referral", IDENTITY_SCOPE)
    assert refusal.value.code == "no_client_credentials"
    assert "PULIH_OIDC_CLIENT_ID" in refusal.value.message


def test_pulih_token_makes_no_token_in_production(
    production: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pulih.kit.cli import main

    monkeypatch.setenv("PULIH_OIDC_ISSUER", ISSUER)
    assert main(["token", "facilitator"]) == 2
    answer = capsys.readouterr()
    assert answer.out == ""
    assert "identity provider" in answer.err and ISSUER in answer.err
