"""Outreach's use cases: load what the command is about, let the rules decide, store and emit.

Each takes the unit of work of the command (or, for reads, the store) and a request body, which
is the command itself (``RegisterClient``, ``ScreenClient``). The rules are in :mod:`domain`; the
events go to the outbox through ``uow.emit`` only.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from sqlalchemy import delete, select

from pulih.contracts.codes import Instrument
from pulih.contracts.events.outreach import (
    AgentDeactivated,
    AgentRegistered,
    ClientErased,
    ClientRegistered,
    ClientScreened,
    ConsentRecorded,
    ConsentWithdrawn,
    OutreachActivityRecorded,
    SubstanceResult,
    UnitEstablished,
)
from pulih.kit.audit import audit
from pulih.kit.auth import Principal, Role
from pulih.kit.database import Database
from pulih.kit.errors import Conflict, Forbidden, Gone, NotFound
from pulih.kit.read_model import active_agent_of
from pulih.kit.unit_of_work import UnitOfWork
from pulih.outreach.access import client_for, unit_for
from pulih.outreach.bodies import (
    DeactivateAgent,
    EraseClient,
    EstablishUnit,
    IdentityView,
    RecordConsent,
    RecordOutreach,
    RegisterAgent,
    RegisterClient,
    ScreenClient,
    WithdrawConsent,
)
from pulih.outreach.deps import OutreachDeps
from pulih.outreach.domain import consent as consent_rules
from pulih.outreach.domain import units as unit_rules
from pulih.outreach.domain.assist import AssistAnswers, SubstanceAnswers, score_assist
from pulih.outreach.domain.identity import IdentityError, age_band, validate_nik, validate_phone
from pulih.outreach.store import (
    Agent,
    Client,
    ClientIdentity,
    ClientKey,
    Consent,
    IdentityRead,
    OutreachActivity,
    Screening,
    Unit,
)
from pulih.outreach.vault import KeyDestroyed

IDENTITY_READERS = (Role.AGENT, Role.FACILITATOR, Role.SERVICE)


# --- units, agents, outreach counts ---------------------------------------------------------


async def establish_unit(uow: UnitOfWork, regency: str, body: EstablishUnit) -> Unit:
    """Establish a Unit IBM in a village of the regency."""
    unit_rules.check_village(body.village_code, regency)
    unit = Unit(unit_id=uuid.uuid4(), **body.model_dump())
    uow.session.add(unit)
    await uow.emit(UnitEstablished.model_validate(unit, from_attributes=True))
    return unit


async def register_agent(uow: UnitOfWork, principal: Principal, unit_id: UUID, body: RegisterAgent) -> Agent:
    """Register a trained Agen Pemulihan in a unit; a device-made id may be given."""
    await unit_for(uow.session, unit_id, principal)
    agent_id = body.agent_id or uuid.uuid4()
    if await uow.session.get(Agent, agent_id) is not None:
        raise Conflict("agent_exists", f"agent {agent_id} is already registered", "agent_id")
    agent = Agent(agent_id=agent_id, unit_id=unit_id, trained_on=body.trained_on, active=True)
    uow.session.add(agent)
    await uow.emit(AgentRegistered.model_validate(agent, from_attributes=True))
    return agent


async def deactivate_agent(uow: UnitOfWork, agent_id: UUID, body: DeactivateAgent) -> Agent:
    """An agent leaves the unit."""
    agent = await uow.session.get(Agent, agent_id)
    if agent is None:
        raise NotFound("agent_not_found", f"no agent {agent_id}", "agent_id")
    unit_rules.check_deactivation(agent_id, agent.active, agent.trained_on, body.on)
    agent.active = False
    agent.deactivated_on = body.on
    agent.deactivation_reason = body.reason_code.value
    await uow.emit(AgentDeactivated(agent_id=agent_id, unit_id=agent.unit_id, **body.model_dump()))
    return agent


async def record_outreach(
    uow: UnitOfWork, principal: Principal, unit_id: UUID, body: RecordOutreach
) -> OutreachActivity:
    """Record sosialisasi, pemetaan or penjangkauan as a count of people reached."""
    await unit_for(uow.session, unit_id, principal)
    await active_agent_of(uow.session, Agent, body.agent_id, unit_id)
    activity = OutreachActivity(activity_id=uuid.uuid4(), unit_id=unit_id, **body.model_dump())
    uow.session.add(activity)
    await uow.emit(OutreachActivityRecorded.model_validate(activity, from_attributes=True))
    return activity


# --- clients and their identities -----------------------------------------------------------


async def register_client(
    uow: UnitOfWork, deps: OutreachDeps, principal: Principal, body: RegisterClient
) -> Client:
    """Register a client: the identity is sealed here; the event carries only sex and age band."""
    who = body.identity
    try:
        nik = validate_nik(who.nik, birth_date=who.birth_date, sex=who.sex.value)
        phone = validate_phone(who.phone) if who.phone else None
        band = age_band(who.birth_date, body.registered_on)
    except IdentityError as exc:
        raise exc.at("identity") from None
    await unit_for(uow.session, body.unit_id, principal)
    vault = deps.vault
    lookup = vault.nik_lookup(nik)
    if await uow.session.scalar(select(ClientIdentity.client_id).where(ClientIdentity.nik_lookup == lookup)):
        raise Conflict(
            "client_already_registered", "a client with this NIK is already registered", "identity.nik"
        )
    client_id = uuid.uuid4()
    data_key, wrapped = vault.new_data_key(client_id)
    client = Client(
        client_id=client_id,
        unit_id=body.unit_id,
        registered_on=body.registered_on,
        sex=who.sex.value,
        age_band=band,
        came_through=body.came_through.value,
    )
    uow.session.add(client)
    await uow.session.flush()
    uow.session.add(ClientKey(client_id=client_id, wrapped_key=wrapped))

    def seal(field: str, value: str | None) -> bytes | None:
        return None if value is None else vault.seal(data_key, client_id, field, value)

    uow.session.add(
        ClientIdentity(
            client_id=client_id,
            full_name=seal("full_name", who.full_name),
            nik=seal("nik", nik),
            birth_date=seal("birth_date", who.birth_date.isoformat()),
            phone=seal("phone", phone),
            address=seal("address", who.address),
            nik_lookup=lookup,
        )
    )
    await uow.emit(ClientRegistered.model_validate(client, from_attributes=True))
    return client


async def read_identity(
    database: Database,
    deps: OutreachDeps,
    principal: Principal,
    client_id: UUID,
    purpose: str,
    on_behalf_of: str | None,
) -> IdentityView:
    """Open a client's identity for an allowed reader; every attempt is audited, granted or not."""

    async def record(outcome: str) -> None:
        await audit(
            database,
            IdentityRead,
            principal,
            purpose=purpose,
            outcome=outcome,
            client_id=client_id,
            on_behalf_of=on_behalf_of,
        )

    if principal.role not in IDENTITY_READERS:
        await record("denied")
        raise Forbidden("forbidden_role", "only agents of the unit and facilitators read identities")
    async with database.sessions() as session:
        client = await session.get(Client, client_id)
        if client is None:
            raise NotFound("client_not_found", f"no client {client_id}", "client_id")
        if principal.role is not Role.SERVICE and not principal.may_see_unit(client.unit_id):
            await record("denied")
            raise Forbidden("other_unit", "agents read their own unit's clients only", "client_id")
        key = await session.get(ClientKey, client_id)
        identity = await session.get(ClientIdentity, client_id)
    try:
        if key is None or identity is None:
            raise KeyDestroyed(str(client_id))
        data_key = deps.vault.unwrap(client_id, key.wrapped_key)

        def open_(field: str, sealed: bytes | None) -> str | None:
            return None if sealed is None else deps.vault.open(data_key, client_id, field, sealed)

        view = IdentityView(
            client_id=client_id,
            unit_id=client.unit_id,
            full_name=open_("full_name", identity.full_name),
            nik=open_("nik", identity.nik),
            birth_date=open_("birth_date", identity.birth_date),
            sex=client.sex,
            phone=open_("phone", identity.phone),
            address=open_("address", identity.address),
        )
    except KeyDestroyed:
        await record("erased")
        raise Gone("client_erased", "this client's identity was erased") from None
    await record("granted")
    return view


