"""The dashboard signs in with the authorization-code flow and PKCE: the reporting service names
the provider's authorization endpoint and its public client, and exchanges a code with its
verifier at the provider's token endpoint (a fake provider here, which checks the S256 challenge
as Keycloak does); with no provider the page is told to ask for a pasted token."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from fastapi import FastAPI

from pulih.kit.errors import install_error_handlers
from pulih.kit.settings import Settings
from pulih.reporting.api import signin

REDIRECT = "http://127.0.0.1:8104/"


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class FakeProvider:
    """Codes issued for a challenge; the token endpoint grants one only for its verifier."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}
        self.issuer = ""

    def authorize(self, challenge: str) -> str:
        code = secrets.token_urlsafe(16)
        self.codes[code] = challenge
        return code


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider()

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self.reply(
                200,
                {
                    "issuer": fake.issuer,
                    "authorization_endpoint": f"{fake.issuer}/protocol/openid-connect/auth",
                    "token_endpoint": f"{fake.issuer}/protocol/openid-connect/token",
                },
            )

        def do_POST(self) -> None:
            form = {
                k: v[0]
                for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()
            }
            challenge = fake.codes.pop(form.get("code", ""), None)
            if (
                challenge is None
                or form.get("grant_type") != "authorization_code"
                or form.get("client_id") != "pulih-dashboard"
                or form.get("redirect_uri") != REDIRECT
                or s256(form.get("code_verifier", "")) != challenge
            ):
                return self.reply(400, {"error": "invalid_grant"})
            self.reply(200, {"access_token": "access-token-of-the-agent", "expires_in": 300})

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.issuer = f"http://127.0.0.1:{server.server_address[1]}/realms/pulih"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def app_with(settings: Settings) -> httpx.AsyncClient:
    app = FastAPI()
    install_error_handlers(app)
    app.state.settings = settings
    app.include_router(signin.router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reporting")


async def test_a_code_is_exchanged_with_its_verifier_only(provider: FakeProvider, tmp_path: Path) -> None:
    async with app_with(Settings(PULIH_DATA_DIR=tmp_path, PULIH_OIDC_ISSUER=provider.issuer)) as http:
        config = (await http.get("/signin/config")).json()
        assert config == {
            "mode": "oidc",
            "authorization_endpoint": f"{provider.issuer}/protocol/openid-connect/auth",
            "client_id": "pulih-dashboard",
            "scope": "openid",
        }
        verifier = secrets.token_urlsafe(32)
        code = provider.authorize(s256(verifier))
        wrong = await http.post(
            "/signin/token",
            json={"code": code, "code_verifier": secrets.token_urlsafe(32), "redirect_uri": REDIRECT},
        )
        assert (wrong.status_code, wrong.json()["code"]) == (401, "sign_in_refused")
        code = provider.authorize(s256(verifier))
        r = await http.post(
            "/signin/token", json={"code": code, "code_verifier": verifier, "redirect_uri": REDIRECT}
        )
        assert r.status_code == 200 and r.json()["access_token"] == "access-token-of-the-agent"
        reused = await http.post(
            "/signin/token", json={"code": code, "code_verifier": verifier, "redirect_uri": REDIRECT}
        )
        assert reused.status_code == 401


async def test_with_no_provider_the_page_asks_for_a_token(tmp_path: Path) -> None:
    async with app_with(Settings(PULIH_DATA_DIR=tmp_path)) as http:
        assert (await http.get("/signin/config")).json() == {"mode": "token"}
        r = await http.post(
            "/signin/token", json={"code": "c", "code_verifier": "v" * 43, "redirect_uri": REDIRECT}
        )
        assert (r.status_code, r.json()["code"]) == (422, "no_provider")


def test_the_dashboard_makes_an_s256_challenge_and_a_state() -> None:
    """signin.js's challenge is the S256 of its verifier (run with Node when it is installed)."""
    scripts = Path(signin.__file__).parents[1] / "static" / "js"
    script = (scripts / "signin.js").read_text()
    assert 'code_challenge_method: "S256"' in script and "state" in script and "signin/token" in script
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node to run signin.js")
    verifier = secrets.token_urlsafe(32)
    run = subprocess.run(
        [
            node,
            "--input-type=module",
            "-e",
            f'import {{ challengeOf }} from "./signin.js"; console.log(await challengeOf("{verifier}"));',
        ],
        cwd=scripts,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert run.stdout.strip() == s256(verifier)
