"""The regency generator (bench/generate_regency.py) makes valid, causally consistent events,
and the contracts read them the same on their plain path as on their general one."""

from __future__ import annotations

import importlib
import json
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from pulih.contracts import DEFAULT_REGISTRY, IdentityRefused, parse_event

BENCH = Path(__file__).resolve().parents[1] / "bench"


def generator() -> ModuleType:
    """``bench/generate_regency.py`` as a module."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("generate_regency")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, bytes]]:
    """10,000 generated events written to JSON lines and read back."""
    gen = generator()
    path = tmp_path_factory.mktemp("regency") / "regency.jsonl"
    plan = gen.plan_for("3301", 10_000, months=18, seed=11, end=date(2026, 6, 30))
    assert gen.write_lines(gen.generate(plan), path) == 10_000
    return list(gen.read_lines(path))


def test_every_generated_event_is_valid_and_on_its_subject(sample: list[tuple[str, str, bytes]]) -> None:
    kinds: Counter[str] = Counter()
    for subject, event_id, body in sample:
        event = parse_event(body)
        assert str(event.id) == event_id
        assert subject.startswith("ibm.3301.")
        assert event.regency == "3301"
        kinds[type(event.data).__name__] += 1
    # the regency's life, not one kind of event: every step of the programme and of a referral
    for kind in (
        "UnitEstablished",
        "AgentRegistered",
        "OutreachActivityRecorded",
        "ClientRegistered",
        "ConsentRecorded",
        "ClientScreened",
        "ClientEnrolled",
        "SessionHeld",
        "QualityOfLifeAssessed",
        "PhaseCompleted",
        "ClientDischarged",
        "FollowUpRecorded",
        "ReferredToClinic",
        "ReferralAccepted",
        "ClientAttended",
        "TreatmentCompleted",
        "ReferralClosed",
    ):
        assert kinds[kind] > 0, kind
    assert kinds["SessionHeld"] > len(sample) / 4


def _data(body: bytes) -> dict[str, Any]:
    return dict(json.loads(body)["data"])


def test_events_come_after_what_they_build_on(sample: list[tuple[str, str, bytes]]) -> None:
    units, clients, enrolments, referrals, dropouts = set(), set(), set(), set(), set()
    last_time = ""
    for _, _, body in sample:
        envelope = json.loads(body)
        kind, data = envelope["type"].split(".")[2], envelope["data"]
        assert envelope["time"] >= last_time, "the stream is in time order"
        last_time = envelope["time"]
        if kind == "UnitEstablished":
            units.add(data["unit_id"])
        elif kind in ("AgentRegistered", "OutreachActivityRecorded"):
            assert data["unit_id"] in units
        elif kind == "ClientRegistered":
            assert data["unit_id"] in units
            clients.add(data["client_id"])
        elif kind in ("ConsentRecorded", "ClientScreened", "FollowUpRecorded"):
            assert data["client_id"] in clients
        elif kind == "ClientEnrolled":
            assert data["client_id"] in clients
            enrolments.add(data["enrollment_id"])
        elif kind in ("SessionHeld", "QualityOfLifeAssessed", "PhaseCompleted"):
            assert data["enrollment_id"] in enrolments
        elif kind == "ClientDischarged":
            assert data["enrollment_id"] in enrolments
            if data["reason"] == "dropped_out":
                dropouts.add((data["enrollment_id"], data["on"]))
        elif kind == "DropoutReversed":
            assert (data["enrollment_id"], data["dropped_out_on"]) in dropouts
        elif kind == "ReferredToClinic":
            assert data["client_id"] in clients
            referrals.add(data["referral_id"])
        elif "referral_id" in data:
            assert data["referral_id"] in referrals, kind


def test_no_event_is_dated_after_it_was_sent(sample: list[tuple[str, str, bytes]]) -> None:
    for _, _, body in sample:
        envelope = json.loads(body)
        sent = envelope["time"][:10]
        for key, value in envelope["data"].items():
            if isinstance(value, str) and len(value) == 10 and value[4] == "-" and key != "planned_end_on":
                if key in ("respond_by", "appointment_on"):
                    continue
                assert value <= sent, (envelope["type"], key)


def test_the_same_seed_makes_the_same_events() -> None:
    gen = generator()
    plan = gen.plan_for("3301", 500, months=6, seed=3, units=4, end=date(2026, 3, 31))
    first = [event.to_json() for _, event in gen.generate(plan)]
    again = [event.to_json() for _, event in gen.generate(plan)]
    assert first == again and len(first) == 500


def test_the_plain_path_reads_every_event_as_the_general_path(sample: list[tuple[str, str, bytes]]) -> None:
    for _, _, body in sample:
        plain = DEFAULT_REGISTRY._parse_plain(body)
        assert plain is not None
        assert plain == parse_event(json.loads(body))  # a decoded object takes the general path


@pytest.mark.parametrize(
    "planted",
    [b'"NIK":"1",', b'"NI\xe2\x84\xaa":"1",', b'"full-NAME":"x",', b'"\\tnik ":"1",', b'"n\\u0069k":"1",'],
)
def test_an_identity_key_is_refused_on_the_plain_path_too(
    sample: list[tuple[str, str, bytes]], planted: bytes
) -> None:
    _, _, body = sample[50]
    with pytest.raises(IdentityRefused):
        parse_event(body.replace(b'"data":{', b'"data":{' + planted))


def test_an_unknown_field_is_ignored_on_the_plain_path_too(sample: list[tuple[str, str, bytes]]) -> None:
    _, _, body = sample[50]
    newer = body.replace(b'"data":{', b'"data":{"added_in_v2":1,').replace(
        b'{"specversion"', b'{"x":1,"specversion"'
    )
    assert DEFAULT_REGISTRY._parse_plain(newer) is None
    assert parse_event(newer) == parse_event(body)
