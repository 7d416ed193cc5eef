"""Clinics' answers, over HTTP and as the clinic-answers consumer applies them from NATS, against
a real store (SQLite and PostgreSQL): every test checks the answer, the stored referral and what
reached the outbox, with its correlation and causation."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from referral_factories import CLINIC, OTHER_CLINIC, Referrals
from sqlalchemy import select

from pulih.contracts import CloudEvent, new_event, parse_event, subject_for
from pulih.contracts.codes import DeclineReason, TreatmentOutcome
from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.contracts.events.referral import AnswerRejected
from pulih.kit import inbox
from pulih.kit.auth import Role
from pulih.kit.batch_handlers import refusal
from pulih.kit.consumers import Delivery, NotReadyYet
from pulih.kit.errors import PulihError
from pulih.kit.outbox import outbox_table
from pulih.kit.testing import REGENCY, auth
from pulih.referral.consumers import clinic_answers_consumer, from_clinics
from pulih.referral.handlers import tell_clinic_of_refusal


async def test_a_clinic_answers_over_http_through_to_completion_with_back_referral(
    referrals: Referrals,
) -> None:
    await referrals.add_clinic()
    referral_id = await referrals.referral(await referrals.client())
    steps = [
        {"answer": "accepted", "on": "2026-03-02", "appointment_on": "2026-03-05"},
        {"today": "2026-05-01"},  # the clinic answers as things happen
        {"answer": "attended", "on": "2026-03-05"},
        {"answer": "completed", "on": "2026-04-30", "outcome": "completed", "back_referral": True},
    ]
    for step in steps:
        if "today" in step:
            referrals.today_is(date.fromisoformat(step["today"]))
            continue
        r = await referrals.answer(referral_id, **step)
        assert r.status_code == 200, r.text
    referral = await referrals.get(referral_id)
    assert referral["status"] == "completed" and referral["outcome"] == "completed"
    assert referral["back_referral"] is True and referral["closed_on"] == "2026-04-30"
    assert referral["appointment_on"] == "2026-03-05" and referral["attended_on"] == "2026-03-05"
    outbox = await referrals.outbox()
    assert [(s.split(".")[2:], type(e).__name__) for s, e in outbox[1:]] == [
        (["clinic", CLINIC, "referral_accepted"], "ReferralAccepted"),
        (["clinic", CLINIC, "client_attended"], "ClientAttended"),
        (["clinic", CLINIC, "treatment_completed"], "TreatmentCompleted"),
        (["referral", "referral_closed", CLINIC], "ReferralClosed"),
    ]
    closed = outbox[-1][1]
    assert closed.outcome == "completed" and closed.back_referral is True
    # the answers come back over NATS to referral's own clinic consumer: already applied
    async with referrals.runtime.database.sessions() as s:
        ids = (
            await s.scalars(select(outbox_table.c.event_id).where(outbox_table.c.subject.like("%.clinic.%")))
        ).all()
        for event_id in ids:
            assert await inbox.already_applied(s, clinic_answers_consumer(referrals.runtime), event_id)


async def test_illegal_answers_over_http_change_nothing(referrals: Referrals) -> None:
    await referrals.add_clinic()
    await referrals.add_clinic(OTHER_CLINIC)
    referral_id = await referrals.referral(await referrals.client())
    before = await referrals.get(referral_id)

    early = await referrals.answer(
        referral_id, answer="completed", on="2026-03-02", outcome="completed", back_referral=True
    )
    assert early.status_code == 409 and early.json()["code"] == "illegal_transition"
    other = await referrals.answer(referral_id, clinic_id=OTHER_CLINIC, answer="accepted", on="2026-03-02")
    assert other.status_code == 403 and other.json()["code"] == "other_clinic"
    unknown = await referrals.answer(str(uuid.uuid4()), answer="accepted", on="2026-03-02")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_referral"
    before_referral = await referrals.answer(referral_id, answer="accepted", on="2026-02-28")
    assert before_referral.status_code == 422 and before_referral.json()["code"] == "answer_before_referral"
    by_agent = await referrals.http.post(
        f"/v1/referrals/{referral_id}/answers",
        headers=auth(Role.FACILITATOR),
        json={"answer": "accepted", "on": "2026-03-02"},
    )
    assert by_agent.status_code == 403 and by_agent.json()["code"] == "forbidden_role"

    assert await referrals.get(referral_id) == before
    assert await referrals.outbox_names() == ["ReferredToClinic"]

    assert (await referrals.answer(referral_id, answer="accepted", on="2026-03-02")).status_code == 200
    twice = await referrals.answer(referral_id, answer="accepted", on="2026-03-02")
    assert twice.status_code == 409 and twice.json()["code"] == "illegal_transition"
    assert await referrals.outbox_names() == ["ReferredToClinic", "ReferralAccepted"]


async def test_a_decline_escalates_closes_and_shows_in_the_facilitators_list(referrals: Referrals) -> None:
    await referrals.add_clinic()
    referral_id = await referrals.referral(await referrals.client())
    r = await referrals.answer(referral_id, answer="declined", on="2026-03-02", reason="no_capacity")
    assert r.status_code == 200, r.text
    assert await referrals.outbox_names() == [
        "ReferredToClinic",
        "ReferralDeclined",
        "ReferralEscalated",
        "ReferralClosed",
    ]
    _, escalated = (await referrals.outbox())[2]
    _, closed = (await referrals.outbox())[3]
    assert escalated.reason == "declined" and escalated.on == date(2026, 3, 2)
    assert closed.outcome == "declined" and closed.back_referral is False
    listed = await referrals.http.get("/v1/referrals?escalated=true", headers=referrals.facilitator)
    assert [(x["referral_id"], x["escalation_reason"]) for x in listed.json()["items"]] == [
        (referral_id, "declined")
    ]
    late = await referrals.answer(referral_id, answer="accepted", on="2026-03-02")
    assert late.status_code == 409 and late.json()["code"] == "illegal_transition"
    assert len(await referrals.outbox()) == 4, "a refused answer publishes nothing"


async def answer_from_nats(
    referrals: Referrals,
    clinic_id: str,
    data: Any,
    correlationid: str = "clinic-chain",
    *,
    attempt: int = 1,
    stream_seq: int = 7,
    envelope: CloudEvent[Any] | None = None,
) -> CloudEvent[Any]:
    """Deliver a clinic's answer as the clinic-answers consumer does (one unit of work caused by
    it, the clinic read from the subject; ``attempt`` of the delivery, its ``stream_seq``);
    returns the answer's envelope. ``envelope`` delivers an earlier one again. Where the consumer
    gives the answer up (refused, or still early on its last attempt), its ``on_dead_letter``
    hook runs, after the rolled-back unit of work, with the kit's refusal; the error is raised."""
    runtime = referrals.runtime
    envelope = envelope or new_event(data, regency=REGENCY, correlationid=correlationid)
    delivery = Delivery(subject_for(envelope, REGENCY, clinic_id=clinic_id), stream_seq, attempt)
    try:
        async with runtime.unit_of_work(caused_by=envelope) as uow:
            await from_clinics(runtime)[type(envelope.data)](uow, envelope, delivery)
    except (PulihError, NotReadyYet) as exc:
        if not isinstance(exc, NotReadyYet) or attempt >= runtime.settings.max_deliver:
            await tell_clinic_of_refusal(runtime, envelope, delivery, refusal(exc, delivery.subject, attempt))
        raise
    return envelope


