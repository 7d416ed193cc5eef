"""Referral's use cases: load, let the domain decide, store and emit, in one unit of work.

The same functions serve an HTTP command (given its :class:`~pulih.kit.commands.CommandTx`), a
consumed event (given the consumer's unit of work) and the escalation job (a unit of work per
referral). Everything they emit goes through ``uow.emit``, which stamps correlation and causation.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import date
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from pulih.contracts import CloudEvent
from pulih.contracts.codes import CancelReason, ConsentScope, EscalationReason, ReferralOutcome
from pulih.contracts.events.clinic import ClientAttended, ReferralAccepted, ReferralDeclined
from pulih.contracts.events.outreach import ConsentWithdrawn
from pulih.contracts.events.referral import (
    AnswerRejected,
    ReferralCancelled,
    ReferralClosed,
    ReferralEscalated,
    ReferredToClinic,
)
from pulih.kit import inbox
from pulih.kit.audit import audit
from pulih.kit.auth import Principal, Role
from pulih.kit.batch_handlers import Refusal
from pulih.kit.consumers import Delivery, NotReadyYet, Rejected
from pulih.kit.errors import Conflict, Forbidden, Gone, Invalid, NotFound, PulihError, Unavailable
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.service_tokens import IDENTITY_SCOPE, service_bearer
from pulih.kit.unit_of_work import UnitOfWork
from pulih.referral import store
from pulih.referral.bodies import ReferClient, RegisterClinic
from pulih.referral.deps import Outreach
from pulih.referral.domain import answers, hand_over, lifecycle, referring
from pulih.referral.domain.answers import ClinicAnswer
from pulih.referral.domain.lifecycle import IllegalTransition, ReferralStatus
from pulih.referral.domain.response_times import ResponseTimes
from pulih.referral.store import OUTREACH, Clinic, IdentityHandOver, KnownClient, Referral

security_log = logging.getLogger("pulih.referral.security")

SERVICE_NAME = "referral"
"""Who referral is when it asks outreach for an identity (the ``sub`` of its service token)."""


# The clinic directory


async def register_clinic(uow: UnitOfWork, body: RegisterClinic) -> Clinic:
    """Add a clinic to the directory; its id is the slug in its subjects (409 if taken)."""
    if await uow.session.get(Clinic, body.clinic_id) is not None:
        raise Conflict("clinic_exists", f"clinic {body.clinic_id} is already in the directory", "clinic_id")
    clinic = Clinic(
        clinic_id=body.clinic_id,
        name=body.name,
        kind=body.kind.value,
        services=sorted({s.value for s in body.services}),
        regencies=sorted(set(body.regencies)),
    )
    uow.session.add(clinic)
    return clinic


# Referring and cancelling


async def refer_client(
    uow: UnitOfWork,
    body: ReferClient,
    *,
    by: Principal,
    today: date,
    regency: str,
    response_times: ResponseTimes,
) -> Referral:
    """Refer a screened, consenting client to a clinic that offers the service; the clinic hears
    of it on its own subject (``ReferredToClinic``)."""
    s = uow.session
    client = referring.client_to_refer(
        await s.get(KnownClient, body.client_id), body.client_id, by.may_see_unit
    )
    # dated only once the caller may see the client: the checks read its registration
    referred_on = referring.referral_day(body.referred_on, today, client.registered_on)
    clinic = referring.clinic_to_refer_to(
        await s.get(Clinic, body.clinic_id), body.clinic_id, regency, body.service
    )
    screening = await OUTREACH.latest_screening(s, client.client_id, on_or_before=referred_on)
    later = None if screening else await OUTREACH.latest_screening(s, client.client_id)
    referring.screened_before(screening, referred_on, later)
    consent = referring.consent_to_refer(await OUTREACH.consents_of(s, client.client_id), referred_on)
    referring.none_open(await store.open_referral_to(s, client.client_id, clinic.clinic_id))
    referral_id = body.referral_id or uuid.uuid4()
    referring.new_referral_id(referral_id, taken=await s.get(Referral, referral_id) is not None)
    referral = Referral(
        referral_id=referral_id,
        client_id=client.client_id,
        unit_id=client.unit_id,
        clinic_id=clinic.clinic_id,
        service=body.service.value,
        reason=body.reason.value,
        urgency=body.urgency.value,
        referred_on=referred_on,
        respond_by=response_times.respond_by(referred_on, body.urgency),
        consent_id=consent.consent_id,
        referred_by=by.sub,
        status=ReferralStatus.REFERRED.value,
        escalated=False,
    )
    s.add(referral)
    await uow.emit(
        ReferredToClinic(
            referral_id=referral_id,
            client_id=client.client_id,
            unit_id=client.unit_id,
            clinic_id=clinic.clinic_id,
            service=body.service,
            reason=body.reason,
            urgency=body.urgency,
            referred_on=referred_on,
            respond_by=referral.respond_by,
            consent_id=consent.consent_id,
        )
    )
    return referral


async def _close_as_cancelled(uow: UnitOfWork, referral: Referral, on: date, reason: CancelReason) -> None:
    """The one cancel path (the unit's, and a withdrawn consent's): the referral closes as
    ``cancelled``, so rehab resumes the client's enrolment where it paused."""
    step = lifecycle.cancel(referral.state)
    referral.status = step.status.value
    referral.cancel_reason = reason.value
    referral.closed_on = on
    referral.outcome = ReferralOutcome.CANCELLED.value
    referral.back_referral = False
    await uow.emit(
        ReferralCancelled(
            referral_id=referral.referral_id, clinic_id=referral.clinic_id, on=on, reason=reason
        )
    )
    await uow.emit(
        ReferralClosed(
            referral_id=referral.referral_id,
            clinic_id=referral.clinic_id,
            on=on,
            outcome=ReferralOutcome.CANCELLED,
            back_referral=False,
        )
    )


