"""A dead letter is an event of the consuming service, with a bounded copy of what it refused."""

import base64
import json
from typing import Any

import pytest
from event_samples import REGENCY

from pulih.contracts import new_event, parse_event
from pulih.contracts.events.dead_letters import (
    PAYLOAD_LIMIT,
    EventDeadLettered,
    RehabEventDeadLettered,
    dead_letter_model,
    dead_letter_of,
)


def letter(payload: bytes, **changes: Any) -> EventDeadLettered:
    fields: dict[str, Any] = {
        "consumer": "rehab.referral-events",
        "subject": "ibm.3301.referral.referral_closed.rsud-cilacap",
        "stream_seq": 17,
        "attempts": 4,
        "error": "not_ready",
        "reason": "still not applicable after 4 attempts",
        "payload": payload,
    }
    return dead_letter_of("rehab", **{**fields, **changes})


def test_a_dead_letter_is_the_consuming_service_s_event_about_the_refused_subject() -> None:
    event = new_event(letter(b'{"type":"pulih.referral.ReferralClosed.v1"}'), regency=REGENCY)
    assert event.type == "pulih.rehab.EventDeadLettered.v1"
    assert event.source == "/pulih/3301/rehab"
    assert event.subject == "ibm.3301.referral.referral_closed.rsud-cilacap"
    assert type(event.data) is RehabEventDeadLettered
    assert parse_event(event.to_json()) == event


def test_a_text_message_is_kept_as_it_was() -> None:
    raw = b'{"specversion":"1.0","data":{"on":"2026-03-02"}} '
    data = letter(raw)
    assert data.payload == raw.decode()
    assert (data.payload_encoding, data.payload_size) == ("utf-8", len(raw))
    assert not data.payload_truncated and not data.payload_redacted


def test_bytes_that_are_not_utf8_are_kept_in_base64() -> None:
    raw = b"\xff\xfe\x00junk"
    data = letter(raw)
    assert data.payload_encoding == "base64"
    assert base64.b64decode(data.payload) == raw
    assert not data.payload_truncated


@pytest.mark.parametrize(
    "raw",
    [
        b"x" * (900 * 1024),  # the 900 KB junk message of issue 9
        b"\x00" * (200 * 1024),  # six bytes each once escaped in JSON
        "é".encode() * (100 * 1024),
        b'"' * (100 * 1024),
    ],
    ids=["ascii", "nul", "two-byte", "quotes"],
)
def test_an_oversized_text_keeps_its_beginning_within_64_kib_as_sent(raw: bytes) -> None:
    data = letter(raw)
    sent = json.dumps(data.payload, ensure_ascii=False).encode()
    assert PAYLOAD_LIMIT == 64 * 1024
    assert PAYLOAD_LIMIT - 8 <= len(sent) - 2 <= PAYLOAD_LIMIT
    assert raw.decode().startswith(data.payload)
    assert data.payload_truncated and data.payload_size == len(raw)
    assert len(new_event(data, regency=REGENCY).to_json()) < PAYLOAD_LIMIT + 2048


def test_oversized_bytes_keep_their_beginning_in_base64_within_64_kib() -> None:
    raw = b"\xff" * (900 * 1024)
    data = letter(raw)
    kept = base64.b64decode(data.payload)
    assert len(data.payload) <= PAYLOAD_LIMIT and raw.startswith(kept) and len(kept) == 48 * 1024
    assert data.payload_truncated and data.payload_encoding == "base64"


@pytest.mark.parametrize("raw", [b"x" * 5000, b"\xff" * 5000], ids=["text", "bytes"])
def test_a_smaller_limit_keeps_less_and_zero_keeps_nothing(raw: bytes) -> None:
    small = letter(raw, payload_limit=1024)
    assert 1000 <= len(small.payload) <= 1024 and small.payload_truncated
    empty = letter(raw, payload_limit=0)
    assert empty.payload == "" and empty.payload_truncated and empty.payload_size == 5000
    assert len(letter(raw, payload_limit=10**9).payload) <= PAYLOAD_LIMIT


def test_identity_values_are_redacted_from_the_copy() -> None:
    smuggled = {"nik": "3301011505900001", "x": [{"Nama": "Budi"}]}
    raw = json.dumps({"type": "pulih.clinic.ReferralAccepted.v1", "data": smuggled}).encode()
    data = letter(raw, error="invalid_event", reason="data.nik: identity keys are refused")
    assert "3301011505900001" not in data.payload and "Budi" not in data.payload
    assert json.loads(data.payload)["data"] == {"nik": "[redacted]", "x": [{"Nama": "[redacted]"}]}
    assert data.payload_redacted and data.payload_size == len(raw)


def test_a_long_reason_is_cut_to_fit() -> None:
    data = letter(b"{}", reason="r" * 5000)
    assert len(data.reason) == 2000 and data.reason.endswith("…")


def test_an_error_that_is_not_a_code_is_made_one_so_the_refusal_is_recorded() -> None:
    assert letter(b"{}", error="Other-Clinic").error == "other_clinic"
    assert letter(b"{}", error="500").error == "unknown_error"


def test_only_consuming_services_have_a_dead_letter() -> None:
    assert dead_letter_model("referral").type_name() == "pulih.referral.EventDeadLettered.v1"
    with pytest.raises(ValueError, match="no dead-letter event"):
        dead_letter_model("clinic")