async def rejections(referrals: Referrals) -> list[tuple[str, CloudEvent[Any]]]:
    """(subject, envelope) of every ``AnswerRejected`` in the outbox, in order."""
    async with referrals.runtime.database.sessions() as s:
        rows = (
            await s.execute(
                select(outbox_table.c.subject, outbox_table.c.payload).order_by(outbox_table.c.seq)
            )
        ).all()
    events = [(row.subject, parse_event(row.payload)) for row in rows]
    return [(subject, e) for subject, e in events if isinstance(e.data, AnswerRejected)]


async def test_what_an_answer_from_nats_causes_carries_its_correlation_and_names_it_as_cause(
    referrals: Referrals,
) -> None:
    await referrals.add_clinic()
    referral_id = uuid.UUID(await referrals.referral(await referrals.client()))
    answer = await answer_from_nats(
        referrals,
        CLINIC,
        ReferralDeclined(referral_id=referral_id, on=date(2026, 3, 2), reason=DeclineReason.NO_CAPACITY),
        correlationid="clinic-chain-1",
    )
    _, escalated, closed = await referrals.outbox_envelopes()
    assert (type(escalated.data).__name__, type(closed.data).__name__) == (
        "ReferralEscalated",
        "ReferralClosed",
    )
    for event in (escalated, closed):
        assert (event.correlationid, event.causationid) == ("clinic-chain-1", str(answer.id))


