"""``/docs``: Swagger UI served by the service itself, so it opens on an office LAN without internet.

FastAPI's own page loads Swagger UI's script and stylesheet from cdn.jsdelivr.net and its favicon
from fastapi.tiangolo.com; where neither answers the page stays blank. Here the three files come
from the `fastapi-swagger` package (it ships swagger-ui-dist 5.x, which OpenAPI 3.1 needs) at
``/docs/assets/<name>``, read from disk by Starlette's ``StaticFiles`` when asked (with ``ETag``
and ``Last-Modified``, so a browser asks again cheaply), never at import. The page, its OAuth2
redirect and the assets need no token and stay out of the OpenAPI document. They are FastAPI
routes, not a mount or Starlette routes, because FastAPI names the route of those alone: that is
what ``/metrics`` counts them under (``/docs/assets/{name}``) instead of ``unmatched``.

ReDoc is not served: no maintained package ships its script, and one browsable page is enough.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from pulih.kit.errors import NotFound

DOCS_PATH = "/docs"
OAUTH2_REDIRECT_PATH = f"{DOCS_PATH}/oauth2-redirect"
ASSETS_PATH = f"{DOCS_PATH}/assets"
ASSETS_PACKAGE = ("fastapi_swagger", "resources")
"""Where `fastapi-swagger` keeps Swagger UI's files."""
SCRIPT, STYLESHEET, FAVICON = "swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"
ASSETS = frozenset({SCRIPT, STYLESHEET, FAVICON})
"""The files the page loads, and the only ones served."""


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` from ``app`` itself (build ``app`` with ``docs_url=None`` and
    ``redoc_url=None``), with the title, OAuth2 redirect and parameters FastAPI's page would use."""
    files = StaticFiles(packages=[ASSETS_PACKAGE])

    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a prefix the page must ask for the prefixed paths
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/{SCRIPT}",
            swagger_css_url=f"{root}{ASSETS_PATH}/{STYLESHEET}",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/{FAVICON}",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_PATH}",
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def asset(request: Request, name: str) -> Response:
        if name not in ASSETS:
            raise NotFound("not_found", "Not Found")
        return await files.get_response(name, request.scope)  # 304 to a browser whose ETag is fresh

    app.add_api_route(DOCS_PATH, swagger_ui, include_in_schema=False, response_class=HTMLResponse)
    app.add_api_route(
        OAUTH2_REDIRECT_PATH, oauth2_redirect, include_in_schema=False, response_class=HTMLResponse
    )
    app.add_api_route(f"{ASSETS_PATH}/{{name}}", asset, methods=["GET", "HEAD"], include_in_schema=False)
