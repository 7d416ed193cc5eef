"""Old event versions are upcast step by step to the current one before validation.

The newer versions here are test-only models, registered in a copy of the catalogue.
"""

import json
import re
from datetime import date
from typing import Any, ClassVar
from uuid import UUID

import pytest
from event_samples import sample_message

from pulih.contracts import DEFAULT_REGISTRY, Event, EventRegistry, InvalidEvent, parse_event
from pulih.contracts.events import outreach

V1 = "pulih.outreach.ClientErased.v1"
V2 = "pulih.outreach.ClientErased.v2"
V3 = "pulih.outreach.ClientErased.v3"


class ClientErased(Event):
    """Test-only v2: ``on`` renamed ``erased_on``."""

    service_name: ClassVar[str] = "outreach"
    version: ClassVar[int] = 2
    about: ClassVar[str] = "client_id"

    client_id: UUID
    erased_on: date


def _rename_on(data: dict[str, Any]) -> dict[str, Any]:
    data["erased_on"] = data.pop("on")
    return data


@pytest.fixture
def registry() -> EventRegistry:
    """The catalogue plus the test-only v2, reading v1 messages as v2."""
    registry = DEFAULT_REGISTRY.copy()
    registry.register(ClientErased)
    registry.register_upcaster(V1, V2, _rename_on)
    return registry


def _v1_message() -> bytes:
    return sample_message(outreach.ClientErased, on=date(2024, 3, 4)).to_json()


def test_a_v1_message_is_read_as_v2(registry: EventRegistry) -> None:
    body = _v1_message()

    event = registry.parse(body)

    assert event.type == V2
    assert isinstance(event.data, ClientErased)
    assert event.data.erased_on == date(2024, 3, 4)
    assert str(event.data.client_id) == json.loads(body)["data"]["client_id"]


def test_upcasters_chain_to_the_newest_version(registry: EventRegistry) -> None:
    class ClientErased(Event):  # v3, shadowing v2 in this test only
        service_name: ClassVar[str] = "outreach"
        version: ClassVar[int] = 3
        about: ClassVar[str] = "client_id"

        client_id: UUID
        erased_on: date
        by_request: bool

    registry.register(ClientErased)
    registry.register_upcaster(V2, V3, lambda data: {**data, "by_request": True})

    event = registry.parse(_v1_message())

    assert event.type == V3
    assert isinstance(event.data, ClientErased)
    assert event.data.by_request is True
    assert event.data.erased_on == date(2024, 3, 4)


def test_upcasting_happens_before_validation(registry: EventRegistry) -> None:
    # A v1 body is invalid as v2 (no erased_on, an extra on) until it has been upcast.
    body = json.loads(_v1_message())
    body["type"] = V2
    with pytest.raises(InvalidEvent, match=r"data\.erased_on: Field required"):
        registry.parse(body)

    body["type"] = V1
    assert registry.parse(body).type == V2


def test_upcast_leaves_its_input_alone(registry: EventRegistry) -> None:
    body = json.loads(_v1_message())
    before = json.dumps(body, sort_keys=True)

    upcast = registry.upcast(body)

    assert json.dumps(body, sort_keys=True) == before
    assert upcast["type"] == V2
    assert set(upcast["data"]) == {"client_id", "erased_on"}


def test_a_failing_upcaster_makes_the_event_invalid() -> None:
    registry = DEFAULT_REGISTRY.copy()
    registry.register(ClientErased)
    registry.register_upcaster(V1, V2, lambda data: {**data, "erased_on": data["when"]})

    with pytest.raises(InvalidEvent, match=re.escape(f"upcasting {V1} to {V2} failed: 'when'")):
        registry.parse(_v1_message())


def test_the_catalogue_itself_is_untouched(registry: EventRegistry) -> None:
    assert registry.parse(_v1_message()).type == V2
    assert parse_event(_v1_message()).type == V1
    assert V2 not in DEFAULT_REGISTRY.types


def test_upcasters_may_not_loop_or_compete(registry: EventRegistry) -> None:
    with pytest.raises(ValueError, match="would loop"):
        registry.register_upcaster(V2, V1, _rename_on)
    with pytest.raises(ValueError, match="already registered"):
        registry.register_upcaster(V1, V3, _rename_on)
    with pytest.raises(ValueError, match="not a type name"):
        registry.register_upcaster("ClientErased.v1", V2, _rename_on)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(ClientErased)


def test_an_upcaster_can_be_removed(registry: EventRegistry) -> None:
    registry.unregister_upcaster(V1)
    registry.unregister(ClientErased)
    assert registry.parse(_v1_message()).type == V1
    assert sorted(registry.types) == sorted(DEFAULT_REGISTRY.types)
