"""The OpenAPI document of a Pulih service, made complete enough to generate a client from.

FastAPI documents what it sees in a route's signature: the success response, and a 422 in its own
``{"detail": [...]}`` shape, which no Pulih service ever sends. :func:`install_openapi` completes
the document once, for every service:

- **Errors.** Every operation behind a bearer token documents 400, 401, 403, 404, 409, 410, 422
  and 503, and every operation with a body 413, all with the kit's one error body
  (:class:`ErrorBody`, ``{code, message, field, errors?}``, see :mod:`pulih.kit.errors`);
  FastAPI's ``HTTPValidationError`` is gone. A description a route gave a status keeps its words.
- **Headers.** Each command (a route on :data:`pulih.kit.commands.CommandDep`: every POST)
  takes an ``Idempotency-Key`` header, and its success answers say ``Idempotent-Replayed`` and
  ``Pulih-Events``; 401 says ``WWW-Authenticate``, 503 and 409 ``Retry-After``.
- **The bearer scheme** says it carries a JWT and which claims it holds (:data:`TOKEN_CLAIMS`).
- **Operation ids** are the route functions' names in camelCase (``registerAgent``), given to
  FastAPI as its ``generate_unique_id_function`` (:func:`operation_id`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from pulih.kit.commands import AFTER_HEADER, EVENTS_HEADER, _command
from pulih.kit.idempotency import MAX_KEY_LENGTH

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


class FieldError(BaseModel):
    """One problem of a request, and where it is."""

    field: str | None = Field(
        description="where: a dotted path into the body (`identity.nik`), a parameter's or a "
        "header's name, `body` for the body as a whole; null when no one place is at fault"
    )
    message: str = Field(description="what is wrong, for a person")


class ErrorBody(BaseModel):
    """Every error a Pulih service answers: one shape, whatever the status."""

    code: str = Field(
        description="stable and machine-readable, e.g. `invalid`, `invalid_json`, `not_found`, "
        "`forbidden_role`, `idempotency_key_reused`, `store_unavailable`",
        examples=["invalid"],
    )
    message: str = Field(description="what went wrong and what to do, for a person")
    field: str | None = Field(description="the field, parameter or header at fault, if one is")
    errors: list[FieldError] | None = Field(
        None, description="422 only: every problem found, the first of which is `field`/`message`"
    )


TOKEN_CLAIMS = """\
A JWT in `Authorization: Bearer <token>`. Its claims:

