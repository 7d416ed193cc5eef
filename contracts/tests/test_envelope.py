"""The CloudEvents envelope: what new_event fills in, what to_json sends, what it refuses."""

import gc
import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest
from event_samples import REGENCY, sample
from pydantic import ValidationError

from pulih.contracts import CloudEvent, new_event
from pulih.contracts.envelope import envelope_type
from pulih.contracts.events import ClientErased, ClientScreened, ReferralAccepted

WIB = timezone(timedelta(hours=7))


def test_new_event_fills_the_envelope_from_the_data() -> None:
    screened = sample(ClientScreened)
    before = datetime.now(UTC)

    event = new_event(screened, regency=REGENCY)

    assert event.specversion == "1.0"
    assert event.id.version == 7
    assert type(event.id) is UUID
    assert event.source == "/pulih/3301/outreach"
    assert event.type == "pulih.outreach.ClientScreened.v1"
    assert event.subject == str(screened.client_id)
    assert before <= event.time <= datetime.now(UTC)
    assert event.time.utcoffset() == timedelta(0)
    assert event.datacontenttype == "application/json"
    assert event.regency == "3301"
    assert event.data is screened


def test_event_ids_sort_by_creation() -> None:
    ids = [new_event(sample(ClientErased), regency=REGENCY).id for _ in range(50)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 50


def test_a_clinic_event_is_about_the_referral() -> None:
    accepted = sample(ReferralAccepted)
    event = new_event(accepted, regency="7471")
    assert event.source == "/pulih/7471/clinic"
    assert event.subject == str(accepted.referral_id)


def test_time_is_kept_in_utc_and_sent_with_z() -> None:
    event = new_event(sample(ClientErased), regency=REGENCY, time=datetime(2024, 3, 4, 9, 30, tzinfo=WIB))
    assert event.time == datetime(2024, 3, 4, 2, 30, tzinfo=UTC)
    assert json.loads(event.to_json())["time"] == "2024-03-04T02:30:00Z"


def test_a_time_without_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        new_event(sample(ClientErased), regency=REGENCY, time=datetime(2024, 3, 4, 9, 30))


def test_to_json_is_compact_and_leaves_out_unset_extensions() -> None:
    event = new_event(sample(ClientErased), regency=REGENCY, causationid="cmd-1")
    body = event.to_json()
    decoded = json.loads(body)

    assert isinstance(body, bytes)
    assert b" " not in body
    assert decoded["causationid"] == "cmd-1"
    assert "correlationid" not in decoded
    assert "traceparent" not in decoded
    assert set(decoded) == {
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "regency",
        "causationid",
        "data",
    }


def test_to_json_keeps_null_data_fields() -> None:
    event = new_event(sample(ReferralAccepted, appointment_on=None), regency=REGENCY)
    assert json.loads(event.to_json())["data"]["appointment_on"] is None


def test_new_event_refuses_a_malformed_regency() -> None:
    with pytest.raises(ValidationError):
        new_event(sample(ClientErased), regency="33.01")


def _envelope_fields(data: ClientErased, **overrides: object) -> dict[str, object]:
    event = new_event(data, regency=REGENCY)
    return {**event.model_dump(), **overrides}


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"type": "pulih.outreach.ClientRegistered.v1"}, "does not match"),
        ({"source": "/pulih/3301/rehab"}, "source /pulih/3301/rehab should be"),
        ({"regency": "3302"}, "source /pulih/3301/outreach should be /pulih/3302/outreach"),
        ({"subject": "someone-else"}, "subject someone-else should be client_id"),
        ({"specversion": "0.3"}, "specversion"),
        ({"source": "pulih/3301/outreach"}, "source"),
    ],
)
def test_the_envelope_must_agree_with_its_data(overrides: dict[str, object], complaint: str) -> None:
    fields = _envelope_fields(sample(ClientErased), **overrides)
    with pytest.raises(ValidationError, match=complaint):
        envelope_type(ClientErased).model_validate(fields)


def test_the_envelope_is_immutable() -> None:
    event = new_event(sample(ClientErased), regency=REGENCY)
    with pytest.raises(ValidationError):
        event.subject = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        event.data.on = event.data.on  # type: ignore[misc]


def test_an_envelope_type_is_the_generic_cloud_event() -> None:
    assert envelope_type(ClientErased) is CloudEvent[ClientErased]


def test_an_envelope_type_is_built_once_and_kept() -> None:
    # pydantic holds CloudEvent[Model] weakly: without a strong reference a garbage collection
    # drops it, and each event written afterwards paid ~9 ms to build it again
    first = id(envelope_type(ReferralAccepted))
    gc.collect()
    assert id(envelope_type(ReferralAccepted)) == first