async def cancel_referral(
    uow: UnitOfWork,
    referral_id: UUID,
    reason: CancelReason,
    on: date | None,
    *,
    by: Principal,
    today: date,
) -> Referral:
    """The unit cancels a referral the clinic has not finished with (409 once it has), on ``on``
    (default: the regency's today), a day between the clinic's last answer and today."""
    referral = await uow.session.get(Referral, referral_id)
    if referral is None:
        raise NotFound("referral_not_found", f"no referral {referral_id}", "referral_id")
    if not by.may_see_unit(referral.unit_id):
        raise Forbidden("other_unit", "agents cancel their own unit's referrals only")
    day = lifecycle.cancellation_day(on or today, referral.referred_on, today, _last_answer_on(referral))
    await _close_as_cancelled(uow, referral, day, reason)
    await uow.session.flush()
    return referral


async def cancel_when_referral_consent_withdrawn(
    uow: UnitOfWork, event: CloudEvent[ConsentWithdrawn], _: Delivery
) -> None:
    """Once the read model recorded a withdrawn consent: a client with no ``referral`` consent
    left has their open referrals cancelled (``consent_withdrawn``), and their clinics told so."""
    data = event.data
    if await OUTREACH.consent_for(uow.session, data.client_id, ConsentScope.REFERRAL, data.on) is not None:
        return
    for referral in await store.open_referrals_of(uow.session, data.client_id):
        on = lifecycle.cancelled_on_withdrawal(data.on, referral.referred_on, _last_answer_on(referral))
        await _close_as_cancelled(uow, referral, on, CancelReason.CONSENT_WITHDRAWN)


def _last_answer_on(referral: Referral) -> date | None:
    """The day of the clinic's last answer that left the referral open (attended, accepted)."""
    return referral.attended_on or referral.accepted_on


def visible_referral(referral: Referral | None, referral_id: UUID, principal: Principal) -> Referral:
    """The referral, for its unit, staff, or the clinic it is addressed to (404, 403 otherwise)."""
    if referral is None:
        raise NotFound("referral_not_found", f"no referral {referral_id}", "referral_id")
    if principal.role is Role.CLINIC:
        mine = principal.clinic_id == referral.clinic_id
    else:
        mine = principal.may_see_unit(referral.unit_id)
    if not mine:
        raise Forbidden("other_referral", "this referral is not yours to see")
    return referral