- `sub`: who calls (a person, a clinic, or a service's name);
- `role`: `agent`, `facilitator`, `clinic`, `national`, `admin` or `service`;
- `regency`: the 4-digit Kemendagri code of the regency the token is for (`national` for the
  national view); another regency's token is refused with 403 `wrong_regency`;
- `unit_id` (UUID): an agent's Unit IBM, required for `agent`;
- `clinic_id`: a clinic's slug, required for `clinic`;
- `exp` (required) and `iat`: seconds since the epoch.

A missing, expired or badly signed token is answered 401 with `WWW-Authenticate: Bearer`;
`pulih token <role>` prints one for development."""

_ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The request cannot be read (a body that is not UTF-8, a form where JSON is expected).",
    401: "No valid bearer token: missing, expired, badly signed or incomplete.",
    403: "The token may not do this: another regency, a role without the right, another unit's "
    "or clinic's record.",
    404: "What the path names does not exist, or the caller may not know that it does.",
    409: "The request clashes with the current state: a rule of the record's life, an "
    "`Idempotency-Key` already used for a different request, a record changed meanwhile (send it "
    "again), or events named in `Pulih-After` not received yet (`Retry-After`).",
    410: "The record existed and was erased for good.",
    413: "The body is larger than the service accepts (`PULIH_MAX_BODY_BYTES`, 1 MiB by default).",
    422: "The request breaks a rule: `field` names where, `errors` lists every problem. A body "
    "that is not JSON answers `code: invalid_json`, `field: body`, and its message says at which "
    "character the JSON breaks.",
    503: "The store (or a service this request needs) is unavailable: nothing was changed; send "
    "the same request (with its `Idempotency-Key`) again after `Retry-After` seconds.",
}

AUTHENTICATED_ERRORS = (400, 401, 403, 404, 409, 410, 422, 503)
"""What every operation behind a bearer token documents."""

BODY_ERRORS = (400, 413, 422)
"""What every operation taking a body documents besides."""

_FASTAPI_DESCRIPTIONS = {"Validation Error", "Successful Response"}

_RETRY_AFTER = {
    "description": "seconds to wait before sending the same request again",
    "schema": {"type": "integer", "minimum": 0},
}

_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    409: {"Retry-After": _RETRY_AFTER},
    503: {"Retry-After": _RETRY_AFTER},
}

_COMMAND_SUCCESS_HEADERS: dict[str, Any] = {
    REPLAYED_HEADER: {
        "description": f"`true` when this is the stored first answer to an earlier request with "
        f"the same `{IDEMPOTENCY_HEADER}` (the command was not run again)",
        "schema": {"type": "string", "enum": ["true"]},
    },
    EVENTS_HEADER: {
        "description": f"the ids of the events the command emitted, comma-separated; give them "
        f"to another service's command as `{AFTER_HEADER}` to have it wait until it has them",
        "schema": {"type": "string"},
    },
}

_IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": IDEMPOTENCY_HEADER,
    "in": "header",
    "required": False,
    "description": "A key the caller makes for this command (a UUID, or `<device>:<counter>`). A "
    "retry with the same key and the same request gets the first answer again, with "
    f"`{REPLAYED_HEADER}: true`, and changes nothing; the same key with a different request is "
    "refused with 409 `idempotency_key_reused`. Keys are kept per caller.",
    # What check_key takes once the server has stripped the value: printable Latin-1 (a header's
    # alphabet), not beginning or ending with a space.
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": "^[!-~\u00a1-\u00ff]([ -~\u00a1-\u00ff]*[!-~\u00a1-\u00ff])?$",
    },
}


def operation_id(route: APIRoute) -> str:
    """The route function's name in camelCase: ``register_agent`` gives ``registerAgent``."""
    head, *rest = route.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def install_openapi(app: FastAPI) -> None:
    """Have ``app`` serve its completed OpenAPI document (built once, on first request)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(app, build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Complete FastAPI's document of ``app`` in place (see the module's docstring); returns it."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(_error_schemas())
    for scheme in components.get("securitySchemes", {}).values():
        if scheme.get("type") == "http" and scheme.get("scheme", "").lower() == "bearer":
            scheme["bearerFormat"] = "JWT"
            scheme["description"] = TOKEN_CLAIMS
    commands = set(_commands(app))
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            _complete_operation(operation, command=(path, method) in commands)
    for unused in ("HTTPValidationError", "ValidationError"):
        if not _referenced(schema, f"#/components/schemas/{unused}", skip=unused):
            schemas.pop(unused, None)
    return schema


def _commands(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(path, method) of every command route of ``app``, routers included with their prefixes."""
    for context in routing.iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path_format
        if path and isinstance(route, APIRoute) and _depends_on(route.dependant, _command):
            for method in context.methods or ():
                yield path, method.lower()


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(dep.call is call or _depends_on(dep, call) for dep in dependant.dependencies)


def _error_schemas() -> dict[str, Any]:
    schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = schema.pop("$defs", {})
    return {"ErrorBody": schema, **definitions}


def _complete_operation(operation: dict[str, Any], *, command: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses: set[int] = set()
    if operation.get("security"):
        statuses.update(AUTHENTICATED_ERRORS)
    if "requestBody" in operation:
        statuses.update(BODY_ERRORS)
    if "422" in responses:
        statuses.add(422)
    for error in sorted(statuses):
        responses[str(error)] = _error_response(error, responses.get(str(error)))
    if command:
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name", "").lower() == IDEMPOTENCY_HEADER.lower() for p in parameters):
            parameters.append(dict(_IDEMPOTENCY_PARAMETER))
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("headers", {}).update(_COMMAND_SUCCESS_HEADERS)
    operation["responses"] = dict(sorted(responses.items()))


def _error_response(status: int, given: dict[str, Any] | None) -> dict[str, Any]:
    description = (given or {}).get("description")
    if not description or description in _FASTAPI_DESCRIPTIONS:
        description = _ERROR_DESCRIPTIONS[status]
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }
    if status in _ERROR_HEADERS:
        response["headers"] = dict(_ERROR_HEADERS[status])
    return response


def _referenced(node: Any, ref: str, *, skip: str) -> bool:
    """Whether ``ref`` is used anywhere in ``node`` but in the component named ``skip``."""
    if isinstance(node, dict):
        if node.get("$ref") == ref:
            return True
        return any(_referenced(value, ref, skip=skip) for key, value in node.items() if key != skip)
    if isinstance(node, list):
        return any(_referenced(item, ref, skip=skip) for item in node)
    return False
