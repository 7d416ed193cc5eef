"""Routes for clients: registration, consent, screening, identity reads and erasure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select

from pulih.contracts.events.outreach import (
    ClientErased,
    ClientRegistered,
    ClientScreened,
    ConsentRecorded,
    ConsentWithdrawn,
    SubstanceResult,
)
from pulih.kit.auth import CurrentUser, Principal, Role, require
from pulih.kit.commands import CommandDep
from pulih.kit.deps import RuntimeDep
from pulih.kit.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from pulih.kit.runtime import ServiceRuntime
from pulih.outreach.access import FIELD_ROLES, REGENCY_ROLES, active_agent_of, client_for, unit_for
from pulih.outreach.assist import AssistAnswerError, AssistAnswers, SubstanceAnswers, score_assist
from pulih.outreach.identity_rules import IdentityError, age_band, validate_nik, validate_phone
from pulih.outreach.screening_path import screening_path
from pulih.outreach.store import Client, ClientIdentity, ClientKey, Consent, IdentityRead, Screening
from pulih.outreach.vault import IdentityVault, KeyDestroyed
from pulih.outreach.views import (
    AuditEntry,
    ClientView,
    ConsentView,
    EraseClient,
    IdentityView,
    RecordConsent,
    RegisterClient,
    ScreenClient,
    ScreeningView,
    WithdrawConsent,
)

router = APIRouter(prefix="/v1", tags=["clients"])

IDENTITY_READERS = (Role.AGENT, Role.FACILITATOR, Role.SERVICE)


def _vault(runtime: ServiceRuntime) -> IdentityVault:
    vault = runtime.extras.get("vault")
    if not isinstance(vault, IdentityVault):
        vault = IdentityVault(runtime.settings.master_key_bytes())
        runtime.extras["vault"] = vault
    return vault


def _client_view(client: Client) -> ClientView:
    return ClientView.model_validate(
        {
            "client_id": client.client_id,
            "unit_id": client.unit_id,
            "registered_on": client.registered_on,
            "sex": client.sex,
            "age_band": client.age_band,
            "came_through": client.came_through,
            "erased": client.erased_on is not None,
        }
    )


@router.post("/clients", status_code=201, response_model=ClientView)
async def register_client(body: RegisterClient, cmd: CommandDep) -> JSONResponse:
    """Register a client: the identity is sealed here; the event carries only sex and age band."""
    require(cmd.principal, *FIELD_ROLES)
    who = body.identity
    try:
        nik = validate_nik(who.nik, birth_date=who.birth_date, sex=who.sex.value)
        phone = validate_phone(who.phone) if who.phone else None
        band = age_band(who.birth_date, body.registered_on)
    except IdentityError as exc:
        raise Invalid(exc.code, exc.message, f"identity.{exc.field}") from None
    vault = _vault(cmd.runtime)
    async with cmd.transaction() as tx:
        await unit_for(tx.session, body.unit_id, cmd.principal)
        lookup = vault.nik_lookup(nik)
        if await tx.session.scalar(
            select(ClientIdentity.client_id).where(ClientIdentity.nik_lookup == lookup)
        ):
            raise Conflict(
                "client_already_registered",
                "a client with this NIK is already registered",
                "identity.nik",
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
        tx.session.add(client)
        await tx.session.flush()
        tx.session.add(ClientKey(client_id=client_id, wrapped_key=wrapped))

        def seal(field: str, value: str | None) -> bytes | None:
            return None if value is None else vault.seal(data_key, client_id, field, value)

        tx.session.add(
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
        await tx.emit(
            ClientRegistered(
                client_id=client_id,
                unit_id=body.unit_id,
                registered_on=body.registered_on,
                sex=who.sex,
                age_band=band,
                came_through=body.came_through,
            )
        )
        return tx.reply(_client_view(client), status_code=201)


@router.get("/clients", response_model=list[ClientView])
async def list_clients(
    runtime: RuntimeDep, principal: CurrentUser, unit_id: Annotated[UUID | None, Query()] = None
) -> list[ClientView]:
    """Clients the caller may see, pseudonymous (no identity)."""
    require(principal, *FIELD_ROLES)
    if principal.role is Role.AGENT:
        if unit_id is not None and unit_id != principal.unit_id:
            raise Forbidden("other_unit", "agents see their own unit's clients only", "unit_id")
        unit_id = principal.unit_id
    async with runtime.database.sessions() as session:
        query = select(Client).order_by(Client.registered_on)
        if unit_id is not None:
            query = query.where(Client.unit_id == unit_id)
        clients = (await session.scalars(query)).all()
    return [_client_view(c) for c in clients]


async def _audit(
    runtime: ServiceRuntime,
    client_id: UUID,
    principal: Principal,
    purpose: str,
    outcome: str,
    on_behalf_of: str | None,
) -> None:
    async with runtime.database.transaction() as session:
        session.add(
            IdentityRead(
                client_id=client_id,
                actor=principal.sub,
                actor_role=principal.role.value,
                on_behalf_of=on_behalf_of,
                purpose=purpose,
                outcome=outcome,
                read_at=datetime.now(UTC),
            )
        )


@router.get("/clients/{client_id}", response_model=IdentityView)
async def read_identity(
    client_id: UUID,
    runtime: RuntimeDep,
    principal: CurrentUser,
    purpose: Annotated[str, Query(min_length=3, max_length=200, description="why the identity is needed")],
    on_behalf_of: Annotated[
        str | None, Query(max_length=120, description="service calls: the clinic")
    ] = None,
) -> IdentityView:
    """Read a client's identity. Every attempt, granted or not, is written to the audit table."""
    if principal.role not in IDENTITY_READERS:
        await _audit(runtime, client_id, principal, purpose, "denied", on_behalf_of)
        raise Forbidden("forbidden_role", "only agents of the unit and facilitators read identities")
    async with runtime.database.sessions() as session:
        client = await session.get(Client, client_id)
        if client is None:
            raise NotFound("client_not_found", f"no client {client_id}", "client_id")
        if principal.role is not Role.SERVICE and not principal.may_see_unit(client.unit_id):
            await _audit(runtime, client_id, principal, purpose, "denied", on_behalf_of)
            raise Forbidden("other_unit", "agents read their own unit's clients only", "client_id")
        key = await session.get(ClientKey, client_id)
        identity = await session.get(ClientIdentity, client_id)
        try:
            if key is None or identity is None:
                raise KeyDestroyed(str(client_id))
            vault = _vault(runtime)
            data_key = vault.unwrap(client_id, key.wrapped_key)

            def open_(field: str, sealed: bytes | None) -> str | None:
                return None if sealed is None else vault.open(data_key, client_id, field, sealed)

            view = IdentityView.model_validate(
                {
                    "client_id": client_id,
                    "unit_id": client.unit_id,
                    "full_name": open_("full_name", identity.full_name),
                    "nik": open_("nik", identity.nik),
                    "birth_date": open_("birth_date", identity.birth_date),
                    "sex": client.sex,
                    "phone": open_("phone", identity.phone),
                    "address": open_("address", identity.address),
                }
            )
        except KeyDestroyed:
            await _audit(runtime, client_id, principal, purpose, "erased", on_behalf_of)
            raise Gone("client_erased", "this client's identity was erased") from None
    await _audit(runtime, client_id, principal, purpose, "granted", on_behalf_of)
    return view


