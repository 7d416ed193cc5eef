"""The kit's OpenAPI document and HTTP manners, on a service of two routes at one path.

Every error a route can answer is documented with the kit's error body (no FastAPI
``HTTPValidationError``), commands take ``Idempotency-Key``, operation ids are camelCase; a 405
names every method of its path; a body over the limit is refused with 413 before it is read; a
body that is not JSON is a 422 naming ``body`` and the character where it breaks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import Message

from pulih.kit.auth import CurrentUser, Role, allow
from pulih.kit.commands import CommandDep
from pulih.kit.testing import asgi_client, auth, kit_app

router = APIRouter(prefix="/v1", tags=["things"])


class AddThing(BaseModel):
    name: str


class ThingView(BaseModel):
    name: str


@router.get("/things", response_model=list[ThingView], dependencies=[allow(Role.FACILITATOR)])
async def list_things(principal: CurrentUser) -> list[ThingView]:
    """Every thing."""
    return []


@router.post("/things", status_code=201, response_model=ThingView, dependencies=[allow(Role.FACILITATOR)])
async def add_thing(body: AddThing, cmd: CommandDep) -> JSONResponse:
    """Add a thing."""
    return JSONResponse({"name": body.name}, status_code=201)


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return kit_app(tmp_path, "A service of two routes at one path", router, PULIH_MAX_BODY_BYTES=4096)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


def test_every_error_of_an_operation_is_documented_with_the_kits_error_body(app: FastAPI) -> None:
    document = app.openapi()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert "HTTPValidationError" not in str(document)
    assert set(schemas["ErrorBody"]["required"]) == {"code", "message", "field"}
    assert "errors" in schemas["ErrorBody"]["properties"]
    add = document["paths"]["/v1/things"]["post"]
    listing = document["paths"]["/v1/things"]["get"]
    assert set(add["responses"]) == {"201", "400", "401", "403", "404", "409", "410", "413", "422", "503"}
    assert set(listing["responses"]) == {"200", "400", "401", "403", "404", "409", "410", "422", "503"}
    for status, response in add["responses"].items():
        if status != "201":
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, status
    assert "Retry-After" in add["responses"]["503"]["headers"]
    assert "WWW-Authenticate" in add["responses"]["401"]["headers"]
    readyz = document["paths"]["/readyz"]["get"]["responses"]
    assert readyz["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Readiness"
    }


def test_a_command_takes_an_idempotency_key_and_says_when_it_replays(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    add = paths["/v1/things"]["post"]
    key = next(p for p in add["parameters"] if p["name"] == "Idempotency-Key")
    assert (key["in"], key["required"], key["schema"]["maxLength"]) == ("header", False, 200)
    assert {"Idempotent-Replayed", "Pulih-Events"} <= set(add["responses"]["201"]["headers"])
    assert not any(p["name"] == "Idempotency-Key" for p in paths["/v1/things"]["get"].get("parameters", []))


def test_the_bearer_scheme_is_a_jwt_and_names_its_claims(app: FastAPI) -> None:
    (scheme,) = app.openapi()["components"]["securitySchemes"].values()
    assert (scheme["scheme"], scheme["bearerFormat"]) == ("bearer", "JWT")
    for claim in ("sub", "role", "regency", "unit_id", "clinic_id", "exp"):
        assert f"`{claim}`" in scheme["description"]


def test_operation_ids_are_the_route_functions_in_camel_case(app: FastAPI) -> None:
    ids = {
        f"{method.upper()} {path}": operation["operationId"]
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    }
    assert ids["GET /v1/things"] == "listThings"
    assert ids["POST /v1/things"] == "addThing"
    assert ids["PUT /v1/admin/clock"] == "moveClock"
    assert ids["GET /readyz"] == "readyz"


async def test_a_405_allows_every_method_of_the_path_not_only_the_first_routes(
    http: httpx.AsyncClient,
) -> None:
    for method in ("DELETE", "PATCH", "PUT"):
        answer = await http.request(method, "/v1/things", headers=auth(Role.FACILITATOR))
        assert answer.status_code == 405
        assert answer.headers["Allow"] == "GET, POST"
        assert answer.json() == {"code": "method_not_allowed", "message": "Method Not Allowed", "field": None}
    answer = await http.post("/v1/admin/clock", headers=auth(Role.ADMIN))
    assert (answer.status_code, answer.headers["Allow"]) == (405, "GET, PUT")


async def test_a_body_over_the_limit_is_413_with_the_kits_error_body(http: httpx.AsyncClient) -> None:
    answer = await http.post("/v1/things", content=b"x" * 4097, headers=auth(Role.FACILITATOR))
    assert answer.status_code == 413
    assert answer.json() == {
        "code": "body_too_large",
        "message": "the body is larger than 4096 bytes, the most this service accepts",
        "field": "body",
    }


async def test_a_body_at_the_limit_reaches_the_route(http: httpx.AsyncClient) -> None:
    body = b'{"name": "' + b"x" * (4096 - 12) + b'"}'
    assert len(body) == 4096
    answer = await http.put("/v1/admin/clock", content=body, headers=auth(Role.FACILITATOR))
    assert (answer.status_code, answer.json()["code"]) == (403, "forbidden_role")


async def _post(app: Any, headers: list[tuple[bytes, bytes]], chunks: int) -> tuple[int, int]:
    """POST ``chunks`` chunks of 64 KiB to ``app``'s command; (status, chunks the app read)."""
    read = 0
    status = 0

    async def receive() -> Message:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": read < chunks}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "method": "POST",
        "path": "/v1/things",
        "raw_path": b"/v1/things",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("things", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    await app(scope, receive, send)
    return status, read


async def test_a_50_mb_body_is_refused_without_being_read(tmp_path: Path) -> None:
    app = kit_app(tmp_path, "", router)  # 1 MiB
    fifty_mb = 50 * 1024**2 // 65536
    announced = [(b"content-length", str(50 * 1024**2).encode())]
    assert await _post(app, announced, fifty_mb) == (413, 0)
    # chunked, no Content-Length: refused once the bytes read pass the limit
    assert await _post(app, [], fifty_mb) == (413, 17)


async def test_a_body_that_is_not_json_is_422_naming_the_body_and_where_it_breaks(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.post(
        "/v1/things",
        content=b'{"name": "x",}',
        headers={**auth(Role.FACILITATOR), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    body = answer.json()
    assert (body["code"], body["field"]) == ("invalid_json", "body")
    assert body["message"] == "the body is not valid JSON (at character 13)"
