"""parse_event reads back every event it sent and names what is wrong with anything else."""

import json
from typing import Any

import pytest
from event_samples import SAMPLED_EVENTS, VARIANTS, sample_message

from pulih.contracts import EVENT_TYPES, Event, InvalidEvent, parse_event
from pulih.contracts.events import ClientRegistered, ClientScreened, ReferralAccepted, UnitEstablished
from pulih.contracts.identity_keys import IDENTITY_KEYS


def test_every_event_has_a_sample() -> None:
    assert set(SAMPLED_EVENTS) == set(EVENT_TYPES.values())


@pytest.mark.parametrize("model", SAMPLED_EVENTS, ids=lambda model: model.__name__)
def test_every_event_survives_the_wire(model: type[Event]) -> None:
    sent = sample_message(model)

    received = parse_event(sent.to_json())

    assert received == sent
    assert type(received.data) is model


@pytest.mark.parametrize(("model", "overrides"), VARIANTS, ids=[model.__name__ for model, _ in VARIANTS])
def test_optional_and_null_fields_survive_the_wire(model: type[Event], overrides: dict[str, Any]) -> None:
    sent = sample_message(model, **overrides)
    assert parse_event(sent.to_json()) == sent


def test_parse_event_takes_text_bytes_or_a_decoded_object() -> None:
    sent = sample_message(ClientScreened)
    body = sent.to_json()
    assert parse_event(body.decode()) == sent
    assert parse_event(json.loads(body)) == sent


def _registered_body(**data_changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(sample_message(ClientRegistered).to_json())
    body["data"].update(data_changes)
    return body


def _reason(raw: bytes | str | dict[str, Any]) -> str:
    with pytest.raises(InvalidEvent) as raised:
        parse_event(raw)
    assert str(raised.value) == raised.value.reason
    return raised.value.reason


def test_an_unknown_type_is_named() -> None:
    body = {**_registered_body(), "type": "pulih.x.Y.v1"}
    assert _reason(body) == "unknown type pulih.x.Y.v1"


def test_a_missing_type_is_named() -> None:
    body = _registered_body()
    del body["type"]
    assert _reason(body) == "type: Field required"


def test_a_code_outside_its_list_is_named() -> None:
    assert _reason(_registered_body(sex="x")) == "data.sex: Input should be 'm' or 'f'"


def test_a_missing_field_is_named() -> None:
    body = _registered_body()
    del body["data"]["unit_id"]
    assert _reason(body) == "data.unit_id: Field required"


IDENTITY_REFUSED = "identity keys are refused, no event carries a person's identity"


def test_a_name_smuggled_into_the_data_is_refused() -> None:
    reason = _reason(_registered_body(name="Budi Santoso"))
    assert reason == f"data.name: {IDENTITY_REFUSED}"


def test_an_identity_attribute_in_the_envelope_is_refused() -> None:
    body = {**_registered_body(), "nik": "3301010101010001"}
    assert _reason(body) == f"nik: {IDENTITY_REFUSED}"


@pytest.mark.parametrize("key", IDENTITY_KEYS)
def test_every_identity_key_is_refused_at_any_depth(key: str) -> None:
    body = _registered_body(contact={"people": [{"relation": "mother", key: "x"}]})
    assert _reason(body) == f"data.contact.people.0.{key}: {IDENTITY_REFUSED}"


def test_an_identity_key_is_refused_inside_an_unknown_extension_and_a_known_nested_model() -> None:
    body = {**_registered_body(), "pulihext": {"who": {"NIK": "3301010101010001"}}}
    assert _reason(body) == f"pulihext.who.NIK: {IDENTITY_REFUSED}"
    screened: dict[str, Any] = json.loads(sample_message(ClientScreened).to_json())
    screened["data"]["substances"][1]["tanggal-lahir"] = "1990-05-15"
    assert _reason(screened) == f"data.substances.1.tanggal-lahir: {IDENTITY_REFUSED}"


def test_a_field_the_event_declares_is_not_an_identity_key() -> None:
    sent = sample_message(UnitEstablished)  # the unit's name, a declared field
    assert parse_event(sent.to_json()) == sent


def test_an_answer_with_an_optional_field_and_a_dataschema_this_version_does_not_know_is_read() -> None:
    sent = sample_message(ReferralAccepted)
    body: dict[str, Any] = json.loads(sent.to_json())
    body["dataschema"] = "https://pulih.id/schemas/ReferralAccepted.v1.json"
    body["clinicext"] = {"system": "simrs", "version": 3}  # another extension
    body["data"]["note"] = "appointment confirmed by phone"

    assert parse_event(body) == sent


def test_unknown_fields_of_a_nested_model_are_ignored_too() -> None:
    sent = sample_message(ClientScreened)
    body: dict[str, Any] = json.loads(sent.to_json())
    body["data"]["substances"][0]["age_of_first_use"] = 15
    assert parse_event(body) == sent


def test_building_an_event_still_refuses_a_field_the_catalogue_does_not_have() -> None:
    # tolerance is for reading: a misspelt field in Pulih's own code fails where it is written
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        ClientRegistered.model_validate(
            {**json.loads(sample_message(ClientRegistered).to_json())["data"], "registerd_on": "2024-03-04"}
        )


def test_a_malformed_id_is_named() -> None:
    reason = _reason(_registered_body(client_id="budi"))
    assert reason.startswith("data.client_id: Input should be a valid UUID")


def test_an_out_of_range_score_is_named() -> None:
    body: dict[str, Any] = json.loads(sample_message(ClientScreened).to_json())
    body["data"]["substances"][0]["score"] = 40
    reason = _reason(body)
    assert reason == "data.substances.0.score: Input should be less than or equal to 39"


def test_a_subject_that_is_not_the_data_s_is_named() -> None:
    body = {**_registered_body(), "subject": "00000000-0000-0000-0000-000000000000"}
    assert _reason(body).startswith("subject 00000000-0000-0000-0000-000000000000 should be")


def test_every_problem_is_named_at_once() -> None:
    body = _registered_body(sex="x", age_band="old")
    reason = _reason(body)
    assert "data.sex:" in reason
    assert "data.age_band:" in reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "invalid JSON: "),
        (b"\xff\xfe", "invalid JSON: "),
        ("", "invalid JSON: "),
        (b"[1, 2]", "an event must be a JSON object"),
        (b'"ClientScreened"', "an event must be a JSON object"),
    ],
)
def test_what_is_not_a_json_object_is_refused(raw: bytes | str, expected: str) -> None:
    assert _reason(raw).startswith(expected)


def test_invalid_event_is_a_value_error_with_a_code() -> None:
    with pytest.raises(ValueError) as raised:
        parse_event(b"{}")
    assert isinstance(raised.value, InvalidEvent)
    assert raised.value.code == "invalid_event"
