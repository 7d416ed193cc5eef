"""Cursor pagination: every list a service answers comes a page at a time.

A list route takes ``?limit=`` (:data:`DEFAULT_LIMIT` items unless asked, at most
:data:`MAX_LIMIT`) and ``?cursor=``, and answers a :class:`Page`::

    {"items": [...], "next": "/v1/units?limit=50&cursor=VW5pdCBB.0f8e…"}

``next`` is the path and query of the following page (the request's own filters kept), null on
the last one; the same link goes in a ``Link: <…>; rel="next"`` header. A client follows
``next`` until it is null and never builds a cursor itself.

The list is sorted on a key that is unique (:class:`Order`: a name and the id, a date and the
id, an audit row's number…), and a cursor is the key of the last item of its page: the next
page is the items after it (keyset pagination). An item added or removed meanwhile never makes
a page repeat or skip another, and a page costs the same whether it is the first or the
thousandth. The cursor is opaque to the client, but every string its pattern admits is a
position in the list (the key's parts, each in a form that always reads back: a UUID's hex, a
date's day number, UTF-8 text in base64url…), so any cursor the OpenAPI document allows is
answered, and anything else is refused 422 naming ``cursor``.

A route takes its pages with :func:`paged`::

    UNITS = Order.by(Unit.name, Unit.unit_id)

    class UnitPage(Page[UnitView]): ...  # its name in the OpenAPI document

    @router.get("/units", response_model=UnitPage, responses=PAGED)
    async def list_units(runtime: RuntimeDep, pages: Annotated[Pages, paged(UNITS)]) -> Page[UnitView]:
        async with runtime.database.sessions() as session:
            units = await pages.scalars(session, select(Unit))
        return pages.page([UnitView.model_validate(u, from_attributes=True) for u in units])

A list made in memory (not by one query) is cut the same way with :meth:`Pages.window`.
"""

from __future__ import annotations

import base64
import binascii
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Final, Generic, TypeVar
from urllib.parse import urlencode
from uuid import UUID

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Select, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.kit.errors import Invalid

DEFAULT_LIMIT: Final = 50
"""Items on a page when the request says no ``limit``."""

MAX_LIMIT: Final = 500
"""The most items one page holds; a larger ``limit`` is refused (422)."""

MAX_CURSOR_LENGTH: Final = 2048
"""The longest cursor taken: room for the key of a 200-character name of any script."""

T = TypeVar("T")
Item = TypeVar("Item")


class Page(BaseModel, Generic[T]):
    """One page of a list, and the link to the next. A service names each list's page
    (``class UnitPage(Page[UnitView])``): that name is its schema's in the OpenAPI document."""

    items: list[T] = Field(description="this page's items, in the list's order")
    next: str | None = Field(
        description="the path and query of the next page (this request's filters and limit "
        "kept); null on the last page",
        examples=["/v1/units?limit=50&cursor=VW5pdCBJQk0gU2lkYXJlamE.0f8e61e6a1f54c4f9a3a4d1d2f8f3c11"],
    )


PAGED: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "A page of the list; `next` links the following page (null on the last)",
        "headers": {
            "Link": {
                "description": 'the next page, as `<path?query>; rel="next"` (left out on the last page)',
                "schema": {"type": "string"},
            }
        },
    }
}
"""The ``responses`` of a paged route: its 200 answer's ``Link`` header."""


@dataclass(frozen=True)
class _Part:
    """How one part of a sort key is written in a cursor, and read back."""

    pattern: str
    write: Callable[[Any], str]
    read: Callable[[str], Any]


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_MOMENT: Final = datetime.min.replace(tzinfo=UTC)
_LAST_MOMENT: Final = datetime.max.replace(tzinfo=UTC)


def _day(part: str) -> date:
    # a day number past either end is the first or the last day: still a position in any list
    return date.fromordinal(min(max(int(part), 1), date.max.toordinal()))