# Clinics' answers: the one path for NATS and HTTP


def _log_refusal(clinic_id: str, answer: ClinicAnswer, refusal: str) -> None:
    # a security event: ids and codes only, never an identity
    security_log.warning(
        "refused clinic answer",
        extra={
            "clinic_id": clinic_id,
            "referral_id": str(answer.referral_id),
            "answer": type(answer).__name__,
            "refusal": refusal,
        },
    )


async def apply_answer(uow: UnitOfWork, clinic_id: str, answer: ClinicAnswer, *, today: date) -> Referral:
    """Apply ``answer`` from ``clinic_id`` on the regency's ``today``, emitting what follows:
    ``ReferralEscalated`` on a decline, and ``ReferralClosed`` whenever the referral ends (rehab
    resumes, continues or discharges the client on it). A refused answer is logged as a security
    event (unless it is only premature) and raised as the domain error, before anything is
    written: it changes nothing."""
    referral = await uow.session.get(Referral, answer.referral_id)
    try:
        step = answers.step_for(referral, answer.referral_id, clinic_id, answer, today)
    except IllegalTransition as exc:
        if not exc.premature:
            _log_refusal(clinic_id, answer, exc.code)
        raise
    except PulihError as exc:
        _log_refusal(clinic_id, answer, exc.code)
        raise
    assert referral is not None  # step_for refuses an unknown referral
    on = answers.answered_on(answer)
    referral.status = step.status.value
    if isinstance(answer, ReferralAccepted):
        referral.accepted_on = answer.accepted_on
        referral.appointment_on = answer.appointment_on
    elif isinstance(answer, ReferralDeclined):
        referral.decline_reason = answer.reason.value
    elif isinstance(answer, ClientAttended):
        referral.attended_on = answer.on
    if step.escalates is not None:
        referral.escalated = True
        referral.escalated_on = on
        referral.escalation_reason = step.escalates.value
        await uow.emit(
            ReferralEscalated(
                referral_id=referral.referral_id, clinic_id=clinic_id, on=on, reason=step.escalates
            )
        )
    if step.closes_with is not None:
        referral.closed_on = on
        referral.outcome = step.closes_with.value
        referral.back_referral = step.back_referral
        await uow.emit(
            ReferralClosed(
                referral_id=referral.referral_id,
                clinic_id=clinic_id,
                on=on,
                outcome=step.closes_with,
                back_referral=step.back_referral,
            )
        )
    await uow.session.flush()
    return referral


async def answer_over_http(
    uow: UnitOfWork, clinic_id: str, answer: ClinicAnswer, *, answers_inbox: str, today: date
) -> Referral:
    """A clinic without NATS answers over HTTP: its answer is published on its own clinic
    subject as if it had, recorded as applied in the inbox ``answers_inbox`` of our own
    clinic-answers consumer (it comes back over NATS), and applied on the same path. A refused
    answer is the HTTP error the clinic gets; nothing is published."""
    published = await uow.emit(answer, clinic_id=clinic_id)
    await inbox.record_applied(uow.session, answers_inbox, published.id)
    return await apply_answer(uow, clinic_id, answer, today=today)


def clinic_of(subject: str) -> str:
    """The answering clinic, from ``ibm.<regency>.clinic.<clinic_id>.<event_name>``."""
    parts = subject.split(".")
    if len(parts) != 5 or parts[0] != "ibm" or parts[2] != "clinic":
        raise Rejected("unexpected_subject", f"{subject} is not a clinic's answer subject")
    return parts[3]


ANSWER_REJECTIONS = "answer-rejections"
"""The inbox name under which referral records each delivery of a refused answer it told the
clinic about (one ``AnswerRejected`` per stored answer, however often it is redelivered)."""


def rejection_key(answer_id: UUID, stream_seq: int) -> UUID:
    """The inbox key of one stored answer's rejection: its id and its place in the stream. A
    redelivery has both, so the clinic is told once; the same answer published again later is
    a new message, and is told again if refused again."""
    return uuid.uuid5(answer_id, f"stream-seq:{stream_seq}")


