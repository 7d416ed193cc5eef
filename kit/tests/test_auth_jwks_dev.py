"""With no provider, ``pulih up`` signs its tokens with a local key pair made once under the data
dir (0600) and writes its JWKS there; services read it through ``PULIH_JWKS_URL=file://…``, the
same verification as against a provider."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from pulih.kit import dev_keys
from pulih.kit.auth import Role, authenticate, issue_token
from pulih.kit.errors import Unauthorized
from pulih.kit.local_regency import development_tokens
from pulih.kit.settings import DEV_JWT_SECRET, Settings


def test_up_signs_with_a_local_key_whose_jwks_the_services_read(tmp_path: Path) -> None:
    minting = Settings(PULIH_DATA_DIR=tmp_path, PULIH_REGENCY="3301")
    tokens = development_tokens(minting)
    key_file = tmp_path / dev_keys.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert development_tokens(minting).keys() == tokens.keys() and key_file.exists()  # made once
    assert dev_keys.local_key(tmp_path).public_key() == dev_keys.local_key(tmp_path).public_key()

    service = Settings(
        PULIH_DATA_DIR=tmp_path, PULIH_REGENCY="3301", PULIH_JWKS_URL=(tmp_path / "jwks.json").as_uri()
    )
    roles = {name: authenticate(token, service).role for name, token in tokens.items()}
    assert roles["FACILITATOR_TOKEN"] is Role.FACILITATOR and roles["CLINIC_TOKEN"] is Role.CLINIC
    published = {key["kid"] for key in json.loads((tmp_path / "jwks.json").read_text())["keys"]}
    local = dev_keys.kid_of(dev_keys.local_key(tmp_path))
    assert published == {local, dev_keys.kid_of(dev_keys.key_from_secret(DEV_JWT_SECRET))}
    # the deprecated secret's tokens (pulih simulate, the demo) are still accepted; another's not
    assert (
        authenticate(issue_token(DEV_JWT_SECRET, sub="s", role="admin", regency="3301"), service).sub == "s"
    )
    with pytest.raises(Unauthorized):
        authenticate(issue_token("another-secret", sub="s", role="admin", regency="3301"), service)


def test_a_service_with_no_provider_accepts_only_its_secrets_key(tmp_path: Path) -> None:
    service = Settings(PULIH_DATA_DIR=tmp_path, PULIH_JWT_SECRET="a-secret-of-this-test-only")
    assert authenticate(
        issue_token("a-secret-of-this-test-only", sub="f", role="facilitator", regency="3301"), service
    )
    with pytest.raises(Unauthorized):
        authenticate(
            issue_token(dev_keys.local_key(tmp_path), sub="f", role="facilitator", regency="3301"), service
        )


def test_production_needs_an_identity_provider(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PULIH_OIDC_ISSUER"):
        Settings(PULIH_ENV="production", PULIH_DATA_DIR=tmp_path, PULIH_MASTER_KEY="x")
    production = Settings(
        PULIH_ENV="production",
        PULIH_DATA_DIR=tmp_path,
        PULIH_MASTER_KEY="x",
        PULIH_OIDC_ISSUER="https://sso.example/realms/pulih",
    )
    assert production.oidc_issuer and production.jwt_secret.get_secret_value() == DEV_JWT_SECRET