@router.get("/clients/{client_id}/audit", response_model=list[AuditEntry])
async def identity_audit(client_id: UUID, runtime: RuntimeDep, principal: CurrentUser) -> list[AuditEntry]:
    """Who read this client's identity, when and why (facilitator, admin)."""
    require(principal, *REGENCY_ROLES)
    async with runtime.database.sessions() as session:
        rows = (
            await session.scalars(
                select(IdentityRead).where(IdentityRead.client_id == client_id).order_by(IdentityRead.id)
            )
        ).all()
    return [
        AuditEntry(
            actor=r.actor,
            actor_role=r.actor_role,
            on_behalf_of=r.on_behalf_of,
            purpose=r.purpose,
            outcome=r.outcome,
            read_at=r.read_at.isoformat(),
        )
        for r in rows
    ]


def _consent_view(consent: Consent) -> ConsentView:
    return ConsentView.model_validate(
        {
            "consent_id": consent.consent_id,
            "client_id": consent.client_id,
            "scopes": consent.scopes,
            "given_on": consent.given_on,
            "expires_on": consent.expires_on,
            "withdrawn_on": consent.withdrawn_on,
        }
    )


def _not_erased(client: Client) -> None:
    if client.erased_on is not None:
        raise Gone("client_erased", "this client was erased")


@router.post("/clients/{client_id}/consents", status_code=201, response_model=ConsentView)
async def record_consent(client_id: UUID, body: RecordConsent, cmd: CommandDep) -> JSONResponse:
    """Record what the client agreed to: programme, referral, identity_to_clinic."""
    if body.expires_on is not None and body.expires_on < body.given_on:
        raise Invalid("expires_before_given", "consent cannot expire before it is given", "expires_on")
    async with cmd.transaction() as tx:
        client = await client_for(tx.session, client_id, cmd.principal)
        _not_erased(client)
        scopes = sorted({s.value for s in body.scopes})
        consent = Consent(
            consent_id=uuid.uuid4(),
            client_id=client_id,
            scopes=scopes,
            given_on=body.given_on,
            expires_on=body.expires_on,
        )
        tx.session.add(consent)
        await tx.emit(
            ConsentRecorded.model_validate(
                {
                    "consent_id": consent.consent_id,
                    "client_id": client_id,
                    "scopes": scopes,
                    "given_on": body.given_on,
                    "expires_on": body.expires_on,
                }
            )
        )
        return tx.reply(_consent_view(consent), status_code=201)