async def tell_clinic_of_refusal(
    runtime: ServiceRuntime,
    event: CloudEvent[ClinicAnswer],
    delivery: Delivery,
    refusal: Refusal,
) -> None:
    """Before the kit dead-letters a clinic's answer, tell the clinic, which cannot read the dead
    letters: ``AnswerRejected`` on its own subject (``ibm.<r>.referral.answer_rejected.<clinic_id>``)
    with the refusal's code, once per stored answer, caused by it.

    A refused answer (a domain error) is told with its message; an early one the consumer gave
    up on (``not_ready``) with what it waited for. A failure of referral's own
    (``handler_failed``) is not the clinic's to hear of: the answer is replayed after the fix.
    The kit calls this after the consumer's transaction (whose refused answer changed nothing),
    so it commits in a transaction of its own.
    """
    try:
        clinic_id = clinic_of(delivery.subject)
    except Rejected:
        return  # no clinic's subject: nobody to tell
    cause = refusal.cause
    if isinstance(cause, PulihError):
        reason = cause.message
    elif isinstance(cause, NotReadyYet):
        reason = (
            f"{cause}, and the answer it follows did not arrive in {delivery.attempt} attempts: "
            "publish that one, then this one again"
        )
    else:
        return
    name = f"{runtime.name}.{ANSWER_REJECTIONS}"
    key = rejection_key(event.id, delivery.stream_seq)
    async with runtime.database.transaction() as session:
        if await inbox.already_applied(session, name, key):
            return
        await UnitOfWork.caused_by(session, runtime.emitter, event).emit(
            AnswerRejected(
                referral_id=event.data.referral_id,
                clinic_id=clinic_id,
                answer_id=event.id,
                answer_type=event.type,
                error=refusal.error,
                reason=reason[:500],
            )
        )
        await inbox.record_applied(session, name, key, delivery.stream_seq)


async def tell_clinic_of_invalid_answer(
    runtime: ServiceRuntime, payload: bytes, delivery: Delivery, reason: str
) -> None:
    """A message on a clinic's answer subject that is no valid event (an unknown field holding a
    NIK, a wrong code, a bad date) is dead-lettered by the kit before any handler runs; the
    clinic is told too (``AnswerRejected``, error ``invalid_event``), once per stored message,
    as far as the message names its own id, type and referral. One that names none of them
    cannot be answered and is only dead-lettered."""
    try:
        clinic_id = clinic_of(delivery.subject)
        message = json.loads(payload)
        answer_id = UUID(str(message["id"]))
        referral_id = UUID(str(message["data"]["referral_id"]))
        answer_type = str(message["type"])
        rejected = AnswerRejected(
            referral_id=referral_id,
            clinic_id=clinic_id,
            answer_id=answer_id,
            answer_type=answer_type,
            error="invalid_event",
            reason=reason[:500],
        )
    except (Rejected, ValueError, KeyError, TypeError, ValidationError):
        return
    name = f"{runtime.name}.{ANSWER_REJECTIONS}"
    key = rejection_key(answer_id, delivery.stream_seq)
    chain = message.get("correlationid") if isinstance(message.get("correlationid"), str) else None
    async with runtime.database.transaction() as session:
        if await inbox.already_applied(session, name, key):
            return
        uow = UnitOfWork(
            session, runtime.emitter, correlationid=chain or str(answer_id), causationid=str(answer_id)
        )
        await uow.emit(rejected)
        await inbox.record_applied(session, name, key, delivery.stream_seq)


async def on_clinic_answer(
    runtime: ServiceRuntime, uow: UnitOfWork, event: CloudEvent[ClinicAnswer], delivery: Delivery
) -> None:
    """A clinic's answer from NATS (the clinic is read from the subject, which its credentials
    restrict), on the regency's today.

    A refused answer raises its domain error: the kit dead-letters it with its code, and the
    clinic is told (:func:`tell_clinic_of_refusal`). An answer that is only early raises
    :class:`NotReadyYet` and is retried, since an earlier one may still be on its way; once the
    consumer gives up on it, it is dead-lettered as ``not_ready`` and the clinic told so too.
    """
    clinic_id = clinic_of(delivery.subject)
    try:
        await apply_answer(uow, clinic_id, event.data, today=runtime.clock.today())
    except IllegalTransition as exc:
        if exc.premature:
            raise NotReadyYet(exc.message) from None
        raise