async def erase_client(uow: UnitOfWork, client_id: UUID, body: EraseClient) -> Client:
    """Erase a client for good: their data key is destroyed, so no copy can be decrypted."""
    client = await uow.session.get(Client, client_id)
    if client is None:
        raise NotFound("client_not_found", f"no client {client_id}", "client_id")
    consent_rules.not_erased(client.erased_on)
    await uow.session.execute(delete(ClientKey).where(ClientKey.client_id == client_id))
    identity = await uow.session.get(ClientIdentity, client_id)
    if identity is not None:
        identity.nik_lookup = None
    client.erased_on = body.on
    await uow.emit(ClientErased(client_id=client_id, on=body.on))
    return client


# --- consent and screening ------------------------------------------------------------------


async def record_consent(
    uow: UnitOfWork, principal: Principal, client_id: UUID, body: RecordConsent
) -> Consent:
    """Record what the client agreed to: programme, referral, identity_to_clinic."""
    consent_rules.check_terms(body.given_on, body.expires_on)
    client = await client_for(uow.session, client_id, principal)
    consent_rules.not_erased(client.erased_on)
    consent = Consent(
        consent_id=uuid.uuid4(),
        client_id=client_id,
        scopes=sorted({s.value for s in body.scopes}),
        given_on=body.given_on,
        expires_on=body.expires_on,
    )
    uow.session.add(consent)
    await uow.emit(ConsentRecorded.model_validate(consent, from_attributes=True))
    return consent