@router.get("/clients/{client_id}/consents", response_model=list[ConsentView])
async def list_consents(client_id: UUID, runtime: RuntimeDep, principal: CurrentUser) -> list[ConsentView]:
    """Every consent the client gave, current and withdrawn."""
    async with runtime.database.sessions() as session:
        await client_for(session, client_id, principal)
        consents = (await session.scalars(select(Consent).where(Consent.client_id == client_id))).all()
    return [_consent_view(c) for c in consents]


@router.post("/clients/{client_id}/consents/{consent_id}/withdraw", response_model=ConsentView)
async def withdraw_consent(
    client_id: UUID, consent_id: UUID, body: WithdrawConsent, cmd: CommandDep
) -> JSONResponse:
    """The client withdraws a consent from a date on."""
    async with cmd.transaction() as tx:
        await client_for(tx.session, client_id, cmd.principal)
        consent = await tx.session.get(Consent, consent_id)
        if consent is None or consent.client_id != client_id:
            raise NotFound("consent_not_found", f"no consent {consent_id} for this client", "consent_id")
        if consent.withdrawn_on is not None:
            raise Conflict("consent_withdrawn", "this consent was already withdrawn")
        if body.on < consent.given_on:
            raise Invalid("withdrawn_before_given", "a consent cannot be withdrawn before it was given", "on")
        consent.withdrawn_on = body.on
        await tx.emit(ConsentWithdrawn(consent_id=consent_id, client_id=client_id, on=body.on))
        return tx.reply(_consent_view(consent))


@router.post("/clients/{client_id}/screenings", status_code=201, response_model=ScreeningView)
async def screen_client(client_id: UUID, body: ScreenClient, cmd: CommandDep) -> JSONResponse:
    """Screen with WHO ASSIST v3: scores, risks and the regency's recommended path."""
    answers = AssistAnswers(
        substances=tuple(SubstanceAnswers(**s.model_dump()) for s in body.substances),
        injecting=body.injecting,
    )
    try:
        result = score_assist(answers, screening_path(cmd.runtime))
    except AssistAnswerError as exc:
        raise Invalid(exc.code, exc.message, exc.field) from None
    async with cmd.transaction() as tx:
        client = await client_for(tx.session, client_id, cmd.principal)
        _not_erased(client)
        await active_agent_of(tx.session, body.agent_id, client.unit_id)
        consents = (await tx.session.scalars(select(Consent).where(Consent.client_id == client_id))).all()
        if not any(c.valid_on(body.screened_on) for c in consents):
            raise Conflict("consent_required", "record the client's consent before screening")
        substances = [
            {"substance": s.substance.value, "score": s.score, "risk": s.risk.value}
            for s in result.substances
        ]
        screening = Screening(
            screening_id=uuid.uuid4(),
            client_id=client_id,
            unit_id=client.unit_id,
            agent_id=body.agent_id,
            screened_on=body.screened_on,
            answers=body.model_dump(mode="json", include={"substances", "injecting"}),
            substances=substances,
            overall_risk=result.overall_risk.value,
            injected_last_3_months=result.injected_last_3_months,
            recommendation=result.recommendation.value,
        )
        tx.session.add(screening)
        await tx.emit(
            ClientScreened.model_validate(
                {
                    "screening_id": screening.screening_id,
                    "client_id": client_id,
                    "unit_id": client.unit_id,
                    "agent_id": body.agent_id,
                    "screened_on": body.screened_on,
                    "instrument": "assist_v3",
                    "substances": [SubstanceResult.model_validate(s) for s in substances],
                    "injected_last_3_months": result.injected_last_3_months,
                    "overall_risk": result.overall_risk.value,
                    "recommendation": result.recommendation.value,
                }
            )
        )
        view = ScreeningView.model_validate(
            {
                "screening_id": screening.screening_id,
                "client_id": client_id,
                "screened_on": body.screened_on,
                "substances": substances,
                "overall_risk": result.overall_risk.value,
                "injected_last_3_months": result.injected_last_3_months,
                "recommendation": result.recommendation.value,
            }
        )
        return tx.reply(view, status_code=201)


@router.post("/clients/{client_id}/erase", response_model=ClientView)
async def erase_client(client_id: UUID, body: EraseClient, cmd: CommandDep) -> JSONResponse:
    """Erase a client for good: their data key is destroyed, so no copy can be decrypted."""
    require(cmd.principal, *REGENCY_ROLES)
    async with cmd.transaction() as tx:
        client = await tx.session.get(Client, client_id)
        if client is None:
            raise NotFound("client_not_found", f"no client {client_id}", "client_id")
        _not_erased(client)
        await tx.session.execute(delete(ClientKey).where(ClientKey.client_id == client_id))
        identity = await tx.session.get(ClientIdentity, client_id)
        if identity is not None:
            identity.nik_lookup = None
        client.erased_on = body.on
        await tx.emit(ClientErased(client_id=client_id, on=body.on))
        return tx.reply(_client_view(client))
