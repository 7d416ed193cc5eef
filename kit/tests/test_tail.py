"""``pulih events tail`` prints one readable line per message, dead letters included."""

import json
import uuid
from datetime import date

from pulih.contracts import new_event
from pulih.contracts.events import ClientErased
from pulih.contracts.events.dead_letters import dead_letter_of
from pulih.kit.tail import one_line


def test_an_event_is_its_time_type_subject_and_data() -> None:
    client_id = uuid.uuid4()
    event = new_event(ClientErased(client_id=client_id, on=date(2026, 3, 1)), regency="3301")
    line = one_line("ibm.3301.outreach.client_erased", event.to_json())
    assert "pulih.outreach.ClientErased.v1" in line and f"subject={client_id}" in line
    assert '"on":"2026-03-01"' in line


def test_a_dead_letter_says_why_and_shows_the_beginning_of_the_refused_message() -> None:
    refused = json.dumps({"type": "pulih.clinic.ReferralAccepted.v1", "junk": "x" * 100_000}).encode()
    letter = new_event(
        dead_letter_of(
            "referral",
            consumer="referral.clinic-answers",
            subject="ibm.3301.clinic.rsud-cilacap.referral_accepted",
            stream_seq=42,
            attempts=1,
            error="other_clinic",
            reason="the referral is addressed\nto another clinic",
            payload=refused,
        ),
        regency="3301",
    )
    line = one_line("ibm.3301.dlq.referral", letter.to_json())
    assert "\n" not in line and len(line) < 600
    assert "pulih.referral.EventDeadLettered.v1" in line
    assert "subject=ibm.3301.clinic.rsud-cilacap.referral_accepted" in line
    why = "other_clinic by referral.clinic-answers (seq 42, 1 attempt): the referral is addressed to another"
    assert why in line
    copy = f"payload (utf-8, truncated, {len(refused)} bytes): " + '{"type": "pulih.clinic.Referral'
    assert copy in line


def test_a_message_that_is_not_json_is_shown_as_bytes() -> None:
    assert one_line("ibm.3301.outreach.x", b"\xff junk") == "ibm.3301.outreach.x  b'\\xff junk'"
