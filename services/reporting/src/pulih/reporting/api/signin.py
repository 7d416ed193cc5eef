"""The dashboard's sign-in with the OpenID Connect provider: the authorization-code flow with PKCE.

The browser makes the code verifier and its S256 challenge (WebCrypto, ``static/js/signin.js``)
and goes to the provider's authorization endpoint; back with a code, it sends the code and its
verifier here, and this route exchanges them at the provider's token endpoint for the dashboard's
public client (no secret: the verifier proves the browser started the flow). The exchange is made
here rather than from the page because the page may only talk to this service (its
Content-Security-Policy). With no provider (``PULIH_OIDC_ISSUER`` unset) the configuration says
so, and the page asks for a pasted development token as before.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from pulih.kit.errors import Invalid, Unauthorized, Unavailable
from pulih.kit.settings import Settings

router = APIRouter(tags=["dashboard"])

_endpoints: dict[str, dict[str, str]] = {}
"""The provider's endpoints by issuer, read once from its ``.well-known/openid-configuration``."""


async def endpoints_of(issuer: str) -> dict[str, str]:
    """The authorization and token endpoints of ``issuer``."""
    import httpx  # only where there is an identity provider: 4 MB a service

    if issuer not in _endpoints:
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                answer = await http.get(f"{issuer.rstrip('/')}/.well-known/openid-configuration")
            answer.raise_for_status()
            document = answer.json()
            _endpoints[issuer] = {
                "authorization_endpoint": str(document["authorization_endpoint"]),
                "token_endpoint": str(document["token_endpoint"]),
            }
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise Unavailable("provider_unavailable", "the identity provider could not be reached") from exc
    return _endpoints[issuer]


@router.get("/signin/config", include_in_schema=False)
async def signin_config(request: Request) -> dict[str, Any]:
    """How the dashboard signs in: ``{"mode": "token"}`` (paste a development token) or
    ``{"mode": "oidc", ...}`` with the provider's authorization endpoint and the client."""
    settings: Settings = request.app.state.settings
    if settings.oidc_issuer is None:
        return {"mode": "token"}
    endpoints = await endpoints_of(settings.oidc_issuer)
    return {
        "mode": "oidc",
        "authorization_endpoint": endpoints["authorization_endpoint"],
        "client_id": settings.oidc_dashboard_client_id,
        "scope": "openid",
    }


class CodeExchange(BaseModel):
    """What the page brings back from the provider."""

    code: str = Field(min_length=1, max_length=4096)
    code_verifier: str = Field(min_length=43, max_length=128, pattern=r"^[A-Za-z0-9._~-]+$")
    redirect_uri: str = Field(min_length=1, max_length=2048)


@router.post("/signin/token", include_in_schema=False)
async def signin_token(request: Request, body: CodeExchange) -> dict[str, Any]:
    """Exchange an authorization code and its PKCE verifier for an access token."""
    import httpx  # only where there is an identity provider: 4 MB a service

    settings: Settings = request.app.state.settings
    if settings.oidc_issuer is None:
        raise Invalid("no_provider", "this deployment has no identity provider (PULIH_OIDC_ISSUER)")
    endpoints = await endpoints_of(settings.oidc_issuer)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(
                endpoints["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": body.code,
                    "code_verifier": body.code_verifier,
                    "redirect_uri": body.redirect_uri,
                    "client_id": settings.oidc_dashboard_client_id,
                },
            )
    except httpx.HTTPError as exc:
        raise Unavailable("provider_unavailable", "the identity provider could not be reached") from exc
    if answer.status_code != 200:
        raise Unauthorized("sign_in_refused", "the identity provider refused the sign-in")
    tokens = answer.json()
    return {"access_token": tokens["access_token"], "expires_in": tokens.get("expires_in")}
