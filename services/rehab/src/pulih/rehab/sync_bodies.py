"""What ``POST /v1/sync`` takes and gives back: a field device's offline work for one unit (its
sessions and follow-ups), and an answer for each item.

An item that does not have the shape of one (a field missing, a date that is no date) is not a
reason to refuse the others: :func:`_tolerant` keeps it as a :class:`MalformedItem`, answered
``refused`` with the kit's ``invalid`` error. The request's schema (and the OpenAPI document)
says just that (:class:`_AnyValueAnswered`): an item is any JSON value, and one of the two kinds
(``SessionItem``, ``FollowUpItem``, each with its schema) is what gets applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from pulih.kit.idempotency import MAX_KEY_LENGTH
from pulih.rehab.bodies import FollowUpView, RecordFollowUp, RecordSession, SessionView

MAX_ITEMS = 500
"""How many items one request may carry (a day's work of a unit is a few dozen)."""


def _printable(key: str) -> str:
    if not key.strip() or not key.isprintable():
        raise ValueError("an item's key is printable characters, not only spaces")
    return key


ItemKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="the item's idempotency key, made by the device: the same key with the same "
        "item is answered `already_applied` (never applied twice); with another item, `refused` "
        "(`idempotency_key_reused`). Keys are the caller's, shared with the `Idempotency-Key` of "
        "single requests.",
        examples=["tab-07:2026-03-02:0001"],
    ),
    AfterValidator(_printable),
]


class _Envelope(BaseModel):
    """What wraps the items' bodies refuses unknown fields too (the bodies are rehab's own
    request bodies, as their single requests take them)."""

    model_config = ConfigDict(extra="forbid")


class SessionItem(_Envelope):
    """A session held with an enrolled client: what ``POST /v1/enrolments/{enrollment_id}/sessions``
    takes."""

    type: Literal["session"]
    key: ItemKey
    enrollment_id: UUID
    session: RecordSession


class FollowUpItem(_Envelope):
    """A follow-up after discharge: what ``POST /v1/clients/{client_id}/follow-ups`` takes."""

    type: Literal["follow_up"]
    key: ItemKey
    client_id: UUID
    follow_up: RecordFollowUp


SyncItem = Annotated[SessionItem | FollowUpItem, Field(discriminator="type")]


@dataclass(frozen=True)
class MalformedItem:
    """An item without the shape of one: its key (if it has a usable one) and what is wrong,
    as (field inside the item, message) pairs."""

    key: str | None
    problems: list[tuple[str, str]]


def _where(loc: tuple[Any, ...], tag: Any) -> str:
    """A pydantic location inside an item as a path (``session.minutes``, ``a[0].b``), without
    the step that names the union's member (the item's ``type``)."""
    steps = list(loc[1:] if loc[:1] == (tag,) else loc)
    path = ""
    for step in steps:
        path = f"{path}[{step}]" if isinstance(step, int) else f"{path}.{step}" if path else str(step)
    return path or "type"


def _tolerant(
    value: Any, handler: ValidatorFunctionWrapHandler
) -> SessionItem | FollowUpItem | MalformedItem:
    try:
        item: SessionItem | FollowUpItem = handler(value)
        return item
    except ValidationError as exc:
        key = value.get("key") if isinstance(value, dict) else None
        usable = isinstance(key, str) and 0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()
        tag = value.get("type") if isinstance(value, dict) else None
        problems = [(_where(tuple(e["loc"]), tag), str(e["msg"])) for e in exc.errors()]
        return MalformedItem(key if usable else None, problems)


ITEM = (
    "an item: a session (`SessionItem`, `type` `session`) or a follow-up (`FollowUpItem`, `type` "
    "`follow_up`), each of the shape its schema says. Any other JSON value is taken too, and "
    "answered in its own entry of the 200: `refused`, status 422, error `invalid` with `field` "
    "the path of what is wrong (`items[3].session.minutes`); the other items still apply"
)


