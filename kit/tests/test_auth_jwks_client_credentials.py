"""A service calling another gets a client-credentials token from the provider's token endpoint,
for a narrow scope, and keeps it until shortly before it expires; with no provider it signs a
one-minute development token with that scope."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from pulih.kit.auth import Role, authenticate
from pulih.kit.service_tokens import IDENTITY_SCOPE, service_bearer
from pulih.kit.settings import Settings


@pytest.fixture
def token_endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    grants: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            user, _, password = (
                base64.b64decode(self.headers["Authorization"].split()[1]).decode().partition(":")
            )
            grants.append({"form": form, "client": (user, password)})
            body = json.dumps(
                {"access_token": f"cc-{len(grants)}", "expires_in": 300, "token_type": "Bearer"}
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/token", grants
    finally:
        server.shutdown()
        server.server_close()


async def test_a_client_credentials_token_is_fetched_once_and_kept(
    tmp_path: Path, token_endpoint: tuple[str, list[dict[str, Any]]]
) -> None:
    url, grants = token_endpoint
    settings = Settings(
        PULIH_DATA_DIR=tmp_path,
        PULIH_OIDC_ISSUER="https://sso.test/realms/pulih",
        PULIH_OIDC_TOKEN_URL=url,
        PULIH_OIDC_CLIENT_ID="pulih-referral",
        PULIH_OIDC_CLIENT_SECRET="s3cret",
    )
    assert await service_bearer(settings, "referral", IDENTITY_SCOPE) == "cc-1"
    assert await service_bearer(settings, "referral", IDENTITY_SCOPE) == "cc-1"
    [grant] = grants
    assert grant["client"] == ("pulih-referral", "s3cret")
    assert grant["form"] == {"grant_type": ["client_credentials"], "scope": [IDENTITY_SCOPE]}


async def test_with_no_provider_a_service_signs_a_scoped_one_minute_token(tmp_path: Path) -> None:
    settings = Settings(PULIH_DATA_DIR=tmp_path, PULIH_REGENCY="3302")
    principal = authenticate(await service_bearer(settings, "referral", IDENTITY_SCOPE), settings)
    assert (principal.role, principal.sub, principal.scopes) == (Role.SERVICE, "referral", (IDENTITY_SCOPE,))
