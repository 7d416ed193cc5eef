"""Tokens one Pulih service sends when it calls another on its own behalf (referral asking
outreach for a referred client's identity), each with a narrow ``scope``.

In production the service is a confidential client of the OpenID Connect provider
(``PULIH_OIDC_CLIENT_ID``/``PULIH_OIDC_CLIENT_SECRET``) and gets a client-credentials token from its
token endpoint, kept until shortly before it expires. With no provider (development: no
``PULIH_OIDC_ISSUER``) it signs a one-minute development token itself (``pulih up``'s local key,
or the development secret's); with a provider it never signs one.

The callee lets a service token in only on a route that asks for one of its scopes
(:func:`pulih.kit.auth.require_scope`); the provider grants each service's client only its own
(deploy/keycloak/pulih-realm.json: ``outreach.identity`` to ``pulih-referral`` alone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pulih.kit import dev_keys
from pulih.kit.auth import SERVICE_TOKEN_TTL, Role, issue_token
from pulih.kit.errors import Unavailable
from pulih.kit.settings import Settings

IDENTITY_SCOPE = "outreach.identity"
"""The scope of a token that asks outreach for one referred client's identity (referral's only)."""

RENEW_BEFORE_SECONDS = 30
"""A provider's token is fetched anew this long before it expires."""


@dataclass
class _Held:
    token: str
    expires: float


_held: dict[tuple[str, str, str], _Held] = {}
"""Providers' tokens by token endpoint, client and scope (two calls at once may both fetch one)."""


async def service_bearer(settings: Settings, service: str, scope: str) -> str:
    """A bearer token for ``service`` to call another Pulih service with ``scope``.

    With a provider (``PULIH_OIDC_ISSUER``) and no client credentials it raises
    :class:`~pulih.kit.errors.Unavailable` (503 ``no_client_credentials``): a token signed here
    would be refused by the callee, which verifies the provider's."""
    if settings.oidc_client_id is None or settings.oidc_client_secret is None:
        if settings.oidc_issuer is not None:
            raise Unavailable(
                "no_client_credentials",
                f"{service} needs PULIH_OIDC_CLIENT_ID and PULIH_OIDC_CLIENT_SECRET (its client of "
                "the identity provider) to call another service",
            )
        key = dev_keys.existing_local_key(settings.data_dir) or settings.jwt_secret.get_secret_value()
        return issue_token(
            key,
            sub=service,
            role=Role.SERVICE,
            regency=settings.regency,
            ttl=SERVICE_TOKEN_TTL,
            scope=scope,
            audience=settings.oidc_audience,
        )
    url = await _token_url(settings)
    held = _held.get((url, settings.oidc_client_id, scope))
    if held is None or held.expires - RENEW_BEFORE_SECONDS <= time.time():
        held = await _client_credentials(url, settings, scope)
        _held[(url, settings.oidc_client_id, scope)] = held
    return held.token


async def _token_url(settings: Settings) -> str:
    import httpx  # only where there is an identity provider: 4 MB a service

    if settings.oidc_token_url is not None:
        return settings.oidc_token_url
    if settings.oidc_issuer is None:
        raise Unavailable("no_token_endpoint", "set PULIH_OIDC_TOKEN_URL or PULIH_OIDC_ISSUER")
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.get(f"{settings.oidc_issuer.rstrip('/')}/.well-known/openid-configuration")
        answer.raise_for_status()
        return str(answer.json()["token_endpoint"])
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise Unavailable(
            "token_endpoint_unavailable", "the identity provider's configuration could not be read"
        ) from exc


async def _client_credentials(url: str, settings: Settings, scope: str) -> _Held:
    """A client-credentials grant (RFC 6749 §4.4), the client authenticated with HTTP Basic."""
    import httpx  # only where there is an identity provider: 4 MB a service

    assert settings.oidc_client_id is not None and settings.oidc_client_secret is not None
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.post(
                url,
                data={"grant_type": "client_credentials", "scope": scope},
                auth=(settings.oidc_client_id, settings.oidc_client_secret.get_secret_value()),
            )
        answer.raise_for_status()
        body = answer.json()
        return _Held(str(body["access_token"]), time.time() + float(body.get("expires_in", 60)))
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise Unavailable(
            "token_endpoint_unavailable", "the identity provider gave no service token"
        ) from exc
