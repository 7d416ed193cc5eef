"""Cursor pagination (pulih.kit.pagination) on a real store, SQLite and PostgreSQL.

A small app with the kit's error handlers lists "things" three ways: by name and id (ascending),
newest first by day and id (descending), and a list made in memory. Following ``next`` from the
first page gives every item once, in order, with the request's filters kept; items added while
a client pages are neither repeated nor skipped; ``limit`` and ``cursor`` are checked; and every
cursor the OpenAPI pattern admits is a position the list answers.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Query
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import Date, DateTime, Integer, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pulih.kit.database import Database
from pulih.kit.errors import install_error_handlers
from pulih.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, PAGED, Order, Page, Pages, paged


class Base(DeclarativeBase):
    pass


class Thing(Base):
    __tablename__ = "things"
    thing_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    made_on: Mapped[date] = mapped_column(Date)
    colour: Mapped[str] = mapped_column(String(10))
    seq: Mapped[int] = mapped_column(Integer)
    made_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ThingView(BaseModel):
    thing_id: uuid.UUID
    name: str
    made_on: date


class ThingPage(Page[ThingView]):
    """A page of things."""


BY_NAME = Order.by(Thing.name, Thing.thing_id)
NEWEST = Order.by(Thing.made_on, Thing.thing_id, descending=True)
IN_MEMORY = Order.of(int)


def build(database: Database) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    def views(things: list[Thing]) -> list[ThingView]:
        return [ThingView.model_validate(t, from_attributes=True) for t in things]

    @app.get("/things", response_model=ThingPage, responses=PAGED)
    async def by_name(
        pages: Annotated[Pages, paged(BY_NAME)], colour: Annotated[str | None, Query()] = None
    ) -> Page[ThingView]:
        query = select(Thing) if colour is None else select(Thing).where(Thing.colour == colour)
        async with database.sessions() as session:
            return pages.page(views(await pages.scalars(session, query)))

    @app.get("/things/newest", response_model=ThingPage)
    async def newest(pages: Annotated[Pages, paged(NEWEST)]) -> Page[ThingView]:
        async with database.sessions() as session:
            return pages.page(views(await pages.scalars(session, select(Thing))))

    @app.get("/numbers", response_model=Page[int])
    async def numbers(pages: Annotated[Pages, paged(IN_MEMORY)]) -> Page[int]:
        return pages.page(pages.window(list(range(120, 0, -1)), lambda n: (n,)))

    return app


START = datetime(2025, 1, 15, 8, tzinfo=UTC)


def thing(number: int, name: str | None = None) -> Thing:
    return Thing(
        thing_id=uuid.uuid4(),
        name=name if name is not None else f"Unit {number % 7} ç{number}",
        made_on=date(2025, 1, 1) + timedelta(days=number % 5),
        colour="red" if number % 3 else "green",
        seq=number,
        made_at=START + timedelta(minutes=number),
    )


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with database.transaction() as session:
        session.add_all([thing(n) for n in range(23)])
    try:
        yield database
    finally:
        await database.engine.dispose()


@pytest.fixture
async def http(store: Database) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def every_page(http: httpx.AsyncClient, url: str) -> tuple[list[dict[str, Any]], list[httpx.Response]]:
    items: list[dict[str, Any]] = []
    answers: list[httpx.Response] = []
    link: str | None = url
    while link is not None:
        answer = await http.get(link)
        assert answer.status_code == 200, answer.text
        answers.append(answer)
        items += answer.json()["items"]
        link = answer.json()["next"]
    return items, answers


async def all_things(store: Database) -> list[Thing]:
    async with store.sessions() as session:
        return list((await session.scalars(select(Thing))).all())


async def test_following_next_gives_every_item_once_in_order(
    http: httpx.AsyncClient, store: Database
) -> None:
    items, answers = await every_page(http, "/things?limit=5")
    expected = sorted(await all_things(store), key=lambda t: (t.name, t.thing_id.hex))
    assert [i["thing_id"] for i in items] == [str(t.thing_id) for t in expected]
    assert [len(a.json()["items"]) for a in answers] == [5, 5, 5, 5, 3]
    for answer in answers[:-1]:
        link = answer.json()["next"]
        assert link.startswith("/things?limit=5&cursor=")
        assert answer.headers["Link"] == f'<{link}>; rel="next"'
    assert answers[-1].json()["next"] is None and "Link" not in answers[-1].headers


async def test_a_descending_order_pages_newest_first(http: httpx.AsyncClient, store: Database) -> None:
    items, _ = await every_page(http, "/things/newest?limit=4")
    expected = sorted(await all_things(store), key=lambda t: (t.made_on, t.thing_id.hex), reverse=True)
    assert [i["thing_id"] for i in items] == [str(t.thing_id) for t in expected]


async def test_the_filters_are_kept_in_the_next_link(http: httpx.AsyncClient, store: Database) -> None:
    items, answers = await every_page(http, "/things?colour=green&limit=2")
    greens = [t for t in await all_things(store) if t.colour == "green"]
    assert sorted(i["thing_id"] for i in items) == sorted(str(t.thing_id) for t in greens)
    assert all("colour=green" in a.json()["next"] for a in answers[:-1])


async def test_the_default_page_holds_50(http: httpx.AsyncClient, store: Database) -> None:
    async with store.transaction() as session:
        session.add_all([thing(n) for n in range(100, 160)])
    first = (await http.get("/things")).json()
    assert len(first["items"]) == DEFAULT_LIMIT and "limit=50" in first["next"]


async def test_items_added_while_paging_are_neither_repeated_nor_skipped(
    http: httpx.AsyncClient, store: Database
) -> None:
    first = (await http.get("/things?limit=10")).json()
    seen = [i["name"] for i in first["items"]]
    async with store.transaction() as session:
        session.add_all([thing(200, "A first of all"), thing(201, "Zz after all")])
    rest, _ = await every_page(http, first["next"])
    names = seen + [i["name"] for i in rest]
    assert len(names) == len(set(names)) == 24  # the 23, and the one added after the cursor
    assert "Zz after all" in names and "A first of all" not in names


async def test_a_list_made_in_memory_pages_the_same_way(http: httpx.AsyncClient) -> None:
    items, answers = await every_page(http, "/numbers?limit=50")
    assert items == list(range(1, 121)) and len(answers) == 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        (f"limit={MAX_LIMIT + 1}", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not%20a%20cursor", "cursor"),
        ("cursor=QQ", "cursor"),  # one part where the list's key has two
        ("cursor=Q.0f8e61e6a1f54c4f9a3a4d1d2f8f3c11", "cursor"),  # base64 of an impossible length
    ],
)
async def test_a_bad_limit_or_cursor_is_422_naming_it(
    http: httpx.AsyncClient, query: str, field: str
) -> None:
    answer = await http.get(f"/things?{query}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field


async def test_the_largest_page_is_answered(http: httpx.AsyncClient) -> None:
    assert len((await http.get(f"/things?limit={MAX_LIMIT}")).json()["items"]) == 23


async def test_the_document_says_the_default_the_maximum_and_the_cursor_pattern(
    http: httpx.AsyncClient,
) -> None:
    document = (await http.get("/openapi.json")).json()
    operation = document["paths"]["/things"]["get"]
    parameters = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert parameters["limit"]["default"] == DEFAULT_LIMIT and parameters["limit"]["maximum"] == MAX_LIMIT
    assert parameters["cursor"]["anyOf"][0]["pattern"] == BY_NAME.pattern
    assert "Link" in operation["responses"]["200"]["headers"]
    assert document["components"]["schemas"]["ThingPage"]["required"] == ["items", "next"]


KEYS = {
    "text and id": (Order.by(Thing.name, Thing.thing_id), st.tuples(st.text(), st.uuids())),
    "day and id": (Order.by(Thing.made_on, Thing.thing_id), st.tuples(st.dates(), st.uuids())),
    "number": (Order.by(Thing.seq), st.tuples(st.integers(-(10**17), 10**17))),
    "moment": (
        Order.by(Thing.made_at),
        st.tuples(st.datetimes(timezones=st.just(UTC))),
    ),
}


@pytest.mark.parametrize("name", KEYS)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_cursor_reads_back_as_the_key_it_was_made_of(name: str, data: st.DataObject) -> None:
    order, keys = KEYS[name]
    key = data.draw(keys)
    cursor = order.cursor(key)
    assert re.fullmatch(order.pattern, cursor) and order.key(cursor) == key


@pytest.mark.parametrize("name", KEYS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_every_cursor_the_pattern_admits_is_a_position(name: str, data: st.DataObject) -> None:
    order, _ = KEYS[name]
    cursor = data.draw(st.from_regex(order.pattern, fullmatch=True))
    assert len(order.key(cursor)) == len(order.types)
