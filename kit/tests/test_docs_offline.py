"""``/docs`` opens without internet: the page asks the service itself for Swagger UI's script,
stylesheet and icon (no CDN), each answers without a token, and none of them is an operation of the
OpenAPI document."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from pulih.kit.testing import asgi_client, kit_app

ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return kit_app(tmp_path, "No routes of its own")


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


def assets_of(page: str) -> list[str]:
    """The script, stylesheet and icon URLs the page loads."""
    return re.findall(r'<script src="([^"]+)"', page) + re.findall(r'<link [^>]*href="([^"]+)"', page)


async def test_the_docs_page_loads_swagger_ui_from_the_service_itself(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>Things - Swagger UI</title>" in page.text
    assets = assets_of(page.text)
    assert {Path(url).suffix for url in assets} == set(ASSET_TYPES)
    for url in assets:
        assert url.startswith("/docs/assets/"), url
    assert "http://" not in page.text and "https://" not in page.text  # no other host at all
    assert "url: '/openapi.json'" in page.text


async def test_every_asset_answers_without_a_token_with_its_type(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    for url in assets_of(page.text):
        asset = await http.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(ASSET_TYPES[Path(url).suffix]), asset.headers
        assert len(asset.content) > 500
        assert "etag" in asset.headers  # a browser revalidates instead of fetching 1.5 MB again
    bundle = await http.get("/docs/assets/swagger-ui-bundle.js")
    major = re.search(r'PACKAGE_VERSION:"(\d+)\.', bundle.text)
    assert major is not None and int(major.group(1)) >= 5  # Swagger UI 4 cannot render OpenAPI 3.1


async def test_the_oauth2_redirect_is_served_and_redoc_is_not(http: httpx.AsyncClient) -> None:
    redirect = await http.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "oauth2" in redirect.text.lower()
    assert (await http.get("/redoc")).status_code == 404  # ReDoc would load from a CDN


async def test_behind_a_prefix_the_page_asks_for_prefixed_urls(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app, root_path="/outreach")
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        page = await client.get("/outreach/docs")
    assert page.status_code == 200
    assert all(url.startswith("/outreach/docs/assets/") for url in assets_of(page.text))
    assert "url: '/outreach/openapi.json'" in page.text


async def test_the_docs_are_no_operation_and_assets_are_counted_by_their_route(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    assert not [path for path in app.openapi()["paths"] if path.startswith("/docs")]
    await http.get("/docs")
    await http.get("/docs/assets/swagger-ui.css")
    await http.get("/docs/assets/no-such-file.js")
    metrics = (await http.get("/metrics")).text
    assert 'route="/docs",status="200"' in metrics
    assert 'route="/docs/assets/{name}",status="200"' in metrics
    assert 'route="/docs/assets/{name}",status="404"' in metrics
    assert 'route="unmatched"' not in metrics


async def test_a_browser_that_has_the_bundle_is_answered_304(http: httpx.AsyncClient) -> None:
    first = await http.get("/docs/assets/swagger-ui-bundle.js")
    again = await http.get(
        "/docs/assets/swagger-ui-bundle.js", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and not again.content


async def test_no_other_file_is_served(http: httpx.AsyncClient) -> None:
    for name in ("__init__.py", "%2E%2E", "..%2F__init__.py", "..%2F..%2Fpulih%2Fkit%2Fsettings.py"):
        answer = await http.get(f"/docs/assets/{name}")
        assert answer.status_code == 404 and answer.json()["code"] == "not_found", name
