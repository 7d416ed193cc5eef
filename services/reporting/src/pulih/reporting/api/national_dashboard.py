"""The national office's dashboard at ``/`` in national mode: the regency dashboard's national
face (``static/national.html`` and its ``static/js/national*.js`` modules), drawn from
``/v1/national/*`` with a national token.

It shares the regency dashboard's files and headers (:mod:`.dashboard`): the same styles, the
same sign-in, the same ID/EN labels, no CDN. The page holds no figures; the API answers 401
without a token and 403 to a token that is not national.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from pulih.kit.errors import NotFound
from pulih.reporting.api.dashboard import ASSETS, STATIC, _serve

router = APIRouter(tags=["dashboard"])


@router.get("/", include_in_schema=False)
async def national_dashboard() -> Response:
    """The national dashboard page (it asks for a token before it shows anything)."""
    return _serve(STATIC / "national.html")


@router.get("/static/{asset:path}", include_in_schema=False)
async def static_asset(asset: str) -> Response:
    """One of the dashboard's own files (scripts, styles, icons)."""
    path = ASSETS.get(asset)
    if path is None:
        raise NotFound("not_found", f"no dashboard file {asset}")
    return _serve(path)
