"""The programme over time, through the API on the injected clock: sixteen weeks in seconds,
dropout, the pause while a client is at a clinic, aftercare, follow-ups and the worklist."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from importlib.resources import files
from pathlib import Path

import pytest
from rehab_factories import MONDAY, Client, Rehab, middling_whoqol
from sqlalchemy import select

from pulih.kit.service import StartupError
from pulih.kit.testing import service_app
from pulih.rehab.app import build
from pulih.rehab.store import FollowUp


def phases_completed(events: list[tuple[str, dict[str, object]]]) -> list[tuple[object, ...]]:
    return [
        (d["phase"], d["completed_on"], d["next_phase"]) for name, d in events if name == "PhaseCompleted"
    ]


async def test_a_client_walks_through_all_sixteen_weeks_and_is_discharged_completed(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    for week in range(15):  # weeks 2 to 16, one attended session each
        day = MONDAY + timedelta(weeks=week, days=2)
        await rehab.to(day)
        kind = "konseling" if week < 11 else "pemantauan"
        r = await rehab.session(c, enrollment_id, day, kind=kind)
        assert r.status_code == 201, (week, r.text)
    exit_form = {"timepoint": "exit", "assessed_on": "2026-06-10", "answers": middling_whoqol(q15=5, q16=5)}
    r = await rehab.http.post(f"/v1/enrolments/{enrollment_id}/assessments", headers=c.agent, json=exit_form)
    assert r.status_code == 201, r.text
    await rehab.to(date(2026, 6, 15))

    events = await rehab.outbox()
    assert phases_completed(events) == [
        ("skrining", "2026-03-02", "penerimaan_awal"),
        ("penerimaan_awal", "2026-03-08", "intervensi"),
        ("intervensi", "2026-05-17", "bina_lanjut"),
        ("bina_lanjut", "2026-06-14", None),
    ]
    names = [name for name, _ in events]
    assert names[0] == "ClientEnrolled" and names[-1] == "ClientDischarged"
    assert names.count("SessionHeld") == 15
    assert events[-1][1]["reason"] == "completed" and events[-1][1]["on"] == "2026-06-14"
    enrolment = await rehab.enrolment(enrollment_id)
    assert (enrolment["status"], enrolment["sessions_attended"]) == ("discharged", 15)
    assert [p["phase"] for p in enrolment["phases"]] == [
        "skrining",
        "penerimaan_awal",
        "intervensi",
        "bina_lanjut",
    ]
    assert enrolment["phases"][-1]["ended_on"] == "2026-06-14"

    # follow-ups fall due at +3 and +6 months and show on the worklist until recorded
    worklist = await rehab.http.get(f"/v1/units/{c.unit_id}/worklist?date=2026-09-14", headers=c.agent)
    tasks = worklist.json()["agents"][0]["tasks"]
    assert [(t["kind"], t["due_on"]) for t in tasks] == [("follow_up_due", "2026-09-14")]
    await rehab.to(date(2026, 9, 15))
    r = await rehab.http.post(
        f"/v1/clients/{c.client_id}/follow-ups",
        headers=c.agent,
        json={"on": "2026-09-15", "status": "abstinent"},
    )
    assert r.status_code == 201 and r.json()["due_on"] == "2026-09-14"
    worklist = await rehab.http.get(f"/v1/units/{c.unit_id}/worklist?date=2026-12-10", headers=c.agent)
    tasks = worklist.json()["agents"][0]["tasks"]
    assert [(t["kind"], t["due_on"]) for t in tasks] == [("follow_up_due", "2026-12-14")]
    assert (await rehab.outbox_names())[-1] == "FollowUpRecorded"


async def test_three_weeks_without_an_attended_session_discharges_as_dropped_out(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    await rehab.to(date(2026, 3, 11))
    await rehab.session(c, enrollment_id, date(2026, 3, 11), kind="edukasi")
    await rehab.to(date(2026, 3, 25))
    missed = await rehab.session(c, enrollment_id, date(2026, 3, 25), kind="edukasi", attended=False)
    assert missed.status_code == 201  # a session held but not attended does not keep the client in
    await rehab.to(date(2026, 4, 1))
    assert (await rehab.enrolment(enrollment_id))["status"] == "active"  # Apr 1 is the last day
    await rehab.to(date(2026, 4, 2))
    enrolment = await rehab.enrolment(enrollment_id)
    assert (enrolment["status"], enrolment["discharge_reason"], enrolment["discharged_on"]) == (
        "discharged",
        "dropped_out",
        "2026-04-01",
    )
    discharged = [d for name, d in await rehab.outbox() if name == "ClientDischarged"]
    assert discharged == [
        {
            "enrollment_id": enrollment_id,
            "client_id": c.client_id,
            "on": "2026-04-01",
            "reason": "dropped_out",
        }
    ]


async def dropped_out_on_april_1(rehab: Rehab) -> tuple[Client, str]:
    """A client enrolled on Monday 2 March, last seen on 11 March, out by the rule on 1 April."""
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    await rehab.to(date(2026, 3, 11))
    assert (await rehab.session(c, enrollment_id, date(2026, 3, 11), kind="edukasi")).status_code == 201
    await rehab.to(date(2026, 4, 6))
    enrolment = await rehab.enrolment(enrollment_id)
    assert (enrolment["status"], enrolment["discharge_reason"]) == ("discharged", "dropped_out")
    return c, enrollment_id


async def follow_ups_due(rehab: Rehab, enrollment_id: str) -> list[date | None]:
    async with rehab.runtime.database.sessions() as s:
        rows = await s.scalars(
            select(FollowUp.due_on)
            .where(FollowUp.enrollment_id == uuid.UUID(enrollment_id))
            .order_by(FollowUp.due_on)
        )
        return list(rows)


async def test_a_session_synced_late_disproves_the_dropout_and_reopens_the_enrolment(rehab: Rehab) -> None:
    c, enrollment_id = await dropped_out_on_april_1(rehab)
    assert await follow_ups_due(rehab, enrollment_id) == [date(2026, 7, 1), date(2026, 10, 1)]
    worklist = f"/v1/units/{c.unit_id}/worklist?date=2026-04-06"
    assert (await rehab.http.get(worklist, headers=c.agent)).json()["agents"] == []
    before = await rehab.envelopes()

    # the tablet that recorded a group session on 25 March syncs on 6 April
    r = await rehab.http.post(
        f"/v1/enrolments/{enrollment_id}/sessions",
        headers={**c.agent, "X-Request-Id": "tablet-3:session:9"},
        json={
            "agent_id": c.agent_id,
            "held_on": "2026-03-25",
            "kind": "kelompok",
            "attended": True,
            "minutes": 90,
        },
    )
    assert (r.status_code, r.json()["phase"]) == (201, "intervensi"), r.text

    enrolment = await rehab.enrolment(enrollment_id)
    assert (enrolment["status"], enrolment["discharged_on"], enrolment["discharge_reason"]) == (
        "active",
        None,
        None,
    )
    assert enrolment["phases"][-1] == {"phase": "intervensi", "started_on": "2026-03-09", "ended_on": None}
    new = (await rehab.envelopes())[len(before) :]
    assert [e["type"] for e in new] == ["pulih.rehab.DropoutReversed.v1", "pulih.rehab.SessionHeld.v1"]
    assert new[0]["data"] == {
        "enrollment_id": enrollment_id,
        "client_id": c.client_id,
        "dropped_out_on": "2026-04-01",
        "on": "2026-03-25",
    }
    assert new[1]["data"]["held_on"] == "2026-03-25" and new[1]["data"]["attended"] is True
    assert {e["correlationid"] for e in new} == {"tablet-3:session:9"}
    assert await follow_ups_due(rehab, enrollment_id) == []  # the dropout's follow-ups are gone

    tasks = (await rehab.http.get(worklist, headers=c.agent)).json()["agents"][0]["tasks"]
    assert [(t["kind"], t["due_on"]) for t in tasks] == [("session_overdue", "2026-04-05")]  # back at work
    assert {t["enrollment_id"] for t in tasks} == {enrollment_id}


async def test_a_reopened_enrolment_meets_the_time_rules_again_from_the_late_session(rehab: Rehab) -> None:
    c, enrollment_id = await dropped_out_on_april_1(rehab)
    await rehab.to(date(2026, 5, 4))
    before = await rehab.outbox()
    r = await rehab.session(c, enrollment_id, date(2026, 3, 25), kind="kelompok")
    assert r.status_code == 201, r.text
    new = (await rehab.outbox())[len(before) :]
    assert [(name, d.get("on")) for name, d in new] == [
        ("DropoutReversed", "2026-03-25"),
        ("SessionHeld", None),
        ("ClientDischarged", "2026-04-15"),  # three weeks after the late session, still unseen
    ]
    assert new[-1][1]["reason"] == "dropped_out"
    enrolment = await rehab.enrolment(enrollment_id)
    assert (enrolment["status"], enrolment["discharged_on"]) == ("discharged", "2026-04-15")
    assert enrolment["phases"][-1]["ended_on"] == "2026-04-15"
    assert await follow_ups_due(rehab, enrollment_id) == [date(2026, 7, 15), date(2026, 10, 15)]


async def test_a_late_session_that_does_not_disprove_the_dropout_is_refused(rehab: Rehab) -> None:
    c, enrollment_id = await dropped_out_on_april_1(rehab)
    before = await rehab.outbox()
    missed = await rehab.session(c, enrollment_id, date(2026, 3, 25), kind="kelompok", attended=False)
    after = await rehab.session(c, enrollment_id, date(2026, 4, 2), kind="kelompok")
    known = await rehab.session(c, enrollment_id, date(2026, 3, 10), kind="kelompok")  # before Mar 11
    for r in (missed, after, known):
        assert (r.status_code, r.json()["code"]) == (409, "enrolment_discharged"), r.text
    assert await rehab.outbox() == before
    assert (await rehab.enrolment(enrollment_id))["status"] == "discharged"

    again = await rehab.enrol(c, date(2026, 4, 6))  # back in the programme, in a new enrolment
    assert again.status_code == 201, again.text
    before = await rehab.outbox()
    r = await rehab.session(c, enrollment_id, date(2026, 3, 25), kind="kelompok")
    assert (r.status_code, r.json()["code"]) == (409, "enrolled_again")  # one enrolment at a time
    assert await rehab.outbox() == before


async def test_a_discharge_other_than_the_rules_dropout_is_never_reversed(rehab: Rehab) -> None:
    # completed: an aftercare-only enrolment whose client came every week of its four
    c = await rehab.screened_client(recommendation="referral")
    referral_id = await rehab.refer(c, date(2026, 2, 25))
    await rehab.close_referral(referral_id, MONDAY, "completed", back_referral=True)
    [listed] = (await rehab.http.get(f"/v1/enrolments?unit_id={c.unit_id}", headers=c.agent)).json()["items"]
    completed = listed["enrollment_id"]
    # dropped out and moved away, in an agent's own words
    by_agent = [(reason, await rehab.screened_client()) for reason in ("dropped_out", "moved")]
    enrolments = [await rehab.enrolled(other) for _, other in by_agent]
    for day in (date(2026, 3, 4), date(2026, 3, 11), date(2026, 3, 18), date(2026, 3, 25)):
        await rehab.to(day)
        assert (await rehab.session(c, completed, day, kind="pemantauan")).status_code == 201
        if day == date(2026, 3, 11):
            for (reason, other), enrollment_id in zip(by_agent, enrolments, strict=True):
                r = await rehab.http.post(
                    f"/v1/enrolments/{enrollment_id}/discharge",
                    headers=other.agent,
                    json={"on": "2026-03-11", "reason": reason},
                )
                assert r.status_code == 200, r.text
    await rehab.to(date(2026, 4, 6))
    assert (await rehab.enrolment(completed))["discharge_reason"] == "completed"

    before = await rehab.outbox()
    r = await rehab.session(c, completed, date(2026, 3, 27), kind="pemantauan")
    assert (r.status_code, r.json()["code"]) == (409, "enrolment_discharged")
    for (_, other), enrollment_id in zip(by_agent, enrolments, strict=True):
        r = await rehab.session(other, enrollment_id, date(2026, 3, 9), kind="kelompok")
        assert (r.status_code, r.json()["code"]) == (409, "enrolment_discharged")
    assert await rehab.outbox() == before


async def test_the_scheduler_catches_up_after_being_away_and_fires_each_change_once(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    await rehab.to(date(2026, 12, 1))  # nobody saw the client, and the service was off for months
    await rehab.to(date(2026, 12, 2))
    events = await rehab.outbox()
    assert phases_completed(events)[1:] == [("penerimaan_awal", "2026-03-08", "intervensi")]
    assert [d["on"] for name, d in events if name == "ClientDischarged"] == ["2026-03-23"]
    assert (await rehab.enrolment(enrollment_id))["status"] == "discharged"


async def test_a_referral_pauses_the_enrolment_and_a_back_referral_resumes_it_in_bina_lanjut(
    rehab: Rehab,
) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    await rehab.to(date(2026, 3, 18))
    await rehab.session(c, enrollment_id, date(2026, 3, 18), kind="kelompok")
    await rehab.to(date(2026, 3, 20))
    referral_id = await rehab.refer(c, date(2026, 3, 20))
    assert (await rehab.enrolment(enrollment_id))["status"] == "paused"
    before = await rehab.outbox()
    r = await rehab.session(c, enrollment_id, date(2026, 3, 20), kind="kelompok")
    assert (r.status_code, r.json()["code"]) == (409, "enrolment_paused")
    assert await rehab.outbox() == before

    await rehab.to(date(2026, 5, 1))  # weeks at the clinic: no dropout, no progression
    enrolment = await rehab.enrolment(enrollment_id)
    assert (enrolment["status"], enrolment["phase"]) == ("paused", "intervensi")

    await rehab.to(date(2026, 5, 4))
    closed = await rehab.close_referral(referral_id, date(2026, 5, 4), "completed", back_referral=True)
    enrolment = await rehab.enrolment(enrollment_id)
    assert (enrolment["status"], enrolment["phase"]) == ("active", "bina_lanjut")
    assert enrolment["phases"][-1] == {"phase": "bina_lanjut", "started_on": "2026-05-04", "ended_on": None}
    assert phases_completed(await rehab.outbox())[-1] == ("intervensi", "2026-05-04", "bina_lanjut")
    resumed = (await rehab.envelopes())[-1]  # caused by the referral's closing, in its chain
    assert (resumed["causationid"], resumed["correlationid"]) == (str(closed.id), str(closed.id))
    r = await rehab.session(c, enrollment_id, date(2026, 5, 4), kind="pemantauan")
    assert r.status_code == 201, r.text


async def test_a_declined_referral_resumes_the_same_stage(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    referral_id = await rehab.refer(c, date(2026, 3, 4))
    await rehab.to(date(2026, 3, 10))
    await rehab.close_referral(referral_id, date(2026, 3, 10), "declined", back_referral=False)
    enrolment = await rehab.enrolment(enrollment_id)
    assert (enrolment["status"], enrolment["phase"]) == ("active", "penerimaan_awal")
    await rehab.to(date(2026, 3, 15))  # intake had 5 of its 7 days left: it ends on Mar 14
    assert phases_completed(await rehab.outbox())[-1] == ("penerimaan_awal", "2026-03-14", "intervensi")


async def test_a_referral_completed_without_back_referral_discharges_as_referred_out(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    enrollment_id = await rehab.enrolled(c)
    referral_id = await rehab.refer(c, date(2026, 3, 4))
    await rehab.close_referral(referral_id, date(2026, 4, 20), "completed", back_referral=False)
    enrolment = await rehab.enrolment(enrollment_id)
    assert (enrolment["status"], enrolment["discharge_reason"]) == ("discharged", "referred_out")


async def test_a_back_referred_client_never_enrolled_gets_an_aftercare_only_enrolment(rehab: Rehab) -> None:
    c = await rehab.screened_client(recommendation="referral")
    referral_id = await rehab.refer(c, date(2026, 2, 25))
    await rehab.close_referral(referral_id, date(2026, 3, 2), "completed", back_referral=True)
    listed = await rehab.http.get(f"/v1/enrolments?unit_id={c.unit_id}", headers=c.agent)
    [enrolment] = listed.json()["items"]
    assert (enrolment["aftercare_only"], enrolment["phase"], enrolment["agent_id"]) == (
        True,
        "bina_lanjut",
        c.agent_id,
    )
    assert (enrolment["enrolled_on"], enrolment["planned_end_on"]) == ("2026-03-02", "2026-03-29")
    enrolled = [d for name, d in await rehab.outbox() if name == "ClientEnrolled"]
    assert len(enrolled) == 1 and enrolled[0]["planned_end_on"] == "2026-03-29"


async def test_the_worklist_shows_what_each_agent_must_do_that_day(rehab: Rehab) -> None:
    c = await rehab.screened_client()
    seen_weekly = await rehab.screened_client(unit_id=uuid.UUID(c.unit_id))
    first = await rehab.enrol(c)  # no baseline taken
    assert first.status_code == 201
    enrollment_id = first.json()["enrollment_id"]
    second = await rehab.enrolled(seen_weekly)
    for day in (date(2026, 3, 11), date(2026, 3, 18)):
        await rehab.to(day)
        await rehab.session(seen_weekly, second, day, kind="edukasi")
    worklist = await rehab.http.get(
        f"/v1/units/{c.unit_id}/worklist?date=2026-03-18", headers=rehab.facilitator
    )
    assert worklist.status_code == 200
    by_agent = {a["agent_id"]: a["tasks"] for a in worklist.json()["agents"]}
    tasks = {(t["kind"], t["due_on"]) for t in by_agent[c.agent_id]}
    assert tasks == {
        ("session_overdue", "2026-03-15"),  # nothing attended in week 3 of the programme
        ("assessment_due", "2026-03-18"),  # the baseline WHOQOL-BREF was never taken
        ("dropout_risk", "2026-03-23"),  # not seen since enrolment on Mar 2
    }
    assert all(t["enrollment_id"] == enrollment_id for t in by_agent[c.agent_id])
    assert seen_weekly.agent_id not in by_agent  # seen every week, baseline taken: nothing to do
    other = await rehab.http.get(f"/v1/units/{c.unit_id}/worklist", headers=seen_weekly.agent)
    assert other.status_code == 200 and other.json()["date"] == "2026-03-18"


async def test_a_regency_runs_its_own_programme_file(tmp_path: Path, database_url: str) -> None:
    """A shorter 12-week programme with a 2-week dropout rule: no week is hard-coded."""
    default = (files("pulih.kit") / "programmes" / "ibm-16w-2021.toml").read_text()
    own = (
        default.replace('programme = "ibm-16w-2021"', 'programme = "ibm-12w-cilacap"')
        .replace("dropout_after_weeks = 3", "dropout_after_weeks = 2")
        .replace("weeks = [3, 12]", "weeks = [3, 8]")
        .replace("weeks = [13, 16]", "weeks = [9, 12]")
        .replace("exit_assessment_week = 16", "exit_assessment_week = 12")
    )
    (tmp_path / "cilacap.toml").write_text(own)
    async with service_app(
        build,
        tmp_path,
        database_url,
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START="2026-03-02",
        PULIH_PROGRAMME_FILE=tmp_path / "cilacap.toml",
    ) as (http, app):
        rehab = Rehab(http, app)
        c = await rehab.screened_client()
        r = await rehab.enrol(c)
        assert (r.json()["programme"], r.json()["planned_end_on"]) == ("ibm-12w-cilacap", "2026-05-17")
        enrollment_id = r.json()["enrollment_id"]
        await rehab.to(date(2026, 3, 17))  # two weeks unseen: out under this regency's rule
        enrolment = await rehab.enrolment(enrollment_id)
        assert (enrolment["status"], enrolment["discharged_on"]) == ("discharged", "2026-03-16")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('programme = "ibm-broken"\nversion = 1\n[rehab\n', "Expected ']'"),
        ('programme = "ibm-broken"\nversion = 1\n[rehab]\nenrol_after = ["ibm_programme"]\n', "stages"),
    ],
    ids=["not_toml", "no_stages"],
)
async def test_a_bad_programme_file_stops_rehab_at_start_naming_the_file(
    tmp_path: Path, text: str, says: str
) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text(text)
    store = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(StartupError, match=f"rehab cannot start: programme file {bad}") as failed:
        async with service_app(build, tmp_path, store, PULIH_PROGRAMME_FILE=bad):
            pass
    assert says in str(failed.value)
    assert not (tmp_path / "store.db").exists()  # it stopped before touching the store
    with pytest.raises(StartupError, match=str(tmp_path / "missing.toml")):
        async with service_app(build, tmp_path, store, PULIH_PROGRAMME_FILE=tmp_path / "missing.toml"):
            pass
