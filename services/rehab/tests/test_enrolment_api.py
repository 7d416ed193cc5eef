"""Rehab's API: enrolment, sessions and assessments, their bad inputs, against a real store.

Each test also checks the outbox: an answer without its events, or events without the state,
is the failure the outbox exists to prevent.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from rehab_factories import MONDAY, Client, Rehab, middling_whoqol
from sqlalchemy import func, select

from pulih.kit.auth import Role
from pulih.kit.testing import auth
from pulih.rehab.store import Enrolment, SessionRecord


async def count(rehab: Rehab, model: object) -> int:
    async with rehab.runtime.database.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


async def test_a_screened_consenting_client_is_enrolled_with_a_baseline(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    r = await rehab.enrol(c, baseline=middling_whoqol(q3=1, q4=1, q26=1))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["phase"] == "penerimaan_awal" and body["status"] == "active"
    assert body["planned_end_on"] == "2026-06-14"  # weeks 2-16
    assert body["phases"] == [
        {"phase": "skrining", "started_on": "2026-03-02", "ended_on": "2026-03-02"},
        {"phase": "penerimaan_awal", "started_on": "2026-03-02", "ended_on": None},
    ]
    events = await rehab.outbox()
    assert [name for name, _ in events] == ["ClientEnrolled", "PhaseCompleted", "QualityOfLifeAssessed"]
    assert events[1][1] | {} == {
        "enrollment_id": body["enrollment_id"],
        "client_id": c.client_id,
        "phase": "skrining",
        "completed_on": "2026-03-02",
        "next_phase": "penerimaan_awal",
    }
    qol = events[2][1]
    assert qol["timepoint"] == "baseline" and qol["physical"] == 64.29  # (5 + 5 + 3 * 5) / 7 * 4 = 14.29


async def test_every_event_an_enrolment_emits_carries_the_request_correlation(rehab: Rehab) -> None:
    """Intake's PhaseCompleted, the baseline and the time rules caught up on the way included."""
    c = await rehab.screened_client()
    await rehab.to(date(2026, 3, 10))
    r = await rehab.http.post(
        "/v1/enrolments",
        headers={**c.agent, "X-Request-Id": "tablet-7:enrol:1"},
        json={
            "client_id": c.client_id,
            "agent_id": c.agent_id,
            "enrolled_on": "2026-03-02",
            "baseline": middling_whoqol(),
        },
    )
    assert r.status_code == 201, r.text
    events = await rehab.envelopes()
    assert [e["type"].split(".")[2] for e in events] == [
        "ClientEnrolled",
        "PhaseCompleted",  # skrining, on enrolment
        "QualityOfLifeAssessed",
        "PhaseCompleted",  # penerimaan awal, ended on Mar 8 before the request came
    ]
    assert {(e["correlationid"], e.get("causationid")) for e in events} == {("tablet-7:enrol:1", None)}


async def test_enrolment_is_refused_with_the_reason_when_its_conditions_do_not_hold(rehab: Rehab) -> None:
    unscreened = await rehab.screened_client(screened=False)
    no_consent = await rehab.screened_client(scopes=())
    referral_only = await rehab.screened_client(scopes=("referral",))
    heavy = await rehab.screened_client(recommendation="referral")
    cases = [
        (unscreened, "not_screened"),
        (no_consent, "consent_required"),
        (referral_only, "consent_required"),
        (heavy, "recommendation_not_programme"),
    ]
    for client, code in cases:
        r = await rehab.enrol(client)
        assert (r.status_code, r.json()["code"]) == (409, code), r.text
    assert await rehab.outbox() == [] and await count(rehab, Enrolment) == 0


