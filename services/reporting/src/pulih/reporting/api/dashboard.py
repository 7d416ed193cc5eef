"""The facilitators' dashboard at ``/``: a static page (HTML, CSS and a few JavaScript modules in
``static/``) that logs in with a token and draws its charts from the API.

Every asset is served here, with no CDN and no build step, because a BNNK office may be offline.
The page itself holds no figures: they come from the API, which answers 401 without a token.
The referral and QoL summaries it shows are routes of their own (:mod:`.summaries`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from pulih.kit.errors import NotFound
from pulih.reporting.api import signin, summaries

STATIC = Path(__file__).resolve().parent.parent / "static"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

HEADERS = {
    # scripts, styles and data come from this service only; nothing inline, nothing framed
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _assets() -> dict[str, Path]:
    """The files the dashboard serves, by URL path under ``/static/``: only what lies in
    ``static/`` when the service starts, so no request can name anything else."""
    return {
        path.relative_to(STATIC).as_posix(): path
        for path in sorted(STATIC.rglob("*"))
        if path.is_file() and path.suffix in MEDIA_TYPES
    }


ASSETS = _assets()


def serve(path: Path) -> Response:
    """One file of ``static/`` with its media type and the dashboard's headers."""
    return Response(path.read_bytes(), media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)


assets = APIRouter(tags=["dashboard"])
"""``/static/…``: the files of ``static/``, for the regency dashboard and the national one."""


@assets.get("/static/{asset:path}", include_in_schema=False)
async def static_asset(asset: str) -> Response:
    """One of the dashboard's own files (scripts, styles, icons)."""
    path = ASSETS.get(asset)
    if path is None:
        raise NotFound("not_found", f"no dashboard file {asset}")
    return serve(path)


router = APIRouter(tags=["dashboard"])
router.include_router(summaries.router)
router.include_router(signin.router)
router.include_router(assets)


@router.get("/", include_in_schema=False)
async def dashboard() -> Response:
    """The dashboard page (it asks for a token before it shows anything)."""
    return serve(STATIC / "index.html")