async def test_answers_from_nats_refused_or_early_change_nothing_and_the_clinic_is_told(
    referrals: Referrals,
) -> None:
    await referrals.add_clinic()
    await referrals.add_clinic(OTHER_CLINIC)
    referral_id = uuid.UUID(await referrals.referral(await referrals.client()))
    before = await referrals.get(str(referral_id))
    day = date(2026, 3, 2)
    with pytest.raises(PulihError) as other:  # the kit dead-letters it with its code
        await answer_from_nats(
            referrals, OTHER_CLINIC, ReferralAccepted(referral_id=referral_id, accepted_on=day)
        )
    assert other.value.code == "other_clinic"
    unknown_id = uuid.uuid4()
    with pytest.raises(PulihError) as unknown:
        await answer_from_nats(referrals, CLINIC, ReferralAccepted(referral_id=unknown_id, accepted_on=day))
    assert unknown.value.code == "unknown_referral"
    with pytest.raises(NotReadyYet, match="referred cannot be attended"):  # retried: maybe only early
        await answer_from_nats(referrals, CLINIC, ClientAttended(referral_id=referral_id, on=day))
    assert await referrals.get(str(referral_id)) == before
    assert await referrals.outbox_names() == ["ReferredToClinic", "AnswerRejected", "AnswerRejected"]
    told = [(s, e.data.error, e.data.referral_id) for s, e in await rejections(referrals)]
    assert told == [
        (f"ibm.{REGENCY}.referral.answer_rejected.{OTHER_CLINIC}", "other_clinic", referral_id),
        (f"ibm.{REGENCY}.referral.answer_rejected.{CLINIC}", "unknown_referral", unknown_id),
    ]


async def test_a_refused_answer_is_told_to_its_clinic_once_however_often_it_is_redelivered(
    referrals: Referrals,
) -> None:
    await referrals.add_clinic()
    referral_id = uuid.UUID(await referrals.referral(await referrals.client()))
    attended = ClientAttended(referral_id=referral_id, on=date(2999, 1, 1))
    answer = new_event(attended, regency=REGENCY, correlationid="clinic-chain-9")
    for _ in range(3):  # the same stored message, delivered three times
        with pytest.raises(PulihError) as refused:
            await answer_from_nats(referrals, CLINIC, attended, envelope=answer)
        assert (refused.value.code, refused.value.field) == ("date_in_future", "on")
    [(subject, told)] = await rejections(referrals)
    assert subject == f"ibm.{REGENCY}.referral.answer_rejected.{CLINIC}"
    assert told.data.model_dump() == {
        "referral_id": referral_id,
        "clinic_id": CLINIC,
        "answer_id": answer.id,
        "answer_type": "pulih.clinic.ClientAttended.v1",
        "error": "date_in_future",
        "reason": "on 2999-01-01 is after today (2026-03-01) in the regency",
    }
    assert (told.correlationid, told.causationid) == ("clinic-chain-9", str(answer.id))
    assert (await referrals.get(str(referral_id)))["status"] == "referred"

    # the clinic publishes the same answer again later: a new message, refused and told again
    with pytest.raises(PulihError):
        await answer_from_nats(referrals, CLINIC, attended, envelope=answer, stream_seq=8)
    assert len(await rejections(referrals)) == 2


