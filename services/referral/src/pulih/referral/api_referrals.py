"""Routes for referrals: making one, suggestions, lists, cancelling, and clinics' HTTP answers."""

from __future__ import annotations

import uuid
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from pulih.contracts import Event
from pulih.contracts.codes import ConsentScope
from pulih.contracts.events.clinic import (
    ClientAttended,
    ReferralAccepted,
    ReferralDeclined,
    TreatmentCompleted,
)
from pulih.contracts.events.referral import ReferredToClinic
from pulih.kit import inbox
from pulih.kit.auth import CurrentUser, Principal, Role, require
from pulih.kit.commands import CommandDep
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from pulih.kit.programme import load_programme
from pulih.kit.runtime import ServiceRuntime
from pulih.referral import domain
from pulih.referral.cancellation import cancel
from pulih.referral.clinic_answers import AnswerRefused, ClinicEvent, apply_answer
from pulih.referral.consumers import clinic_answers_consumer
from pulih.referral.domain import OPEN, ReferralStatus, ResponseTimes
from pulih.referral.store import Clinic, KnownClient, KnownConsent, KnownScreening, Referral
from pulih.referral.views import (
    Accepted,
    CancelReferral,
    ClinicAnswer,
    Declined,
    ReferClient,
    ReferralView,
    SuggestedReferral,
)

router = APIRouter(prefix="/v1", tags=["referrals"])

REFERRERS = (Role.AGENT, Role.FACILITATOR)
"""Who refers and cancels: agents for their own unit's clients, facilitators anywhere."""

READERS = (Role.AGENT, Role.FACILITATOR, Role.ADMIN, Role.CLINIC)


def response_times(runtime: ServiceRuntime) -> ResponseTimes:
    """The regency's response times, read once from its programme file."""
    times = runtime.extras.get("response_times")
    if not isinstance(times, ResponseTimes):
        times = ResponseTimes.from_programme(load_programme(runtime.settings.programme_file))
        runtime.extras["response_times"] = times
    return times


def referral_view(r: Referral) -> ReferralView:
    """A referral as the API shows it (pseudonymous)."""
    return ReferralView.model_validate(
        {
            "referral_id": r.referral_id,
            "client_id": r.client_id,
            "unit_id": r.unit_id,
            "clinic_id": r.clinic_id,
            "service": r.service,
            "reason": r.reason,
            "urgency": r.urgency,
            "referred_on": r.referred_on,
            "respond_by": r.respond_by,
            "consent_id": r.consent_id,
            "status": r.status,
            "accepted_on": r.accepted_on,
            "appointment_on": r.appointment_on,
            "attended_on": r.attended_on,
            "closed_on": r.closed_on,
            "outcome": r.outcome,
            "back_referral": r.back_referral,
            "escalated": r.escalated,
            "escalated_on": r.escalated_on,
            "escalation_reason": r.escalation_reason,
        }
    )


def may_see(principal: Principal, referral: Referral) -> bool:
    """Agents see their unit's referrals, clinics those addressed to them, staff all."""
    if principal.role is Role.CLINIC:
        return principal.clinic_id == referral.clinic_id
    return principal.may_see_unit(referral.unit_id)


