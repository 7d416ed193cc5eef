"""Services verify a provider's tokens against its JWKS, served here by the test on a free port:
keys rotate (a new ``kid`` is fetched, a withdrawn one refused), and a token of another issuer,
for another audience, expired, unsigned or HS256-signed with the public key as its secret is
refused with 401 and the kit's error body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from pulih.kit.auth import CurrentUser, Role, authenticate, principal_from
from pulih.kit.errors import Unauthorized, install_error_handlers
from pulih.kit.settings import Settings

ISSUER = "https://sso.test/realms/pulih"
AUDIENCE = "pulih"
REGENCY = "3301"


@dataclass
class Provider:
    """A JWKS endpoint whose keys a test changes, and the requests it answered."""

    keys: dict[str, Any] = field(default_factory=dict)  # kid -> private key
    fetches: int = 0
    url: str = ""

    def publish(self, *kids: str) -> None:
        self.published = kids

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(kid, self.keys[kid]) for kid in self.published]}

    def new_key(self, kind: str = "ec") -> str:
        kid = f"{kind}-{uuid.uuid4().hex[:8]}"
        self.keys[kid] = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if kind == "rsa"
            else ec.generate_private_key(ec.SECP256R1())
        )
        return kid

    def token(self, kid: str, **overrides: Any) -> str:
        key = self.keys[kid]
        algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "3b6a8f0e-keycloak-user",
            "exp": now + 300,
            "iat": now,
            "regency": REGENCY,
            "realm_access": {"roles": ["default-roles-pulih", "offline_access", "facilitator"]},
        }
        claims.update(overrides)
        return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm, {"kid": kid})


def public_jwk(kid: str, key: Any) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        jwk["alg"] = "RS256"
    else:
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        jwk["alg"] = "ES256"
    return {**jwk, "kid": kid, "use": "sig"}


@pytest.fixture
def provider() -> Iterator[Provider]:
    state = Provider()
    state.publish()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches += 1
            body = json.dumps(state.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/realms/pulih/protocol/openid-connect/certs"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def settings_of(provider: Provider, tmp_path: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "PULIH_REGENCY": REGENCY,
        "PULIH_DATA_DIR": tmp_path,
        "PULIH_OIDC_ISSUER": ISSUER,
        "PULIH_OIDC_AUDIENCE": AUDIENCE,
        "PULIH_JWKS_URL": provider.url,
        # one Settings per test: a fresh verifier (the cache is per configuration)
        "PULIH_JWKS_CACHE_SECONDS": 300 + (hash(tmp_path) % 1000) / 1000,
        "PULIH_JWKS_MIN_REFRESH_SECONDS": 0,
    }
    values.update(extra)
    return Settings(**values)


def refused(token: str, settings: Settings) -> str:
    with pytest.raises(Unauthorized) as refusal:
        authenticate(token, settings)
    return refusal.value.code


def test_a_rotated_key_is_fetched_and_a_withdrawn_one_refused(provider: Provider, tmp_path: Path) -> None:
    first = provider.new_key("rsa")
    provider.publish(first)
    settings = settings_of(provider, tmp_path)
    old = provider.token(first)
    principal = authenticate(old, settings)
    assert (principal.role, principal.regency, principal.sub) == (
        Role.FACILITATOR,
        REGENCY,
        "3b6a8f0e-keycloak-user",
    )

    second = provider.new_key("ec")  # the provider rotates: a new kid, the old one withdrawn
    provider.publish(second)
    assert authenticate(provider.token(second), settings).role is Role.FACILITATOR
    assert refused(old, settings) == "invalid_token"
    assert provider.fetches == 3  # the first, the refresh for the new kid, one for the withdrawn one


def test_unknown_kids_refetch_the_key_set_at_most_once_per_interval(
    provider: Provider, tmp_path: Path
) -> None:
    kid = provider.new_key()
    provider.publish(kid)
    settings = settings_of(provider, tmp_path, PULIH_JWKS_MIN_REFRESH_SECONDS=60)
    authenticate(provider.token(kid), settings)
    stranger = provider.new_key()  # never published: a made-up kid, sent again and again
    for _ in range(20):
        assert refused(provider.token(stranger), settings) == "invalid_token"
    assert provider.fetches == 2  # the first fetch, and one refresh for the unknown kid


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"iss": "https://evil.test/realms/pulih"}, "invalid_token"),
        ({"aud": "another-app"}, "invalid_token"),
        ({"exp": -60}, "token_expired"),  # past the 30 s of clock skew allowed
        ({"iat": 120}, "invalid_token"),  # issued two minutes from now
        ({"realm_access": {"roles": ["offline_access"]}}, "invalid_token"),  # no Pulih role
        ({"realm_access": {"roles": ["admin", "facilitator"]}}, "invalid_token"),  # two
        ({"realm_access": None, "roles": ["agent"]}, "invalid_token"),  # an agent with no unit_id
    ],
)
def test_a_token_of_another_issuer_audience_or_time_is_refused(
    provider: Provider, tmp_path: Path, overrides: dict[str, Any], code: str
) -> None:
    kid = provider.new_key()
    provider.publish(kid)
    now = int(time.time())  # times are given from now: a run collects its tests minutes before they run
    given = {claim: now + value if claim in ("exp", "iat") else value for claim, value in overrides.items()}
    assert refused(provider.token(kid, **given), settings_of(provider, tmp_path)) == code


def test_a_token_from_a_provider_whose_clock_is_seconds_ahead_is_taken(
    provider: Provider, tmp_path: Path
) -> None:
    kid = provider.new_key()
    provider.publish(kid)
    ahead = int(time.time()) + 5
    token = provider.token(kid, iat=ahead, nbf=ahead)
    assert authenticate(token, settings_of(provider, tmp_path)).role is Role.FACILITATOR


def test_hs256_with_the_public_key_as_secret_and_unsigned_tokens_are_refused(
    provider: Provider, tmp_path: Path
) -> None:
    kid = provider.new_key("rsa")
    provider.publish(kid)
    settings = settings_of(provider, tmp_path)
    genuine = jwt.decode(provider.token(kid), options={"verify_signature": False})
    pem = (
        provider.keys[kid]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": kid}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(genuine).encode()).rstrip(b"=")
    mac = hmac.new(pem, header + b"." + payload, hashlib.sha256).digest()
    confused = b".".join([header, payload, base64.urlsafe_b64encode(mac).rstrip(b"=")]).decode()
    assert refused(confused, settings) == "invalid_token"
    unsigned = jwt.encode(genuine, "", algorithm="none", headers={"kid": kid})
    assert refused(unsigned, settings) == "invalid_token"
    eddsa = jwt.encode(genuine, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})
    assert refused(eddsa, settings) == "invalid_token"  # the kid's key is RSA: not its algorithm


def test_provider_claims_map_to_the_principal() -> None:
    unit = uuid.uuid4()
    agent = principal_from({"sub": "u1", "regency": REGENCY, "roles": ["agent"], "unit_id": str(unit)})
    assert (agent.role, agent.unit_id) == (Role.AGENT, unit)
    service = principal_from(
        {
            "sub": "service-account-uuid",
            "regency": REGENCY,
            "resource_access": {"pulih-referral": {"roles": ["service"]}},
            "service": "referral",
            "scope": "outreach.identity",
        }
    )
    assert (service.role, service.sub, service.scopes) == (Role.SERVICE, "referral", ("outreach.identity",))


async def test_a_service_answers_a_refused_token_with_401_and_the_error_body(
    provider: Provider, tmp_path: Path
) -> None:
    kid = provider.new_key()
    provider.publish(kid)
    app = FastAPI()
    install_error_handlers(app)
    app.state.settings = settings_of(provider, tmp_path)

    @app.get("/v1/me")
    async def me(principal: CurrentUser) -> dict[str, str]:
        return {"role": principal.role.value}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as http:
        ok = await http.get("/v1/me", headers={"Authorization": f"Bearer {provider.token(kid)}"})
        assert (ok.status_code, ok.json()) == (200, {"role": "facilitator"})
        other = provider.token(kid, iss="https://evil.test/realms/pulih")
        r = await http.get("/v1/me", headers={"Authorization": f"Bearer {other}"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json() == {
            "code": "invalid_token",
            "message": "the bearer token is not valid",
            "field": None,
        }


async def test_an_unreachable_provider_is_503_not_401(tmp_path: Path) -> None:
    """A service that cannot read the provider's keys says so (503), and refuses nobody as invalid."""
    app = FastAPI()
    install_error_handlers(app)
    closed = Provider(url="http://127.0.0.1:9/realms/pulih/protocol/openid-connect/certs")
    app.state.settings = settings_of(closed, tmp_path)

    @app.get("/v1/me")
    async def me(principal: CurrentUser) -> dict[str, str]:
        return {"role": principal.role.value}

    token = jwt.encode({"sub": "x"}, ec.generate_private_key(ec.SECP256R1()), "ES256", {"kid": "k"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as http:
        r = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert (r.status_code, r.json()["code"]) == (503, "keys_unavailable")