# The escalation job


async def escalate_overdue(runtime: ServiceRuntime) -> int:
    """Escalate every unanswered referral past its ``respond_by``; return how many.

    Each in a unit of work of its own, by a conditional UPDATE (still unanswered, not escalated,
    same version): with several replicas on one store only one of them emits the event.
    """
    today = runtime.clock.today()
    async with runtime.database.sessions() as session:
        candidates = await store.overdue_referrals(session, today)
    escalated = 0
    for referral_id, clinic_id, respond_by, version in candidates:
        if not lifecycle.overdue(ReferralStatus.REFERRED, respond_by, today, escalated=False):
            continue
        on = lifecycle.escalated_on(respond_by)
        reason = EscalationReason.NO_RESPONSE
        async with runtime.unit_of_work() as uow:
            if not await store.escalate_if_unchanged(uow.session, referral_id, version, on, reason.value):
                continue
            await uow.emit(
                ReferralEscalated(referral_id=referral_id, clinic_id=clinic_id, on=on, reason=reason)
            )
            escalated += 1
    return escalated


# The identity hand-over


async def hand_over_identity(
    runtime: ServiceRuntime,
    outreach: Outreach,
    principal: Principal,
    referral_id: UUID,
    purpose: str,
) -> dict[str, Any]:
    """The referred client's identity as outreach gives it, for the addressed clinic only, with
    valid consent, for a stated ``purpose`` (checked once the caller is known to be that clinic).
    Referral holds no identity: it asks outreach with a one-minute token of its own
    (:func:`~pulih.kit.service_tokens.service_bearer`, ``sub`` ``referral``, scope
    ``outreach.identity``), naming the referral as the
    purpose and the clinic it acts for; outreach checks the referral and the consent again from
    its own events. Every attempt is audited, refused ones included."""
    async with runtime.database.sessions() as session:
        referral = await session.get(Referral, referral_id)
        client = consents = None
        if referral is not None:
            client = await session.get(KnownClient, referral.client_id)
            consents = await OUTREACH.consents_of(session, referral.client_id)

    async def record(outcome: str, reason: str | None = None) -> None:
        await audit(
            runtime.database,
            IdentityHandOver,
            principal,
            purpose=hand_over.audited_purpose(purpose),
            outcome=outcome,
            referral_id=referral_id,
            client_id=referral.client_id if referral is not None else None,
            clinic_id=principal.clinic_id,
            reason=reason,
        )

    asking_clinic = principal.clinic_id if principal.role is Role.CLINIC else None
    erased_on = client.erased_on if client is not None else None
    try:
        hand_over.may_hand_over(referral, asking_clinic, consents or (), erased_on, runtime.clock.today())
        hand_over.stated_purpose(purpose)
    except Gone:
        await record("erased")
        raise
    except (Forbidden, Invalid) as exc:
        await record("denied", exc.code)
        raise
    assert referral is not None  # may_hand_over refuses an unknown referral
    settings = runtime.settings
    token = await service_bearer(settings, SERVICE_NAME, IDENTITY_SCOPE)
    import httpx  # loaded by the first hand-over (see Outreach)

    try:
        answer = await outreach.client().get(
            f"/v1/clients/{referral.client_id}",
            params={"purpose": f"referral:{referral_id}", "on_behalf_of": referral.clinic_id},
            headers={"Authorization": f"Bearer {token}"},
        )
    except httpx.HTTPError as exc:
        await record("unavailable", type(exc).__name__)
        raise Unavailable(
            "outreach_unavailable", "outreach, which keeps identities, did not answer"
        ) from None
    if answer.status_code == 410:
        await record("erased")
        raise Gone("client_erased", "this client's identity was erased")
    if answer.status_code != 200:
        await record("unavailable", f"http_{answer.status_code}")
        raise Unavailable("outreach_unavailable", f"outreach answered {answer.status_code}")
    identity: dict[str, Any] = answer.json()
    await record("granted")
    return identity