async def test_an_early_answer_is_rejected_only_when_the_consumer_gives_up_on_it(
    referrals: Referrals,
) -> None:
    """An answer that might only be early (attended before the acceptance arrived) is retried;
    on the consumer's last attempt the kit dead-letters it as ``not_ready``, and the clinic is
    told with that code, once: its answer will never be applied."""
    await referrals.add_clinic()
    referral_id = uuid.UUID(await referrals.referral(await referrals.client()))
    last = referrals.runtime.settings.max_deliver
    attended = ClientAttended(referral_id=referral_id, on=date(2026, 3, 2))
    answer = new_event(attended, regency=REGENCY)
    for attempt in range(1, last):
        with pytest.raises(NotReadyYet):
            answer = await answer_from_nats(referrals, CLINIC, attended, envelope=answer, attempt=attempt)
        assert await rejections(referrals) == []
    for _ in range(2):  # the last attempt, and that delivery again (a crash before the dead letter)
        with pytest.raises(NotReadyYet):
            await answer_from_nats(referrals, CLINIC, attended, envelope=answer, attempt=last)
    [(_, told)] = await rejections(referrals)
    assert (told.data.error, told.data.answer_type) == ("not_ready", "pulih.clinic.ClientAttended.v1")
    assert told.data.reason.startswith("a referral that is referred cannot be attended")
    assert f"did not arrive in {last} attempts" in told.data.reason
    assert (await referrals.get(str(referral_id)))["status"] == "referred"


async def test_another_clinic_is_told_only_that_the_referral_is_not_its_own(referrals: Referrals) -> None:
    await referrals.add_clinic()
    await referrals.add_clinic(OTHER_CLINIC)
    referral_id = uuid.UUID(await referrals.referral(await referrals.client()))
    assert (await referrals.answer(str(referral_id), answer="accepted", on="2026-03-01")).status_code == 200
    with pytest.raises(PulihError):  # dated before the referral, out of order: none of it is said
        await answer_from_nats(
            referrals, OTHER_CLINIC, ClientAttended(referral_id=referral_id, on=date(2026, 1, 1))
        )
    [(subject, told)] = await rejections(referrals)
    assert subject == f"ibm.{REGENCY}.referral.answer_rejected.{OTHER_CLINIC}"
    assert (told.data.clinic_id, told.data.error, told.data.reason) == (
        OTHER_CLINIC,
        "other_clinic",
        "this referral is not addressed to you",
    )
    assert [s for s, _ in await referrals.outbox() if s.endswith(OTHER_CLINIC)] == [subject]


