"""The dashboard's files are served by the service itself (no CDN, no build step) under a strict
content security policy, only the files of ``static/``; and the OpenAPI document describes
every read route the dashboard uses."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from reporting_api_seed import ReportingApi, reporting_api

from pulih.reporting.api.dashboard import STATIC


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ReportingApi]:
    async with reporting_api(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'store.db'}", seeded=False) as api:
        yield api


async def test_the_page_and_every_file_it_names_are_served_here(api: ReportingApi) -> None:
    page = await api.http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp
    named = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text))
    scripts = {f"/static/js/{path.name}" for path in (STATIC / "js").glob("*.js")}
    assert {"/static/dashboard.css", "/static/icon.svg", "/static/js/main.js"} <= named
    for path in named | scripts:
        r = await api.http.get(path)
        assert r.status_code == 200, path
        assert r.headers["x-content-type-options"] == "nosniff"
    assert (await api.http.get("/static/js/main.js")).headers[
        "content-type"
    ] == "text/javascript; charset=utf-8"
    assert (await api.http.get("/static/dashboard.css")).headers["content-type"] == "text/css; charset=utf-8"


async def test_nothing_from_elsewhere_and_nothing_outside_static(api: ReportingApi) -> None:
    for path in STATIC.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):
            text = path.read_text()
            assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), (
                f"{path.name} loads from elsewhere"
            )
            assert "innerHTML" not in text and "insertAdjacentHTML" not in text, f"{path.name} writes HTML"
    for path in ("/static/../store.py", "/static/..%2Fstore.py", "/static/nothing.js", "/static/"):
        r = await api.http.get(path)
        assert r.status_code == 404, path


async def test_openapi_describes_the_read_routes(api: ReportingApi) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    paths = spec["paths"]
    for path in ("/v1/indicators", "/v1/units/phases", "/v1/referrals/summary", "/v1/qol/summary"):
        assert "get" in paths[path], path
    indicators = paths["/v1/indicators"]["get"]
    assert {p["name"] for p in indicators["parameters"]} == {"level", "id", "from", "to", "by"}
    assert "text/csv" in indicators["responses"]["200"]["content"]
    assert "/" not in paths, "the page is not part of the API"
