"""Rehab's API: enrolment, sessions and assessments, their bad inputs, against a real store.

Each test also checks the outbox: an answer without its events, or events without the state,
is the failure the outbox exists to prevent.
"""

from __future__ import annotations

import uuid
from datetime import date

from rehab_factories import MONDAY, Rehab, middling_whoqol
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
        "baseline.answers",
    )
    r = await rehab.enrol(c, baseline=middling_whoqol(q20=None, q21=None))
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (
        422,
        "whoqol_domain_incomplete",
        "baseline.answers.social",
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
    future = await rehab.session(c, enrollment_id, date(2026, 3, 3))
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
        "answers.answers.social",  # the form's own field, under the request's
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
