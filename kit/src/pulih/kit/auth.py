"""Bearer-JWT authentication and the roles of the programme.

Claims: ``sub`` (who), ``role`` (agent, facilitator, clinic, national, admin, service),
``regency``, and ``unit_id`` for agents or ``clinic_id`` for clinics. Tokens are HS256 with the
regency's secret; ``pulih up`` prints development tokens for every role.

The national view (reporting with ``PULIH_REPORTING_MODE=national``, on the hub) serves the scope
:data:`NATIONAL_SCOPE` instead of a regency: its tokens carry ``"regency": "national"`` (``pulih
token national --scope national``), and a regency's token is refused there as another regency's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, ValidationError

from pulih.kit.errors import Forbidden, Unauthorized
from pulih.kit.settings import Settings

ALGORITHM = "HS256"

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

    def may_see_unit(self, unit_id: UUID) -> bool:
        """Agents see their own unit; facilitators and admins the whole regency."""
        if self.role in (Role.FACILITATOR, Role.ADMIN):
            return True
        return self.role is Role.AGENT and self.unit_id == unit_id


def issue_token(
    secret: str,
    *,
    sub: str,
    role: Role | str,
    regency: str,
    unit_id: UUID | str | None = None,
    clinic_id: str | None = None,
    ttl: timedelta = timedelta(hours=12),
) -> str:
    """Sign a token for a caller (used by ``pulih token`` and the tests)."""
    now = datetime.now(UTC)
    claims: dict[str, object] = {
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
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_token(token: str, secret: str, regency: str) -> Principal:
    """Verify a token and return its principal; 401 if invalid, 403 for another regency."""
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]})
        principal = Principal.model_validate(claims)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token_expired", "the token has expired") from exc
    except (jwt.PyJWTError, ValidationError) as exc:
        raise Unauthorized("invalid_token", "the bearer token is not valid") from exc
    if principal.regency != regency:
        serves = "the national view" if regency == NATIONAL_SCOPE else f"regency {regency}"
        raise Forbidden("wrong_regency", f"this deployment serves {serves}")
    if principal.role is Role.AGENT and principal.unit_id is None:
        raise Unauthorized("invalid_token", "an agent token must name its unit_id")
    if principal.role is Role.CLINIC and not principal.clinic_id:
        raise Unauthorized("invalid_token", "a clinic token must name its clinic_id")
    return principal


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the caller, from ``Authorization: Bearer …``."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing_token", "send Authorization: Bearer <token>")
    settings = request.app.state.settings
    return decode_token(credentials.credentials, settings.jwt_secret.get_secret_value(), scope_of(settings))


def scope_of(settings: Settings) -> str:
    """What a deployment's tokens must name as ``regency``: its regency's code, or
    :data:`NATIONAL_SCOPE` for the national view."""
    return NATIONAL_SCOPE if settings.reporting_mode == "national" else settings.regency


CurrentUser = Annotated[Principal, Depends(current_principal)]


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


def service_token(secret: str, regency: str, service: str) -> str:
    """A short-lived token for ``service`` (``referral``…) to call another Pulih service. Its
    ``sub`` names the service, so the callee grants each service only what it needs."""
    return issue_token(secret, sub=service, role=Role.SERVICE, regency=regency, ttl=SERVICE_TOKEN_TTL)


def require(principal: Principal, *roles: Role) -> Principal:
    """403 unless the principal has one of ``roles``."""
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden("forbidden_role", f"this needs the role {allowed}")
    return principal