@router.post("/referrals", status_code=201, response_model=ReferralView)
async def refer_client(body: ReferClient, cmd: CommandDep) -> JSONResponse:
    """Refer a screened, consenting client to a clinic that offers the service."""
    require(cmd.principal, *REFERRERS)
    today = cmd.runtime.clock.today()
    referred_on = body.referred_on or today
    if referred_on > today:
        raise Invalid("referred_in_future", "a referral cannot be dated in the future", "referred_on")
    respond_by = response_times(cmd.runtime).respond_by(referred_on, body.urgency)
    async with cmd.transaction() as tx:
        s = tx.session
        client = await s.get(KnownClient, body.client_id)
        if client is None:
            raise NotFound("client_not_found", f"no client {body.client_id} (yet)", "client_id")
        if not cmd.principal.may_see_unit(client.unit_id):
            raise Forbidden("other_unit", "agents refer their own unit's clients only", "client_id")
        if client.erased_on is not None:
            raise Gone("client_erased", "this client was erased")
        clinic = await s.get(Clinic, body.clinic_id)
        if clinic is None:
            raise Invalid("unknown_clinic", f"no clinic {body.clinic_id} in the directory", "clinic_id")
        if cmd.runtime.settings.regency not in clinic.regencies:
            raise Invalid("clinic_out_of_area", "this clinic does not serve the regency", "clinic_id")
        if not domain.offers(clinic.services, body.service):
            raise Invalid(
                "service_not_offered", f"{clinic.name} does not offer {body.service.value}", "service"
            )
        screened = await s.scalar(
            select(KnownScreening.screening_id).where(
                KnownScreening.client_id == client.client_id, KnownScreening.screened_on <= referred_on
            )
        )
        if screened is None:
            raise Conflict("not_screened", "screen the client before referring them")
        consents = (
            await s.scalars(select(KnownConsent).where(KnownConsent.client_id == client.client_id))
        ).all()
        consent = next((c for c in consents if c.terms().allows(ConsentScope.REFERRAL, referred_on)), None)
        if consent is None:
            raise Conflict("consent_required", "the client has no valid consent to be referred")
        already_open = await s.scalar(
            select(Referral.referral_id).where(
                Referral.client_id == client.client_id,
                Referral.clinic_id == clinic.clinic_id,
                Referral.status.in_([st.value for st in OPEN]),
            )
        )
        if already_open is not None:
            raise Conflict("referral_open", f"the client already has an open referral {already_open} there")
        referral_id = body.referral_id or uuid.uuid4()
        if await s.get(Referral, referral_id) is not None:
            raise Conflict("referral_exists", f"referral {referral_id} exists", "referral_id")
        referral = Referral(
            referral_id=referral_id,
            client_id=client.client_id,
            unit_id=client.unit_id,
            clinic_id=clinic.clinic_id,
            service=body.service.value,
            reason=body.reason.value,
            urgency=body.urgency.value,
            referred_on=referred_on,
            respond_by=respond_by,
            consent_id=consent.consent_id,
            referred_by=cmd.principal.sub,
            status=ReferralStatus.REFERRED.value,
            escalated=False,
        )
        s.add(referral)
        await tx.emit(
            ReferredToClinic(
                referral_id=referral_id,
                client_id=client.client_id,
                unit_id=client.unit_id,
                clinic_id=clinic.clinic_id,
                service=body.service,
                reason=body.reason,
                urgency=body.urgency,
                referred_on=referred_on,
                respond_by=respond_by,
                consent_id=consent.consent_id,
            )
        )
        return tx.reply(referral_view(referral), status_code=201)


@router.get("/referrals/suggestions", response_model=list[SuggestedReferral])
async def suggested_referrals(runtime: RuntimeDep, principal: CurrentUser) -> list[SuggestedReferral]:
    """Screenings that recommend referral with no referral made since; sending one stays a
    human decision (agents: their own unit)."""
    require(principal, *REFERRERS)
    async with runtime.database.sessions() as session:
        query = (
            select(KnownScreening)
            .join(KnownClient, KnownClient.client_id == KnownScreening.client_id)
            .where(KnownScreening.recommendation == "referral", KnownClient.erased_on.is_(None))
            .order_by(KnownScreening.screened_on)
        )
        if principal.role is Role.AGENT:
            query = query.where(KnownScreening.unit_id == principal.unit_id)
        screenings = (await session.scalars(query)).all()
        referred = {
            (row.client_id, row.referred_on)
            for row in (await session.execute(select(Referral.client_id, Referral.referred_on))).all()
        }
    latest: dict[UUID, KnownScreening] = {}
    for screening in screenings:
        latest[screening.client_id] = screening
    return [
        SuggestedReferral(
            client_id=s.client_id,
            unit_id=s.unit_id,
            screening_id=s.screening_id,
            screened_on=s.screened_on,
            overall_risk=s.overall_risk,
            injected_last_3_months=s.injected_last_3_months,
        )
        for s in latest.values()
        if not any(client == s.client_id and on >= s.screened_on for client, on in referred)
    ]


@router.get("/referrals", response_model=list[ReferralView])
async def list_referrals(
    runtime: RuntimeDep,
    principal: CurrentUser,
    status: Annotated[ReferralStatus | None, Query()] = None,
    escalated: Annotated[bool | None, Query()] = None,
    clinic_id: Annotated[str | None, Query()] = None,
    client_id: Annotated[UUID | None, Query()] = None,
) -> list[ReferralView]:
    """Referrals the caller may see: a facilitator's list of escalated ones is
    ``?escalated=true``; agents see their unit's, clinics those addressed to them."""
    require(principal, *READERS)
    query = select(Referral).order_by(Referral.referred_on, Referral.referral_id)
    if principal.role is Role.AGENT:
        query = query.where(Referral.unit_id == principal.unit_id)
    if principal.role is Role.CLINIC:
        query = query.where(Referral.clinic_id == principal.clinic_id)
    if status is not None:
        query = query.where(Referral.status == status.value)
    if escalated is not None:
        query = query.where(Referral.escalated.is_(escalated))
    if clinic_id is not None:
        query = query.where(Referral.clinic_id == clinic_id)
    if client_id is not None:
        query = query.where(Referral.client_id == client_id)
    async with runtime.database.sessions() as session:
        referrals = (await session.scalars(query)).all()
    return [referral_view(r) for r in referrals]