async def test_answers_dated_after_today_or_before_what_they_follow_are_refused_over_http(
    referrals: Referrals,
) -> None:
    await referrals.add_clinic()
    referral_id = await referrals.referral(await referrals.client())  # 2026-03-01, respond by 03-04
    referrals.today_is(date(2026, 3, 4))  # answers up to 03-05: a day of slack

    async def refused(cases: list[tuple[dict[str, Any], str, str]]) -> None:
        before, outbox = await referrals.get(referral_id), await referrals.outbox_size()
        for body, code, field in cases:
            r = await referrals.answer(referral_id, **body)
            assert (r.status_code, r.json()["code"], r.json()["field"]) == (422, code, field), body
        assert await referrals.get(referral_id) == before
        assert await referrals.outbox_size() == outbox

    await refused(
        [
            ({"answer": "accepted", "on": "2999-01-01"}, "date_in_future", "on"),
            ({"answer": "accepted", "on": "2026-03-06"}, "date_in_future", "on"),
            ({"answer": "declined", "on": "2999-01-01", "reason": "no_capacity"}, "date_in_future", "on"),
            (
                {"answer": "accepted", "on": "2026-03-02", "appointment_on": "2026-03-01"},
                "date_before_acceptance",
                "appointment_on",
            ),
            ({"answer": "accepted", "on": "2026-02-28"}, "answer_before_referral", "on"),
        ]
    )
    ok = await referrals.answer(referral_id, answer="accepted", on="2026-03-02", appointment_on="2026-04-01")
    assert ok.status_code == 200, ok.text
    await refused(
        [
            ({"answer": "attended", "on": "2999-01-01"}, "date_in_future", "on"),
            ({"answer": "attended", "on": "2026-03-01"}, "date_before_acceptance", "on"),
            (
                {"answer": "completed", "on": "2026-03-01", "outcome": "dropped_out", "back_referral": False},
                "date_before_acceptance",
                "on",
            ),
        ]
    )
    assert (await referrals.answer(referral_id, answer="attended", on="2026-03-04")).status_code == 200
    # closed before the client attended, or on a day yet to come: never
    await refused(
        [
            (
                {"answer": "completed", "on": "2026-03-03", "outcome": "completed", "back_referral": True},
                "date_before_attendance",
                "on",
            ),
            (
                {"answer": "completed", "on": "2999-01-01", "outcome": "completed", "back_referral": True},
                "date_in_future",
                "on",
            ),
        ]
    )
    assert await referrals.outbox_names() == ["ReferredToClinic", "ReferralAccepted", "ClientAttended"]


async def test_answers_dated_after_today_or_before_what_they_follow_are_refused_over_nats(
    referrals: Referrals,
) -> None:
    await referrals.add_clinic()
    rid = uuid.UUID(await referrals.referral(await referrals.client()))  # 2026-03-01, respond by 03-04
    referrals.today_is(date(2026, 3, 4))

    async def refused(answers: list[tuple[Any, str, str]]) -> None:
        before, told = await referrals.get(str(rid)), len(await rejections(referrals))
        for data, code, field in answers:
            with pytest.raises(PulihError) as caught:
                await answer_from_nats(referrals, CLINIC, data)
            assert (caught.value.code, caught.value.field) == (code, field), data
        assert await referrals.get(str(rid)) == before
        assert [e.data.error for _, e in await rejections(referrals)][told:] == [c for _, c, _ in answers]

    await refused(
        [
            (
                ReferralAccepted(referral_id=rid, accepted_on=date(2999, 1, 1)),
                "date_in_future",
                "accepted_on",
            ),
            (
                ReferralAccepted(
                    referral_id=rid, accepted_on=date(2026, 3, 2), appointment_on=date(2026, 3, 1)
                ),
                "date_before_acceptance",
                "appointment_on",
            ),
            (
                ReferralAccepted(referral_id=rid, accepted_on=date(2026, 2, 1)),
                "answer_before_referral",
                "accepted_on",
            ),
        ]
    )
    await answer_from_nats(referrals, CLINIC, ReferralAccepted(referral_id=rid, accepted_on=date(2026, 3, 2)))
    await refused(
        [
            (ClientAttended(referral_id=rid, on=date(2999, 1, 1)), "date_in_future", "on"),
            (ClientAttended(referral_id=rid, on=date(2026, 3, 1)), "date_before_acceptance", "on"),
        ]
    )
    await answer_from_nats(referrals, CLINIC, ClientAttended(referral_id=rid, on=date(2026, 3, 4)))
    completed_early = TreatmentCompleted(
        referral_id=rid, on=date(2026, 3, 3), outcome=TreatmentOutcome.COMPLETED, back_referral=True
    )
    await refused([(completed_early, "date_before_attendance", "on")])
    assert (await referrals.get(str(rid)))["status"] == "attended"
