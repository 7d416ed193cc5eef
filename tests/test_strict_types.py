"""Strict request types (pulih.kit.strict): a value is taken only in the JSON type its schema says,
and every refusal is a 422 naming the field as the client sent it.

A small app with the kit's error handlers stands in for a service: its body model is strict
(``STRICT_BODY``) with the kit's dates, UUIDs and enums read from JSON strings, a list of nested
models and a discriminated union; its query takes a date and a yes/no flag.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

import httpx
import pytest
from fastapi import FastAPI, Query
from pydantic import BaseModel, Field, ValidationError

from pulih.kit.errors import install_error_handlers
from pulih.kit.strict import FROM_TEXT, JSON_INTEGER, STRICT_BODY, Day, Flag, Integer


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"


class Item(BaseModel):
    model_config = STRICT_BODY

    count: Annotated[int, Field(ge=0), JSON_INTEGER]
    colour: Annotated[Colour, FROM_TEXT]


class Given(BaseModel):
    model_config = STRICT_BODY

    answer: Literal["given"]
    on: Day


class Refused(BaseModel):
    model_config = STRICT_BODY

    answer: Literal["refused"]
    reason: str


class Order(BaseModel):
    model_config = STRICT_BODY

    order_id: Annotated[uuid.UUID, FROM_TEXT]
    ordered_on: Day
    paid: bool
    people: Integer
    items: list[Item] = []
    answer: Annotated[Given | Refused, Field(discriminator="answer")] | None = None


app = FastAPI()
install_error_handlers(app)


@app.post("/orders")
async def take(order: Order) -> dict[str, Any]:
    return order.model_dump(mode="json")


@app.get("/days")
async def days(
    day: Annotated[Day | None, Query(alias="date")] = None, everything: Annotated[Flag, Query()] = False
) -> dict[str, Any]:
    return {"date": day.isoformat() if day else None, "everything": everything}


ORDER = {
    "order_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "ordered_on": "2025-01-15",
    "paid": True,
    "people": 3,
    "items": [{"count": 2, "colour": "red"}],
    "answer": {"answer": "given", "on": "2025-01-16"},
}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        yield client


async def refused(answer: httpx.Response, field: str) -> str:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert (body["code"], body["field"]) == ("invalid", field), body
    return str(body["message"])


async def test_json_strings_still_read_as_dates_uuids_and_enums(http: httpx.AsyncClient) -> None:
    answer = await http.post("/orders", json=ORDER)
    assert answer.status_code == 200, answer.text
    assert answer.json() == ORDER
    assert (await http.get("/days", params={"date": "2025-02-28", "everything": "true"})).json() == {
        "date": "2025-02-28",
        "everything": True,
    }


async def test_an_integer_with_a_zero_fraction_is_an_integer_as_json_schema_says(
    http: httpx.AsyncClient,
) -> None:
    answer = await http.post(
        "/orders", json={**ORDER, "people": 3.0, "items": [{"count": 2.0, "colour": "red"}]}
    )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["people"], answer.json()["items"][0]["count"]) == (3, 2)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"ordered_on": 0}, "ordered_on", "YYYY-MM-DD"),
        ({"ordered_on": "0"}, "ordered_on", "YYYY-MM-DD"),
        ({"ordered_on": "1700000000"}, "ordered_on", "YYYY-MM-DD"),
        ({"ordered_on": "2025-01-15T00:00:00"}, "ordered_on", "YYYY-MM-DD"),
        ({"ordered_on": "2025-02-30"}, "ordered_on", "real date"),
        ({"people": False}, "people", "valid integer"),
        ({"people": "3"}, "people", "valid integer"),
        ({"people": 3.5}, "people", "valid integer"),
        ({"paid": 1}, "paid", "valid boolean"),
        ({"paid": "true"}, "paid", "valid boolean"),
        ({"order_id": 7}, "order_id", "UUID, as a string"),
        ({"order_id": "not-a-uuid"}, "order_id", "valid UUID"),
        ({"items": [{"count": 1, "colour": 0}]}, "items[0].colour", "'red' or 'green'"),
        (
            {"items": [{"count": 1, "colour": "red"}, {"count": True, "colour": "red"}]},
            "items[1].count",
            "integer",
        ),
        ({"items": [{"count": 1, "colour": "blue"}]}, "items[0].colour", "'red' or 'green'"),
        ({"answer": {"answer": "given", "on": 20250116}}, "answer.on", "YYYY-MM-DD"),
        ({"answer": {"answer": "given"}}, "answer.on", "Field required"),
        ({"answer": {"answer": "maybe"}}, "answer.answer", "'given', 'refused'"),
        ({"answer": {"on": "2025-01-16"}}, "answer.answer", "discriminator"),
    ],
)
async def test_a_value_of_another_json_type_is_422_naming_the_field_as_sent(
    http: httpx.AsyncClient, change: dict[str, Any], field: str, message: str
) -> None:
    text = await refused(await http.post("/orders", json={**ORDER, **change}), field)
    assert message in text


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"date": "0"}, "date"),
        ({"date": "1"}, "date"),
        ({"date": "2025-1-5"}, "date"),
        ({"everything": "1"}, "everything"),
        ({"everything": "yes"}, "everything"),
        ({"everything": "True"}, "everything"),
    ],
)
async def test_a_query_date_or_flag_in_another_form_is_422_naming_the_parameter(
    http: httpx.AsyncClient, query: dict[str, str], field: str
) -> None:
    await refused(await http.get("/days", params=query), field)


def test_python_callers_pass_python_values_as_before() -> None:
    order = Order(
        order_id=uuid.uuid4(),
        ordered_on=date(2025, 1, 15),
        paid=False,
        people=1,
        items=[Item(count=1, colour=Colour.GREEN)],
    )
    assert (order.ordered_on, order.items[0].colour) == (date(2025, 1, 15), Colour.GREEN)
    with pytest.raises(ValidationError):
        Item(count=1, colour=1)  # type: ignore[arg-type]


def test_the_schema_is_the_plain_types() -> None:
    schema = Order.model_json_schema()
    properties = schema["properties"]
    assert properties["ordered_on"] == {"format": "date", "title": "Ordered On", "type": "string"}
    assert properties["order_id"] == {"format": "uuid", "title": "Order Id", "type": "string"}
    assert schema["$defs"]["Colour"]["enum"] == ["red", "green"]
    assert schema["$defs"]["Item"]["properties"]["count"] == {
        "minimum": 0,
        "title": "Count",
        "type": "integer",
    }
    assert schema["additionalProperties"] is False
