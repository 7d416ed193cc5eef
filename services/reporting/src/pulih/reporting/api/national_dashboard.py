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

from pulih.reporting.api import signin
from pulih.reporting.api.dashboard import STATIC, assets, serve

router = APIRouter(tags=["dashboard"])
router.include_router(signin.router)
router.include_router(assets)


@router.get("/", include_in_schema=False)
async def national_dashboard() -> Response:
    """The national dashboard page (it asks for a token before it shows anything)."""
    return serve(STATIC / "national.html")
