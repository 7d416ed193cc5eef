"""Errors that are part of the interface, and their one mapping to HTTP.

Domain and service code raise :class:`PulihError` subclasses with a code, a message and
optionally the field at fault; :func:`install_error_handlers` turns them (and FastAPI's own
validation errors) into ``{"code", "message", "field"}`` JSON bodies. A consumer that meets one
dead-letters the event with the code as its reason (see :mod:`pulih.kit.consumers`).

Importing this module imports no web framework: domain modules raise these errors and stay
pure; only :func:`install_error_handlers` touches FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse


class PulihError(Exception):
    """An error a caller can act on: it has a stable code, a message and maybe a field."""

    status: ClassVar[int] = 400

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


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) if parts else ".".join(str(p) for p in loc)


async def _pulih_error(_: Request, exc: Exception) -> JSONResponse:
    from fastapi.responses import JSONResponse

    assert isinstance(exc, PulihError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_of(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))} for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": None, "message": "invalid request"}
    body = {
        "code": "invalid",
        "message": first["message"],
        "field": first["field"],
        "errors": errors,
    }
    return JSONResponse(body, status_code=422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}
    body = {
        "code": codes.get(exc.status_code, "http_error"),
        "message": str(exc.detail),
        "field": None,
    }
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


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


def install_error_handlers(app: FastAPI) -> None:
    """Map every error a route can raise to one JSON shape."""
    from fastapi.exceptions import RequestValidationError
    from sqlalchemy.orm.exc import StaleDataError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    app.add_exception_handler(StaleDataError, _concurrent_update)
    app.add_exception_handler(PulihError, _pulih_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