async def _referral_for(runtime: ServiceRuntime, referral_id: UUID, principal: Principal) -> Referral:
    async with runtime.database.sessions() as session:
        referral = await session.get(Referral, referral_id)
    if referral is None:
        raise NotFound("referral_not_found", f"no referral {referral_id}", "referral_id")
    if not may_see(principal, referral):
        raise Forbidden("other_referral", "this referral is not yours to see")
    return referral


@router.get("/referrals/{referral_id}", response_model=ReferralView)
async def get_referral(referral_id: UUID, runtime: RuntimeDep, principal: CurrentUser) -> ReferralView:
    """One referral, for its unit, staff, or the clinic it is addressed to."""
    require(principal, *READERS)
    return referral_view(await _referral_for(runtime, referral_id, principal))


@router.post("/referrals/{referral_id}/cancel", response_model=ReferralView)
async def cancel_referral(referral_id: UUID, body: CancelReferral, cmd: CommandDep) -> JSONResponse:
    """Cancel a referral the clinic has not finished with; it closes as ``cancelled``."""
    require(cmd.principal, *REFERRERS)
    on = body.on or cmd.runtime.clock.today()
    async with cmd.transaction() as tx:
        referral = await tx.session.get(Referral, referral_id)
        if referral is None:
            raise NotFound("referral_not_found", f"no referral {referral_id}", "referral_id")
        if not cmd.principal.may_see_unit(referral.unit_id):
            raise Forbidden("other_unit", "agents cancel their own unit's referrals only")
        if on < referral.referred_on:
            raise Invalid("cancelled_before_referral", "a cancellation cannot predate the referral", "on")
        try:
            await cancel(referral, on, body.reason, tx.emit)
        except domain.IllegalTransition as exc:
            raise Conflict("illegal_transition", str(exc)) from None
        await tx.session.flush()
        return tx.reply(referral_view(referral))


def _clinic_event(referral_id: UUID, answer: ClinicAnswer) -> ClinicEvent:
    if isinstance(answer, Accepted):
        return ReferralAccepted(
            referral_id=referral_id, accepted_on=answer.on, appointment_on=answer.appointment_on
        )
    if isinstance(answer, Declined):
        return ReferralDeclined(referral_id=referral_id, on=answer.on, reason=answer.reason)
    if answer.answer == "attended":
        return ClientAttended(referral_id=referral_id, on=answer.on)
    return TreatmentCompleted(
        referral_id=referral_id, on=answer.on, outcome=answer.outcome, back_referral=answer.back_referral
    )


_REFUSALS: dict[str, type[NotFound] | type[Forbidden] | type[Conflict] | type[Invalid]] = {
    "unknown_referral": NotFound,
    "other_clinic": Forbidden,
    "illegal_transition": Conflict,
    "answer_before_referral": Invalid,
}


@router.post("/referrals/{referral_id}/answers", response_model=ReferralView)
async def answer_referral(referral_id: UUID, body: ClinicAnswer, cmd: CommandDep) -> JSONResponse:
    """A clinic without NATS answers here with its clinic token: the same rules as on NATS, and
    the same events (its answer is published on its own clinic subject)."""
    require(cmd.principal, Role.CLINIC)
    clinic_id = cmd.principal.clinic_id
    assert clinic_id is not None  # a clinic token always names its clinic
    answer = _clinic_event(referral_id, body)
    async with cmd.transaction() as tx:

        async def emit(data: Event) -> None:
            await tx.emit(data)

        published = await tx.emit(answer, clinic_id=clinic_id)
        # The answer comes back to our own clinic-answers consumer: it is applied already.
        await inbox.record_applied(tx.session, clinic_answers_consumer(cmd.runtime), published.id)
        try:
            referral = await apply_answer(tx.session, clinic_id, answer, emit)
        except AnswerRefused as exc:
            raise _REFUSALS[exc.code](exc.code, exc.message) from None
        return tx.reply(referral_view(referral))
