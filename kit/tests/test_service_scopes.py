"""A service's client-credentials token opens only the routes that ask for a scope it was
granted: a route taking people (``CurrentUser``, ``allow``) refuses it, and a route that takes
services too (``CurrentCaller``) refuses it without its scope. Tokens are shaped as Keycloak's
realm (deploy/keycloak) makes them and verified against a JWKS the test writes."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm

from pulih.kit.auth import CurrentCaller, CurrentUser, Role, allow, require_scope
from pulih.kit.errors import install_error_handlers
from pulih.kit.service_tokens import IDENTITY_SCOPE
from pulih.kit.settings import Settings

ISSUER = "https://sso.test/realms/pulih"
REGENCY = "3301"
KID = "test-key"


class Provider:
    """An ES256 key whose public half the test's JWKS file holds."""

    def __init__(self, directory: Path) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(ECAlgorithm.to_jwk(self.key.public_key())) | {
            "kid": KID,
            "alg": "ES256",
            "use": "sig",
        }
        self.jwks = directory / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": [jwk]}))

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        base = {"iss": ISSUER, "aud": ["pulih"], "exp": now + 60, "iat": now, "regency": REGENCY}
        return jwt.encode(base | claims, self.key, "ES256", {"kid": KID})

    def service(self, scope: str) -> dict[str, str]:
        """A client-credentials token of referral's client, as the realm's mappers shape it."""
        token = self.token(
            sub=str(uuid.uuid4()),
            azp="pulih-referral",
            service="referral",
            roles=["service"],
            scope=scope,
        )
        return {"Authorization": f"Bearer {token}"}

    def facilitator(self) -> dict[str, str]:
        token = self.token(sub=str(uuid.uuid4()), roles=["facilitator"], scope="openid profile")
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def provider(tmp_path: Path) -> Provider:
    return Provider(tmp_path)


@pytest.fixture
async def api(provider: Provider, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.settings = Settings(
        PULIH_DATA_DIR=tmp_path,
        PULIH_REGENCY=REGENCY,
        PULIH_OIDC_ISSUER=ISSUER,
        PULIH_JWKS_URL=provider.jwks.as_uri(),
    )
    install_error_handlers(app)

    @app.get("/identity")
    async def identity(caller: CurrentCaller) -> dict[str, str]:
        require_scope(caller, IDENTITY_SCOPE)
        return {"sub": caller.sub}

    @app.get("/units", dependencies=[allow(Role.FACILITATOR)])
    async def units() -> dict[str, str]:
        return {}

    @app.get("/clinics")
    async def clinics(person: CurrentUser) -> dict[str, str]:
        return {"sub": person.sub}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        yield http


async def test_a_service_token_with_the_scope_reads_where_the_scope_allows(
    api: httpx.AsyncClient, provider: Provider
) -> None:
    r = await api.get("/identity", headers=provider.service(f"profile {IDENTITY_SCOPE} email"))
    assert r.status_code == 200, r.text
    assert r.json() == {"sub": "referral"}


async def test_a_service_token_without_the_scope_is_403(api: httpx.AsyncClient, provider: Provider) -> None:
    for scope in ("profile email", "outreach.identity.read", ""):
        r = await api.get("/identity", headers=provider.service(scope))
        assert (r.status_code, r.json()["code"]) == (403, "insufficient_scope"), scope


@pytest.mark.parametrize("path", ["/units", "/clinics"])
async def test_a_service_token_opens_no_route_for_people_whatever_its_scope(
    api: httpx.AsyncClient, provider: Provider, path: str
) -> None:
    r = await api.get(path, headers=provider.service(IDENTITY_SCOPE))
    assert (r.status_code, r.json()["code"]) == (403, "forbidden_role"), r.text


async def test_people_are_judged_by_their_role_not_a_scope(
    api: httpx.AsyncClient, provider: Provider
) -> None:
    for path in ("/identity", "/units", "/clinics"):
        r = await api.get(path, headers=provider.facilitator())
        assert r.status_code == 200, (path, r.text)