async def test_a_client_is_enrolled_once_at_a_time(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    await rehab.enrolled(c)
    before = await rehab.outbox()
    r = await rehab.enrol(c)
    assert (r.status_code, r.json()["code"]) == (409, "already_enrolled")
    assert await count(rehab, Enrolment) == 1
    assert await rehab.outbox() == before


async def test_an_unknown_client_or_agent_and_another_unit_are_refused(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    stranger = auth(Role.AGENT, unit_id=uuid.uuid4(), sub=str(uuid.uuid4()))
    r = await rehab.http.post(
        "/v1/enrolments",
        headers=stranger,
        json={"client_id": c.client_id, "agent_id": c.agent_id, "enrolled_on": "2026-03-02"},
    )
    assert (r.status_code, r.json()["code"]) == (403, "other_unit")
    r = await rehab.http.post(
        "/v1/enrolments",
        headers=rehab.facilitator,
        json={"client_id": str(uuid.uuid4()), "agent_id": c.agent_id, "enrolled_on": "2026-03-02"},
    )
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (404, "client_not_found", "client_id")
    r = await rehab.http.post(
        "/v1/enrolments",
        headers=rehab.facilitator,
        json={"client_id": c.client_id, "agent_id": str(uuid.uuid4()), "enrolled_on": "2026-03-02"},
    )
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "unknown_agent", "agent_id")
    r = await rehab.http.post("/v1/enrolments", json={"client_id": c.client_id})
    assert (r.status_code, r.json()["code"]) == (401, "missing_token")
    assert await rehab.outbox() == [] and await count(rehab, Enrolment) == 0


async def test_wrong_types_and_a_future_date_get_422_with_the_field(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    r = await rehab.enrol(c, date(2026, 3, 9))
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "date_in_future", "enrolled_on")
    r = await rehab.http.post(
        "/v1/enrolments",
        headers=c.agent,
        json={"client_id": "not-a-uuid", "agent_id": c.agent_id, "enrolled_on": "2026-13-01"},
    )
    assert (r.status_code, r.json()["code"]) == (422, "invalid")
    assert {e["field"] for e in r.json()["errors"]} == {"client_id", "enrolled_on"}
    assert await rehab.outbox() == [] and await count(rehab, Enrolment) == 0


async def test_a_whoqol_form_that_cannot_be_scored_is_refused_with_the_field(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    r = await rehab.enrol(c, baseline=middling_whoqol(q7=6))
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "invalid", "baseline.q7")
    r = await rehab.enrol(c, baseline=middling_whoqol(q1=None, q2=None, q5=None, q8=None, q10=None, q20=None))
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        422,
        "whoqol_too_many_missing",
        "baseline",
    )
    r = await rehab.enrol(c, baseline=middling_whoqol(q20=None, q21=None))
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        422,
        "whoqol_domain_incomplete",
        "baseline",
    )
    assert await rehab.outbox() == [] and await count(rehab, Enrolment) == 0