class _AnyValueAnswered:
    """The JSON Schema of an item as the endpoint takes it: one of the two kinds, or any other
    value (answered ``refused`` in its own entry, never a refusal of the request), so that a
    document reader and a generated client see each kind's schema and the schema is still
    true of what the endpoint accepts."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        kinds = handler(schema)
        other = {"description": "any other value: refused in its own entry (422 `invalid`)"}
        return {"description": ITEM, "anyOf": [kinds, other]}


Item = Annotated[SyncItem, WrapValidator(_tolerant), _AnyValueAnswered()]
"""An item as the endpoint takes it: in Python a :class:`SessionItem`, a :class:`FollowUpItem` or
a :class:`MalformedItem`."""


class SyncRequest(_Envelope):
    """A device's offline work for one unit, applied item by item in this order."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "unit_id": "0b6f3a8e-2c1d-4e5f-9a7b-1c2d3e4f5a6b",
                    "items": [
                        {
                            "type": "session",
                            "key": "tab-07:2026-03-02:0001",
                            "enrollment_id": "6e0f9b1c-7a2d-4c3e-8f9a-0b1c2d3e4f5a",
                            "session": {
                                "agent_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
                                "held_on": "2026-03-02",
                                "kind": "konseling",
                                "attended": True,
                                "minutes": 60,
                            },
                        },
                        {
                            "type": "follow_up",
                            "key": "tab-07:2026-03-02:0002",
                            "client_id": "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
                            "follow_up": {"on": "2026-03-02", "status": "abstinent"},
                        },
                    ],
                }
            ]
        },
    )

    unit_id: UUID = Field(description="the unit whose work this is; every item must be of it")
    items: Annotated[list[Item], Field(min_length=1, max_length=MAX_ITEMS)]


Outcome = Literal["applied", "already_applied", "refused"]


class ItemError(BaseModel):
    """Why an item was refused: the kit's error body, its ``field`` a path into the request."""

    code: str = Field(examples=["session_exists"])
    message: str
    field: str | None = Field(examples=["items[3].session.held_on"])


class ItemAnswer(BaseModel):
    """What became of one item."""

    index: int = Field(description="the item's place in the request, from 0")
    key: str | None
    outcome: Outcome = Field(
        description="`applied` now; `already_applied` by an earlier request with the same key and "
        "item (nothing changed now); `refused`, with the reason in `error` (nothing changed)"
    )
    status: int = Field(
        description="the HTTP status the item's single request would have had (201, 404, 409, 422…)"
    )
    answer: SessionView | FollowUpView | None = Field(
        None, description="applied or already applied: the single request's answer"
    )
    events: list[UUID] = Field(
        default_factory=list, description="applied: the ids of the events it emitted (committed)"
    )
    error: ItemError | None = None


class SyncAnswer(BaseModel):
    """An answer for every item, in the request's order, and how many ended each way."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "unit_id": "0b6f3a8e-2c1d-4e5f-9a7b-1c2d3e4f5a6b",
                    "applied": 1,
                    "already_applied": 0,
                    "refused": 1,
                    "items": [
                        {
                            "index": 0,
                            "key": "tab-07:2026-03-02:0001",
                            "outcome": "applied",
                            "status": 201,
                            "answer": {
                                "session_id": "5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f",
                                "enrollment_id": "6e0f9b1c-7a2d-4c3e-8f9a-0b1c2d3e4f5a",
                                "client_id": "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f",
                                "agent_id": "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
                                "held_on": "2026-03-02",
                                "kind": "konseling",
                                "attended": True,
                                "minutes": 60,
                                "phase": "primary",
                            },
                            "events": ["0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"],
                            "error": None,
                        },
                        {
                            "index": 1,
                            "key": "tab-07:2026-03-02:0002",
                            "outcome": "refused",
                            "status": 409,
                            "answer": None,
                            "events": [],
                            "error": {
                                "code": "not_discharged",
                                "message": "follow-ups are recorded after the client's discharge",
                                "field": None,
                            },
                        },
                    ],
                }
            ]
        }
    )

    unit_id: UUID
    applied: int
    already_applied: int
    refused: int
    items: list[ItemAnswer]
