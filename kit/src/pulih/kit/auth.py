"""Bearer-JWT authentication and the roles of the programme.

Claims: ``sub`` (who), ``role`` (agent, facilitator, clinic, national, admin, service),
``regency``, and ``unit_id`` for agents or ``clinic_id`` for clinics (:func:`principal_from` also
reads a provider's role lists). Services only verify: asymmetric signatures against the OpenID
Connect provider's JWKS (:mod:`pulih.kit.jwks`), with its issuer and audience. With no provider,
``pulih up`` signs development tokens with a local key pair and serves its JWKS
(:mod:`pulih.kit.dev_keys`), and prints tokens for every role.

A service calling another (role ``service``, a client-credentials token) is let in only where a
route takes :data:`CurrentCaller` and its token carries the scope that route asks for
(:func:`require_scope`); :data:`CurrentUser`, and so :func:`allow`, refuse it everywhere else.

The national view (reporting with ``PULIH_REPORTING_MODE=national``, on the hub) serves the scope
:data:`NATIONAL_SCOPE` instead of a regency: its tokens carry ``"regency": "national"`` (``pulih
token national --scope national``), and a regency's token is refused there as another regency's.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any
from uuid import UUID

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, ValidationError

from pulih.kit import dev_keys
from pulih.kit.errors import Forbidden, Unauthorized, Unavailable
from pulih.kit.jwks import RemoteKeys, StaticKeys, TokenVerifier, discovered_jwks_url
from pulih.kit.settings import Settings

DEFAULT_AUDIENCE = "pulih"
"""The ``aud`` of development tokens, and ``PULIH_OIDC_AUDIENCE``'s default."""

NATIONAL_SCOPE = "national"
"""The ``regency`` claim of a token for the national view: the whole federation, aggregates only."""


class Role(StrEnum):
    """Who a caller is in the programme."""

    AGENT = "agent"
    """Agen Pemulihan: a trained villager; sees their own unit only."""
    FACILITATOR = "facilitator"
    """BNNK staff who coach units; the whole regency."""
    CLINIC = "clinic"
    """A clinic: only the referrals addressed to it."""
    NATIONAL = "national"
    """BNN national office: aggregates only."""
    ADMIN = "admin"
    """The regency's system administrator."""
    SERVICE = "service"
    """Another Pulih service calling on its own behalf."""