async def test_a_session_is_recorded_when_its_kind_suits_the_stage(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    r = await rehab.session(c, enrollment_id, MONDAY, kind="konseling")
    assert r.status_code == 201, r.text
    assert r.json()["phase"] == "penerimaan_awal"
    assert r.json() == {
        "session_id": r.json()["session_id"],
        "enrollment_id": enrollment_id,
        "client_id": c.client_id,
        "agent_id": c.agent_id,
        "held_on": "2026-03-02",
        "kind": "konseling",
        "attended": True,
        "minutes": 60,
        "phase": "penerimaan_awal",
    }
    before = await rehab.outbox()
    wrong = await rehab.session(c, enrollment_id, MONDAY, kind="pemantauan")
    assert (wrong.status_code, wrong.json()["code"], wrong.json()["field"]) == (
        422,
        "kind_not_in_stage",
        "kind",
    )
    assert "penerimaan_awal" in wrong.json()["message"]
    future = await rehab.session(c, enrollment_id, date(2026, 3, 4))  # a day of slack, then no more
    assert (future.status_code, future.json()["code"], future.json()["field"]) == (
        422,
        "date_in_future",
        "held_on",
    )
    names = await rehab.outbox_names()
    assert names.count("SessionHeld") == 1 and await count(rehab, SessionRecord) == 1
    assert await rehab.outbox() == before


async def test_a_session_for_an_unknown_or_discharged_enrolment_is_refused(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    r = await rehab.session(c, str(uuid.uuid4()), MONDAY)
    assert (r.status_code, r.json()["code"]) == (404, "enrolment_not_found")
    assert await rehab.outbox() == []
    enrollment_id = await rehab.enrolled(c)
    gone = await rehab.http.post(
        f"/v1/enrolments/{enrollment_id}/discharge",
        headers=c.agent,
        json={"on": "2026-03-02", "reason": "moved"},
    )
    assert gone.status_code == 200 and gone.json()["discharge_reason"] == "moved"
    before = await rehab.outbox()
    r = await rehab.session(c, enrollment_id, MONDAY)
    assert (r.status_code, r.json()["code"]) == (409, "enrolment_discharged")
    assert (await rehab.outbox_names())[-1] == "ClientDischarged"
    assert await rehab.outbox() == before
    assert await count(rehab, SessionRecord) == 0


async def test_a_repeated_idempotency_key_returns_the_first_answer_and_changes_nothing(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    body = {
        "agent_id": c.agent_id,
        "held_on": "2026-03-02",
        "kind": "edukasi",
        "attended": True,
        "minutes": 45,
    }
    headers = {**c.agent, "Idempotency-Key": "tablet-7:session:1"}
    first = await rehab.http.post(f"/v1/enrolments/{enrollment_id}/sessions", headers=headers, json=body)
    again = await rehab.http.post(f"/v1/enrolments/{enrollment_id}/sessions", headers=headers, json=body)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    before = await rehab.outbox()
    other = await rehab.http.post(
        f"/v1/enrolments/{enrollment_id}/sessions", headers=headers, json={**body, "minutes": 50}
    )
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_key_reused")
    assert await count(rehab, SessionRecord) == 1
    assert (await rehab.outbox_names()).count("SessionHeld") == 1
    assert await rehab.outbox() == before


async def test_assessments_exit_only_in_aftercare_and_once(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    url = f"/v1/enrolments/{enrollment_id}/assessments"
    before = await rehab.outbox()
    early = await rehab.http.post(
        url,
        headers=c.agent,
        json={"timepoint": "exit", "assessed_on": "2026-03-02", "answers": middling_whoqol()},
    )
    assert (early.status_code, early.json()["code"]) == (409, "exit_too_early")
    twice = await rehab.http.post(
        url,
        headers=c.agent,
        json={"timepoint": "baseline", "assessed_on": "2026-03-02", "answers": middling_whoqol()},
    )
    assert (twice.status_code, twice.json()["code"]) == (409, "assessment_exists")
    unscorable = await rehab.http.post(
        url,
        headers=c.agent,
        json={
            "timepoint": "follow_up",
            "assessed_on": "2026-03-02",
            "answers": middling_whoqol(q20=None, q21=None),
        },
    )
    assert (unscorable.status_code, unscorable.json()["code"], unscorable.json()["field"]) == (
        422,
        "whoqol_domain_incomplete",
        "answers",  # the form, as the request names it
    )
    assert (await rehab.outbox_names()).count("QualityOfLifeAssessed") == 1
    assert await rehab.outbox() == before


async def test_an_erased_client_cannot_be_enrolled(rehab: Rehab) -> None:
    from pulih.contracts.events.outreach import ClientErased

    c = await rehab.screened_client()
    await rehab.apply(ClientErased(client_id=uuid.UUID(c.client_id), on=date(2026, 2, 28)))
    r = await rehab.enrol(c)
    assert (r.status_code, r.json()["code"]) == (409, "client_erased")
    assert await rehab.outbox() == [] and await count(rehab, Enrolment) == 0
    seen = await rehab.http.get(f"/v1/clients/{c.client_id}", headers=c.agent)
    assert seen.json()["erased"] is True


async def test_a_discharge_or_a_follow_up_out_of_turn_is_refused(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    discharge = f"/v1/enrolments/{enrollment_id}/discharge"
    follow_up = f"/v1/clients/{c.client_id}/follow-ups"
    before = await rehab.outbox()
    r = await rehab.http.post(follow_up, headers=c.agent, json={"on": "2026-03-02", "status": "abstinent"})
    assert (r.status_code, r.json()["code"]) == (409, "not_discharged")
    r = await rehab.http.post(discharge, headers=c.agent, json={"on": "2026-03-01", "reason": "moved"})
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "date_before_stage", "on")
    assert await rehab.outbox() == before

    r = await rehab.http.post(discharge, headers=c.agent, json={"on": "2026-03-02", "reason": "moved"})
    assert r.status_code == 200, r.text
    before = await rehab.outbox()
    r = await rehab.http.post(discharge, headers=c.agent, json={"on": "2026-03-02", "reason": "died"})
    assert (r.status_code, r.json()["code"]) == (409, "enrolment_discharged")
    r = await rehab.http.post(follow_up, headers=c.agent, json={"on": "2026-03-01", "status": "abstinent"})
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "date_before_discharge", "on")
    assert await rehab.outbox() == before


async def discharged_client(rehab: Rehab) -> tuple[Client, str]:
    """A client enrolled on Monday 2 March and discharged (moved away) the same day."""
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    r = await rehab.http.post(
        f"/v1/enrolments/{enrollment_id}/discharge",
        headers=c.agent,
        json={"on": "2026-03-02", "reason": "moved"},
    )
    assert r.status_code == 200, r.text
    return c, enrollment_id


@pytest.mark.parametrize(
    ("day", "code"), [("2999-03-02", "date_in_future"), ("1800-03-02", "date_too_early")]
)
async def test_every_date_rehab_is_told_lies_between_1900_and_the_regency_s_tomorrow(
    rehab: Rehab, day: str, code: str
) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    gone, gone_enrolment = await discharged_client(rehab)
    session = {"agent_id": c.agent_id, "held_on": day, "kind": "konseling", "attended": True, "minutes": 60}
    requests = [
        (
            "/v1/enrolments",
            c.agent,
            {"client_id": c.client_id, "agent_id": c.agent_id, "enrolled_on": day},
            "enrolled_on",
        ),
        (f"/v1/enrolments/{enrollment_id}/sessions", c.agent, session, "held_on"),
        (
            f"/v1/enrolments/{gone_enrolment}/assessments",
            gone.agent,
            {"timepoint": "follow_up", "assessed_on": day, "answers": middling_whoqol()},
            "assessed_on",
        ),
        (f"/v1/enrolments/{enrollment_id}/discharge", c.agent, {"on": day, "reason": "moved"}, "on"),
        (f"/v1/clients/{gone.client_id}/follow-ups", gone.agent, {"on": day, "status": "abstinent"}, "on"),
    ]
    before = await rehab.outbox()
    for url, headers, body, field in requests:
        r = await rehab.http.post(url, headers=headers, json=body)
        assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, code, field), url
    assert await rehab.outbox() == before
    assert (await rehab.enrolment(enrollment_id))["status"] == "active"


async def test_a_date_a_day_past_the_regency_s_today_is_slack_for_a_device_ahead_of_it(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    r = await rehab.session(c, enrollment_id, date(2026, 3, 3))  # Jayapura is past midnight already
    assert r.status_code == 201, r.text


async def test_nothing_is_dated_before_what_it_rests_on(rehab: Rehab) -> None:
    c = await rehab.screened_client()  # screened on 23 February
    r = await rehab.enrol(c, date(2026, 2, 20))
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        422,
        "date_before_screening",
        "enrolled_on",
    )
    assert await rehab.outbox() == [] and await count(rehab, Enrolment) == 0

    enrollment_id = await rehab.enrolled(c)
    await rehab.to(date(2026, 3, 5))
    assert (await rehab.session(c, enrollment_id, date(2026, 3, 4))).status_code == 201
    before = await rehab.outbox()
    r = await rehab.session(c, enrollment_id, date(2026, 3, 1))
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "date_before_enrolment", "held_on")
    r = await rehab.http.post(
        f"/v1/enrolments/{enrollment_id}/discharge",
        headers=c.agent,
        json={"on": "2026-03-03", "reason": "moved"},
    )
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, "date_before_last_seen", "on")
    assert await rehab.outbox() == before

    gone, gone_enrolment = await discharged_client(rehab)
    await rehab.to(date(2026, 3, 10))
    follow_up = {"timepoint": "follow_up", "assessed_on": "2026-03-01", "answers": middling_whoqol()}
    before = await rehab.outbox()
    r = await rehab.http.post(
        f"/v1/enrolments/{gone_enrolment}/assessments", headers=gone.agent, json=follow_up
    )
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        422,
        "date_before_enrolment",
        "assessed_on",
    )
    r = await rehab.http.post(
        f"/v1/enrolments/{gone_enrolment}/assessments",
        headers=gone.agent,
        json={**follow_up, "assessed_on": "2026-03-02"},
    )
    assert r.status_code == 201, r.text  # on the day of the discharge
    assert (await rehab.outbox_names())[len(before) :] == ["QualityOfLifeAssessed"]