def _microseconds(moment: datetime) -> str:
    # A naive moment is UTC: SQLite gives back naive datetimes for DateTime(timezone=True).
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return str((aware - _EPOCH) // timedelta(microseconds=1))


def _moment(part: str) -> datetime:
    microseconds = int(part)
    if microseconds < (_FIRST_MOMENT - _EPOCH) // timedelta(microseconds=1):
        return _FIRST_MOMENT
    if microseconds > (_LAST_MOMENT - _EPOCH) // timedelta(microseconds=1):
        return _LAST_MOMENT
    return _EPOCH + timedelta(microseconds=microseconds)


def _text(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _read_text(part: str) -> str:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode(errors="replace")


_PARTS: Final[dict[type, _Part]] = {
    UUID: _Part("[0-9a-fA-F]{32}", lambda v: UUID(str(v)).hex, lambda s: UUID(hex=s)),
    int: _Part("-?[0-9]{1,18}", str, int),
    # a day's number (1 is 0001-01-01)
    date: _Part("[0-9]{1,7}", lambda v: str(v.toordinal()), _day),
    # microseconds from 1970 in UTC
    datetime: _Part("-?[0-9]{1,18}", _microseconds, _moment),
    # base64url of UTF-8 without padding: any string of its alphabet and a possible length
    str: _Part("(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?", _text, _read_text),
}


@dataclass(frozen=True)
class Order:
    """A list's order: a key of one or more parts, unique together, ascending or descending.

    ``columns`` are the key's columns when a query makes the list (:meth:`by`); a list made in
    memory names only the parts' types (:meth:`of`)."""

    types: tuple[type, ...]
    columns: tuple[Any, ...] = ()
    descending: bool = False

    @classmethod
    def by(cls, *columns: Any, descending: bool = False) -> Order:
        """The order of a query on ``columns`` (each a mapped attribute or column)."""
        types = tuple(column.type.python_type for column in columns)
        return cls(types=tuple(_part_type(t) for t in types), columns=columns, descending=descending)

    @classmethod
    def of(cls, *types: type, descending: bool = False) -> Order:
        """The order of a list made in memory, on a key of parts of ``types``."""
        return cls(types=tuple(_part_type(t) for t in types), descending=descending)

    @property
    def pattern(self) -> str:
        """What a cursor of this order looks like (the OpenAPI ``pattern`` of ``cursor``)."""
        return "^" + r"\.".join(f"(?:{_PARTS[t].pattern})" for t in self.types) + "$"

    def cursor(self, key: Sequence[Any]) -> str:
        """The cursor after the item whose key is ``key``."""
        return ".".join(_PARTS[t].write(value) for t, value in zip(self.types, key, strict=True))

    def key(self, cursor: str) -> tuple[Any, ...]:
        """The key a cursor names (one :attr:`pattern` admits: its parts always read back)."""
        parts = cursor.split(".")
        if len(parts) != len(self.types):
            raise ValueError(f"a cursor of this list has {len(self.types)} parts, not {len(parts)}")
        try:
            return tuple(_PARTS[t].read(part) for t, part in zip(self.types, parts, strict=True))
        except (binascii.Error, OverflowError) as exc:  # only a cursor outside the pattern
            raise ValueError(str(exc)) from exc


def _part_type(kind: type) -> type:
    for known in (datetime, date, UUID, int, str):  # datetime before date: it is one
        if issubclass(kind, known):
            return known
    raise TypeError(f"a sort key has no cursor form for {kind.__name__}")


class Pages:
    """The page a request asks for of a list in an :class:`Order`, and the answer's link."""

    def __init__(
        self, request: Request, response: Response, order: Order, after: tuple[Any, ...] | None, limit: int
    ) -> None:
        self.request = request
        self.response = response
        self.order = order
        self.after = after
        """The key of the last item of the previous page (None: the first page)."""
        self.limit = limit
        self.last: tuple[Any, ...] | None = None
        """The key of this page's last item, once cut, if another page follows."""

    async def rows(self, session: AsyncSession, query: Select[*tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """This page's rows of ``query`` (each as the query selects it), in the list's order."""
        columns = self.order.columns
        count = len(columns)
        sort = [column.desc() if self.order.descending else column for column in columns]
        paged = query.add_columns(*columns).order_by(None).order_by(*sort).limit(self.limit + 1)
        if self.after is not None:
            key = tuple_(*columns)
            after = tuple_(*(literal(value, c.type) for value, c in zip(self.after, columns, strict=True)))
            paged = paged.where(key < after if self.order.descending else key > after)
        found = (await session.execute(paged)).all()
        shown = found[: self.limit]
        self.last = tuple(shown[-1][-count:]) if len(found) > self.limit else None
        return [tuple(row[:-count]) for row in shown]

    async def scalars(self, session: AsyncSession, query: Select[*tuple[Any, ...]]) -> list[Any]:
        """This page of ``query``'s first column (its entity), in the list's order."""
        return [row[0] for row in await self.rows(session, query)]

    def window(self, items: Sequence[Item], key: Callable[[Item], tuple[Any, ...]]) -> list[Item]:
        """This page of ``items``, a list made in memory, sorted on ``key``."""
        ordered = sorted(items, key=key, reverse=self.order.descending)
        if self.after is not None:
            after = self.after
            ordered = [
                item
                for item in ordered
                if (key(item) < after if self.order.descending else key(item) > after)
            ]
        shown = ordered[: self.limit]
        self.last = key(shown[-1]) if len(ordered) > self.limit else None
        return shown

    def page(self, items: list[T]) -> Page[T]:
        """The answer: ``items`` (this page's, as shown) and the link to the next page."""
        link = None
        if self.last is not None:
            kept = [
                (k, v) for k, v in self.request.query_params.multi_items() if k not in ("cursor", "limit")
            ]
            query = urlencode([*kept, ("limit", str(self.limit)), ("cursor", self.order.cursor(self.last))])
            link = f"{self.request.url.path}?{query}"
            self.response.headers["Link"] = f'<{link}>; rel="next"'
        return Page(items=items, next=link)


def paged(order: Order) -> Any:
    """The dependency giving a list route its :class:`Pages` in ``order``: it reads ``limit`` and
    ``cursor`` (the cursor's pattern is ``order``'s)."""

    def pages(request: Request, response: Response, cursor: str | None, limit: int) -> Pages:
        try:
            after = None if cursor is None else order.key(cursor)
        except ValueError:
            raise Invalid("invalid_cursor", "cursor is not one this list gave", "cursor") from None
        return Pages(request, response, order, after, limit)

    # The parameters are built here, not written in the signature: a string annotation (this
    # module's ``from __future__ import annotations``) could not name ``order``'s pattern.
    cursor = Query(
        description="where the page starts: the `cursor` of the previous page's `next` link "
        "(left out: the first page)",
        pattern=order.pattern,
        max_length=MAX_CURSOR_LENGTH,
    )
    limit = Query(description=f"items on the page (at most {MAX_LIMIT})", ge=1, le=MAX_LIMIT)
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    pages.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("request", keyword, annotation=Request),
            inspect.Parameter("response", keyword, annotation=Response),
            inspect.Parameter("cursor", keyword, annotation=Annotated[str | None, cursor], default=None),
            inspect.Parameter("limit", keyword, annotation=Annotated[int, limit], default=DEFAULT_LIMIT),
        ],
        return_annotation=Pages,
    )
    return Depends(pages)