async def withdraw_consent(
    uow: UnitOfWork, principal: Principal, client_id: UUID, consent_id: UUID, body: WithdrawConsent
) -> Consent:
    """The client withdraws a consent from a date on."""
    await client_for(uow.session, client_id, principal)
    consent = await uow.session.get(Consent, consent_id)
    if consent is None or consent.client_id != client_id:
        raise NotFound("consent_not_found", f"no consent {consent_id} for this client", "consent_id")
    consent_rules.check_withdrawal(consent.terms(), body.on)
    consent.withdrawn_on = body.on
    await uow.emit(ConsentWithdrawn(consent_id=consent_id, client_id=client_id, on=body.on))
    return consent


async def screen_client(
    uow: UnitOfWork, deps: OutreachDeps, principal: Principal, client_id: UUID, body: ScreenClient
) -> Screening:
    """Screen with WHO ASSIST v3: scores, risks and the regency's recommended path."""
    answers = AssistAnswers(
        substances=tuple(SubstanceAnswers(**s.model_dump()) for s in body.substances),
        injecting=body.injecting,
    )
    result = score_assist(answers, deps.screening_path)
    client = await client_for(uow.session, client_id, principal)
    consent_rules.not_erased(client.erased_on)
    await active_agent_of(uow.session, Agent, body.agent_id, client.unit_id)
    consents = (await uow.session.scalars(select(Consent).where(Consent.client_id == client_id))).all()
    consent_rules.require_consent_to_screen((c.terms() for c in consents), body.screened_on)
    screening = Screening(
        screening_id=uuid.uuid4(),
        client_id=client_id,
        unit_id=client.unit_id,
        agent_id=body.agent_id,
        screened_on=body.screened_on,
        answers=body.model_dump(mode="json", include={"substances", "injecting"}),
        substances=[
            {"substance": s.substance.value, "score": s.score, "risk": s.risk.value}
            for s in result.substances
        ],
        overall_risk=result.overall_risk.value,
        injected_last_3_months=result.injected_last_3_months,
        recommendation=result.recommendation.value,
    )
    uow.session.add(screening)
    await uow.emit(
        ClientScreened(
            screening_id=screening.screening_id,
            client_id=client_id,
            unit_id=client.unit_id,
            agent_id=body.agent_id,
            screened_on=body.screened_on,
            instrument=Instrument.ASSIST_V3,
            substances=[SubstanceResult.model_validate(s) for s in screening.substances],
            injected_last_3_months=result.injected_last_3_months,
            overall_risk=result.overall_risk,
            recommendation=result.recommendation,
        )
    )
    return screening