async def test_a_follow_up_assessment_before_the_discharge_or_an_exit_before_aftercare_is_refused(
    rehab: Rehab,
) -> None:
    c = await rehab.screened_client()
    sent_back = await rehab.enrolled(c)  # on 2 March; at a clinic from 4 March, back in aftercare on 9 March
    referral_id = await rehab.refer(c, date(2026, 3, 4))
    await rehab.to(date(2026, 3, 9))
    await rehab.close_referral(referral_id, date(2026, 3, 9), "completed", back_referral=True)
    other = await rehab.screened_client()
    moved = await rehab.enrolled(other)  # on 2 March; moved away on 9 March
    r = await rehab.http.post(
        f"/v1/enrolments/{moved}/discharge", headers=other.agent, json={"on": "2026-03-09", "reason": "moved"}
    )
    assert r.status_code == 200, r.text
    before = await rehab.outbox()

    r = await rehab.http.post(
        f"/v1/enrolments/{sent_back}/assessments",
        headers=c.agent,
        json={"timepoint": "exit", "assessed_on": "2026-03-05", "answers": middling_whoqol()},
    )
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        422,
        "date_before_aftercare",
        "assessed_on",
    )
    r = await rehab.http.post(
        f"/v1/enrolments/{moved}/assessments",
        headers=other.agent,
        json={"timepoint": "follow_up", "assessed_on": "2026-03-06", "answers": middling_whoqol()},
    )
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        422,
        "date_before_discharge",
        "assessed_on",
    )
    assert await rehab.outbox() == before


