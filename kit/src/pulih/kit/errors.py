"""Errors that are part of the interface, and their one mapping to HTTP.

Domain and service code raise :class:`PulihError` subclasses with a code, a message and
optionally the field at fault; :func:`install_error_handlers` turns them (and FastAPI's own
validation errors) into ``{"code", "message", "field"}`` JSON bodies. A consumer that meets one
dead-letters the event with the code as its reason (see :mod:`pulih.kit.consumers`).

Importing this module imports no web framework: domain modules raise these errors and stay
pure; only :func:`install_error_handlers` touches FastAPI.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

log = logging.getLogger("pulih.errors")


class PulihError(Exception):
    """An error a caller can act on: it has a stable code, a message and maybe a field."""

    status: ClassVar[int] = 400
    headers: dict[str, str] | None = None
    """Response headers the error asks for (``Retry-After``…), if any."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        """The JSON body sent to the caller."""
        return {"code": self.code, "message": self.message, "field": self.field}

    def at(self, prefix: str) -> Self:
        """The same error with its field placed under ``prefix`` of the request body
        (``nik`` of the identity becomes ``identity.nik``)."""
        self.field = f"{prefix}.{self.field}" if self.field else prefix
        return self


class Invalid(PulihError):
    """The request is well-formed but its content breaks a rule (422)."""

    status = 422


class Unauthorized(PulihError):
    """No valid credentials (401)."""

    status = 401


class Forbidden(PulihError):
    """Valid credentials that may not do this (403)."""

    status = 403


class NotFound(PulihError):
    """The thing asked for does not exist, or the caller may not know it does (404)."""

    status = 404


class Conflict(PulihError):
    """The request clashes with the current state (409)."""

    status = 409


class Gone(PulihError):
    """The thing existed but was erased for good (410)."""

    status = 410


class Unavailable(PulihError):
    """A service this request depends on did not answer (503); the same request may work later."""

    status = 503


_PARAMETERS = ("query", "path", "header", "cookie")


def _field_of(error: dict[str, Any], body: Any) -> str:
    """Where a validation error is, as the client sent the request: a parameter's name, or the
    path in the body (``identity.nik``, ``substances[0].q2``). Pydantic's location also names
    the member of a union it tried (a discriminated union's tag: ``accepted.on``), which is no
    part of the body: a step the body does not have is left out unless it is the last (a
    missing field)."""
    loc = tuple(error.get("loc", ()))
    if loc[:1] != ("body",):
        return ".".join(str(p) for p in (loc[1:] if loc[:1] and loc[0] in _PARAMETERS else loc))
    steps = list(loc[1:])
    if error.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        steps.append(str(error.get("ctx", {}).get("discriminator", "")).strip("'"))
    path, node = "", body
    for number, step in enumerate(steps):
        if isinstance(step, int) and isinstance(node, list) and 0 <= step < len(node):
            path, node = f"{path}[{step}]", node[step]
        elif (isinstance(node, dict) and step in node) or number == len(steps) - 1:
            path = f"{path}[{step}]" if isinstance(step, int) else f"{path}.{step}" if path else str(step)
            node = node.get(step) if isinstance(node, dict) else None
    return path or "body"


async def _pulih_error(_: Request, exc: Exception) -> JSONResponse:
    from fastapi.responses import JSONResponse

    assert isinstance(exc, PulihError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else exc.headers
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _unauthenticated(request: Request) -> PulihError | None:
    """Why the request's credentials are not valid (None if they are). FastAPI parses a JSON body
    before any dependency runs, so a malformed body would otherwise be answered before the caller
    is known: an anonymous caller must get 401, not a description of the body."""
    from pulih.kit.auth import authenticate

    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return Unauthorized("missing_token", "send Authorization: Bearer <token>")
    settings = request.app.state.settings
    try:
        authenticate(token, settings)
    except PulihError as refused:
        return refused
    return None


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    assert isinstance(exc, RequestValidationError)
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        refused = _unauthenticated(request)
        if refused is not None:
            return await _pulih_error(request, refused)
        offset = next((e.get("loc", ())[-1] for e in exc.errors() if e.get("type") == "json_invalid"), None)
        message = f"the body is not valid JSON (at character {offset})"
        body: dict[str, Any] = {"code": "invalid_json", "message": message, "field": "body"}
        return JSONResponse({**body, "errors": [{"field": "body", "message": message}]}, status_code=422)
    if _not_json(request, exc.errors()):
        refused = _unauthenticated(request)
        if refused is not None:
            return await _pulih_error(request, refused)
        message = "the body must be JSON, sent with Content-Type: application/json"
        body = {"code": "not_json", "message": message, "field": "body"}
        return JSONResponse(body, status_code=400)
    errors = [{"field": _field_of(e, exc.body), "message": str(e.get("msg", ""))} for e in exc.errors()]
    first = errors[0] if errors else {"field": None, "message": "invalid request"}
    body = {
        "code": "invalid",
        "message": first["message"],
        "field": first["field"],
        "errors": errors,
    }
    return JSONResponse(body, status_code=422)


def _not_json(request: Request, errors: Sequence[Any]) -> bool:
    """Whether the request sent a body that is not JSON (a form, plain text) where JSON is expected:
    FastAPI reads such a body as no object at all, and says so as a validation error of ``body``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not content_type or content_type == "application/json" or content_type.endswith("+json"):
        return False
    return any(tuple(e.get("loc", ()))[:1] == ("body",) for e in errors)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    assert isinstance(exc, StarletteHTTPException)
    codes = {
        400: "unreadable_body",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        413: "body_too_large",
    }
    body = {
        "code": codes.get(exc.status_code, "http_error"),
        "message": str(exc.detail),
        "field": "body" if exc.status_code in (400, 413) else None,
    }
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": ", ".join(_allowed_methods(request))}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at the request's path. Starlette's 405 names only the methods
    of the first route at that path, and ``GET /v1/units`` and ``POST /v1/units`` are two routes."""
    from starlette.routing import Match

    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


async def _concurrent_update(_: Request, exc: Exception) -> JSONResponse:
    # A versioned row changed between read and write (another request or replica won):
    # nothing was committed, and the same request sent again sees the new state.
    from fastapi.responses import JSONResponse

    body = {
        "code": "concurrent_update",
        "message": "this record changed while the request ran; send it again",
        "field": None,
    }
    return JSONResponse(body, status_code=409)


LOST_TO_ANOTHER_SQLSTATES = frozenset({"40P01", "40001"})
"""PostgreSQL's ``deadlock_detected`` and ``serialization_failure``: the store rolled the
transaction back because another one won."""


def lost_to_another_transaction(exc: BaseException) -> bool:
    """Whether ``exc`` says the transaction lost to another one running at the same time (a
    deadlock, a serialization failure, a versioned row changed under it): nothing was committed,
    and the same work done again meets the winner's result."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.orm.exc import StaleDataError

    if isinstance(exc, StaleDataError):
        return True
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in LOST_TO_ANOTHER_SQLSTATES


async def _lost_to_another(request: Request, exc: Exception) -> JSONResponse:
    # A driver error that names no subclass (asyncpg's deadlock is a plain DBAPIError): 409 if
    # the transaction lost to another; anything else stays an unexpected error (500).
    if not lost_to_another_transaction(exc):
        raise exc
    return await _concurrent_update(request, exc)


STORE_RETRY_AFTER_SECONDS = 5
"""What a 503 for a failing store tells the caller to wait before sending the request again."""


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The store failed for a reason outside the request (a read-only or full disk, a lost
    # connection, an exhausted pool): nothing was committed, and the same request (with its
    # Idempotency-Key) may work later. A rule the request broke (IntegrityError and the like)
    # is not handled here.
    from fastapi.responses import JSONResponse

    log.error(
        "store unavailable: %s %s: %s: %s",
        request.method,
        request.url.path,
        type(exc).__name__,
        " ".join(str(getattr(exc, "orig", None) or exc).split())[:300],
    )
    runtime = getattr(request.app.state, "runtime", None)
    if runtime is not None:
        from pulih.kit.health import drop_failed_connections

        await drop_failed_connections(runtime.database)
    body = {
        "code": "store_unavailable",
        "message": "the store cannot be written just now; nothing was changed, send the request again later",
        "field": None,
    }
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)})


INFRASTRUCTURE_ERRORS: tuple[str, ...] = ("OperationalError", "InterfaceError", "TimeoutError")
"""The SQLAlchemy errors that say the store failed, not the request (``sqlalchemy.exc`` names):
answered 503 ``store_unavailable`` with ``Retry-After``."""


def install_error_handlers(app: FastAPI) -> None:
    """Map every error a route can raise to one JSON shape."""
    from fastapi.exceptions import RequestValidationError
    from sqlalchemy import exc as sqlalchemy_errors
    from sqlalchemy.orm.exc import StaleDataError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    app.add_exception_handler(StaleDataError, _concurrent_update)
    app.add_exception_handler(sqlalchemy_errors.DBAPIError, _lost_to_another)
    for name in INFRASTRUCTURE_ERRORS:
        app.add_exception_handler(getattr(sqlalchemy_errors, name), _store_unavailable)
    app.add_exception_handler(PulihError, _pulih_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