class Principal(BaseModel):
    """The authenticated caller."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    sub: str
    role: Role
    regency: str
    unit_id: UUID | None = None
    clinic_id: str | None = None
    scopes: tuple[str, ...] = ()
    """The token's ``scope`` (a service's client-credentials token: what it was granted)."""

    def may_see_unit(self, unit_id: UUID) -> bool:
        """Agents see their own unit; facilitators and admins the whole regency."""
        if self.role in (Role.FACILITATOR, Role.ADMIN):
            return True
        return self.role is Role.AGENT and self.unit_id == unit_id


def issue_token(
    secret: str | Ed25519PrivateKey,
    *,
    sub: str,
    role: Role | str,
    regency: str,
    unit_id: UUID | str | None = None,
    clinic_id: str | None = None,
    ttl: timedelta = timedelta(hours=12),
    scope: str | None = None,
    audience: str = DEFAULT_AUDIENCE,
) -> str:
    """Sign a development token for a caller (``pulih token``, ``pulih up`` and the tests).

    It is EdDSA-signed by a development key (:mod:`pulih.kit.dev_keys`): ``pulih up``'s local key,
    or the key derived from a development secret when ``secret`` is a string, with ``iss``
    :data:`~pulih.kit.dev_keys.DEV_ISSUER` and ``aud`` ``pulih``. Production tokens come from the
    OpenID Connect provider; no service signs any."""
    key = dev_keys.key_from_secret(secret) if isinstance(secret, str) else secret
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "iss": dev_keys.DEV_ISSUER,
        "aud": audience,
        "sub": sub,
        "role": str(Role(role)),
        "regency": regency,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    if unit_id is not None:
        claims["unit_id"] = str(unit_id)
    if clinic_id is not None:
        claims["clinic_id"] = clinic_id
    if scope is not None:
        claims["scope"] = scope
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": dev_keys.kid_of(key)})


def principal_from(claims: dict[str, Any]) -> Principal:
    """The principal a verified token's claims describe.

    Pulih's own claim names are read as they are (``role``, ``regency``, ``unit_id``,
    ``clinic_id``); a provider that has no ``role`` claim gives its roles as a ``roles`` list,
    ``realm_access.roles`` (Keycloak's realm roles) or ``resource_access.<aud>.roles``, of which
    exactly one must be a Pulih :class:`Role`. A service account names its service in a ``service``
    claim, which becomes its ``sub``."""
    mapped = dict(claims)
    if not isinstance(claims.get("role"), str):
        granted: list[Any] = list(claims.get("roles") or [])
        realm_access = claims.get("realm_access")
        if isinstance(realm_access, dict):
            granted += realm_access.get("roles") or []
        resource_access = claims.get("resource_access")
        if isinstance(resource_access, dict):
            for client in resource_access.values():
                if isinstance(client, dict):
                    granted += client.get("roles") or []
        pulih_roles = {role for role in Role if role.value in granted}
        if len(pulih_roles) != 1:
            raise ValueError("the token must carry exactly one Pulih role")
        mapped["role"] = pulih_roles.pop()
    if isinstance(claims.get("service"), str) and mapped["role"] == Role.SERVICE:
        mapped["sub"] = claims["service"]
    if isinstance(claims.get("scope"), str):
        mapped["scopes"] = tuple(claims["scope"].split())
    return Principal.model_validate(mapped)


def decode_token(token: str, secret: str, regency: str) -> Principal:
    """Verify a development token signed by the key derived from ``secret`` and return its
    principal; 401 if invalid, 403 for another regency (see :func:`authenticate`)."""
    return _checked(token, dev_verifier(secret, DEFAULT_AUDIENCE), regency)


def authenticate(token: str, settings: Settings) -> Principal:
    """Verify a bearer token as the deployment of ``settings`` does (:func:`verifier_of`) and
    return its principal; 401 if invalid, 403 for another regency or the national view's."""
    return _checked(token, verifier_of(settings), scope_of(settings))


def _checked(token: str, verifier: TokenVerifier, regency: str) -> Principal:
    """:func:`authenticate`'s checks once the verifier is known.

    A device sends the same token with every request for hours, so a token once verified is
    remembered (:func:`_verified`, the last :data:`VERIFIED_TOKENS`, per key set) and only its
    expiry is checked again: the signature, the JSON and the claims are not worked out anew each
    time."""
    try:
        principal, expires = _verified(token, verifier, verifier.keys.generation)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token_expired", "the token has expired") from exc
    except jwt.PyJWKClientConnectionError as exc:
        raise Unavailable("keys_unavailable", "the identity provider's keys could not be read") from exc
    except (jwt.PyJWTError, ValidationError, ValueError) as exc:
        raise Unauthorized("invalid_token", "the bearer token is not valid") from exc
    if expires <= time.time():
        raise Unauthorized("token_expired", "the token has expired")
    if principal.regency != regency:
        serves = "the national view" if regency == NATIONAL_SCOPE else f"regency {regency}"
        raise Forbidden("wrong_regency", f"this deployment serves {serves}")
    if principal.role is Role.AGENT and principal.unit_id is None:
        raise Unauthorized("invalid_token", "an agent token must name its unit_id")
    if principal.role is Role.CLINIC and not principal.clinic_id:
        raise Unauthorized("invalid_token", "a clinic token must name its clinic_id")
    return principal


VERIFIED_TOKENS = 4096
"""How many verified tokens :func:`authenticate` remembers (a regency's devices and services)."""


@lru_cache(maxsize=VERIFIED_TOKENS)
def _verified(token: str, verifier: TokenVerifier, generation: int) -> tuple[Principal, float]:
    """The principal of a token whose signature and claims hold, and when it expires (a refused
    token raises, and is not remembered). ``generation`` is the key set's: a fetched key set, in
    which a key may have been withdrawn, verifies anew."""
    claims = verifier.claims(token)
    return principal_from(claims), float(claims["exp"])


@lru_cache(maxsize=32)
def dev_verifier(secret: str, audience: str) -> TokenVerifier:
    """The verifier of development tokens signed by the key derived from ``secret``."""
    keys = StaticKeys(dev_keys.jwks_of(dev_keys.key_from_secret(secret)))
    return TokenVerifier(keys, issuer=dev_keys.DEV_ISSUER, audience=audience)


@lru_cache(maxsize=32)
def _remote_verifier(
    url: str | None, issuer: str, audience: str, lifespan_seconds: float, min_refresh_seconds: float
) -> TokenVerifier:
    try:
        jwks_url = url or discovered_jwks_url(issuer)
    except OSError as exc:
        raise Unavailable(
            "keys_unavailable", "the identity provider's configuration could not be read"
        ) from exc
    keys = RemoteKeys(jwks_url, lifespan_seconds=lifespan_seconds, min_refresh_seconds=min_refresh_seconds)
    return TokenVerifier(keys, issuer=issuer, audience=audience)


def verifier_of(settings: Settings) -> TokenVerifier:
    """How a deployment verifies tokens: against the OpenID Connect provider's JWKS
    (``PULIH_OIDC_ISSUER``, ``PULIH_JWKS_URL``), against ``pulih up``'s (``PULIH_JWKS_URL`` alone,
    issuer :data:`~pulih.kit.dev_keys.DEV_ISSUER`), or with neither, against the key derived from
    ``PULIH_JWT_SECRET`` (development). One verifier, and one key cache, per configuration."""
    if settings.jwks_url is None and settings.oidc_issuer is None:
        return dev_verifier(settings.jwt_secret.get_secret_value(), settings.oidc_audience)
    return _remote_verifier(
        settings.jwks_url,
        settings.oidc_issuer or dev_keys.DEV_ISSUER,
        settings.oidc_audience,
        settings.jwks_cache_seconds,
        settings.jwks_min_refresh_seconds,
    )


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: a person calling, from ``Authorization: Bearer …``.

    A service's token is refused here (403 ``forbidden_role``): a service calls only the routes
    that take :data:`CurrentCaller` and check its scope (:func:`require_scope`), so a
    client-credentials token granted one narrow scope opens nothing else."""
    principal = await current_caller(request, credentials)
    if principal.role is Role.SERVICE:
        raise Forbidden("forbidden_role", "a service token is accepted only where its scope allows")
    return principal


async def current_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the caller, a person or a service, from ``Authorization: Bearer …``.
    A route that takes it checks a service's scope itself (:func:`require_scope`)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing_token", "send Authorization: Bearer <token>")
    settings = request.app.state.settings
    keys = verifier_of(settings).keys
    if isinstance(keys, RemoteKeys) and keys.stale():  # fetch the provider's keys off the event loop
        try:
            await asyncio.to_thread(keys.prefetch)
        except jwt.PyJWTError as exc:
            raise Unavailable("keys_unavailable", "the identity provider's keys could not be read") from exc
    return authenticate(credentials.credentials, settings)


def scope_of(settings: Settings) -> str:
    """What a deployment's tokens must name as ``regency``: its regency's code, or
    :data:`NATIONAL_SCOPE` for the national view."""
    return NATIONAL_SCOPE if settings.reporting_mode == "national" else settings.regency


CurrentUser = Annotated[Principal, Depends(current_principal)]
"""A person: agents, facilitators, clinics, the national office, admins; never a service."""

CurrentCaller = Annotated[Principal, Depends(current_caller)]
"""A person or a service; the route checks a service's scope (:func:`require_scope`)."""


def allow(*roles: Role) -> Any:
    """A route dependency that refuses every other role with 403 **before** the request's body or
    query is validated, so a caller with no right learns nothing about the request's shape::

        @router.post("/units", dependencies=[allow(Role.FACILITATOR, Role.ADMIN)])
    """

    async def allowed(principal: CurrentUser) -> Principal:
        return require(principal, *roles)

    return Depends(allowed)


SERVICE_TOKEN_TTL = timedelta(seconds=60)
"""How long a token one service makes to call another lives: long enough for one call."""


def service_token(secret: str, regency: str, service: str, scope: str | None = None) -> str:
    """A short-lived development token for ``service`` (``referral``…) to call another Pulih
    service, granted ``scope`` (space-separated scopes). Its ``sub`` names the service, so the
    callee grants each service only what it needs; without a scope it opens no route."""
    return issue_token(
        secret, sub=service, role=Role.SERVICE, regency=regency, ttl=SERVICE_TOKEN_TTL, scope=scope
    )


def require_scope(principal: Principal, scope: str) -> Principal:
    """403 ``insufficient_scope`` unless a service's token was granted ``scope`` (its ``scope``
    claim: what the provider gave its client-credentials grant). People's tokens pass: their
    role decides (:func:`require`)."""
    if principal.role is Role.SERVICE and scope not in principal.scopes:
        raise Forbidden("insufficient_scope", f"this needs a service token with the scope {scope}")
    return principal


def require(principal: Principal, *roles: Role) -> Principal:
    """403 unless the principal has one of ``roles``."""
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden("forbidden_role", f"this needs the role {allowed}")
    return principal