async def test_a_screening_older_than_the_programme_allows_asks_for_a_new_one(rehab: Rehab) -> None:
    c = await rehab.screened_client()  # screened on 23 February
    await rehab.to(date(2026, 5, 25))  # 91 days later
    r = await rehab.enrol(c, date(2026, 5, 25))
    assert (r.status_code, r.json()["code"]) == (409, "screening_too_old")
    assert "screen the client again" in r.json()["message"]
    assert await rehab.outbox() == [] and await count(rehab, Enrolment) == 0
    r = await rehab.enrol(c, date(2026, 5, 24), baseline=middling_whoqol())  # 90 days: still good
    assert r.status_code == 201, r.text


SOME_ID = "0190f3a2-7c41-7000-8000-000000000001"
MALFORMED = [
    ("POST", "/v1/enrolments", {"enrolled_on": "someday", "extra": 1}),
    ("GET", "/v1/enrolments?status=asleep&unit_id=nobody", None),
    ("GET", "/v1/enrolments/not-an-id", None),
    ("POST", f"/v1/enrolments/{SOME_ID}/discharge", {"on": "2026-02-30", "reason": "bored"}),
    ("POST", f"/v1/enrolments/{SOME_ID}/assessments", {"timepoint": "whenever"}),
    ("POST", f"/v1/enrolments/{SOME_ID}/sessions", {"kind": "karaoke", "minutes": -5}),
    ("POST", "/v1/clients/not-an-id/follow-ups", {"status": "fine"}),
    ("GET", "/v1/clients/not-an-id", None),
    ("GET", "/v1/units/not-an-id/worklist?date=yesterday", None),
]


@pytest.mark.parametrize(("method", "url", "body"), MALFORMED, ids=[f"{m} {u}" for m, u, _ in MALFORMED])
async def test_a_caller_without_a_field_role_is_refused_before_the_request_is_read(
    rehab: Rehab, method: str, url: str, body: dict[str, object] | None
) -> None:
    """National, clinic, service and admin tokens learn nothing of a request's shape."""
    c = await rehab.screened_client()
    r = await rehab.http.request(method, url, headers=c.agent, json=body)
    assert (r.status_code, r.json()["code"]) == (422, "invalid")  # the request is malformed indeed
    outsiders = [
        auth(Role.NATIONAL),
        auth(Role.CLINIC, clinic_id="klinik-pratama-cilacap"),
        auth(Role.SERVICE, sub="referral"),
        auth(Role.ADMIN),
    ]
    for headers in outsiders:
        r = await rehab.http.request(method, url, headers=headers, json=body)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden_role"), r.text
    assert await rehab.outbox() == []
