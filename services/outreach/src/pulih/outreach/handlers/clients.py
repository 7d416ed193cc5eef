"""Clients: registration (identity sealed, a repeated NIK flagged), possible duplicates and their
resolution, erasure."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from uuid import UUID

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from pulih.contracts.events.outreach import ClientErased, ClientRegistered
from pulih.kit.auth import Principal
from pulih.kit.database import insert_new
from pulih.kit.errors import Invalid, NotFound
from pulih.kit.unit_of_work import UnitOfWork
from pulih.outreach.access import unit_for
from pulih.outreach.bodies import DuplicateView, EraseClient, RegisterClient, ResolveDuplicate
from pulih.outreach.deps import OutreachDeps
from pulih.outreach.domain import consent as consent_rules
from pulih.outreach.domain import duplicates as duplicate_rules
from pulih.outreach.domain import registration as registration_rules
from pulih.outreach.domain.identity import check_identity
from pulih.outreach.store import Client, ClientIdentity, ClientKey, PossibleDuplicate


async def register_client(
    uow: UnitOfWork, deps: OutreachDeps, principal: Principal, today: date, body: RegisterClient
) -> Client:
    """Register a client: the identity is sealed here; the event carries only sex and age band.

    A NIK already registered is registered again all the same, and flagged as a possible
    duplicate for a facilitator (:mod:`domain.duplicates`): the answer is the same either way.
    """
    unit = await unit_for(uow.session, body.unit_id, principal)
    registration_rules.check_registration(body.registered_on, unit.established_on, today)
    who = body.identity
    try:
        identity = check_identity(
            full_name=who.full_name,
            nik=who.nik,
            birth_date=who.birth_date,
            sex=who.sex.value,
            phone=who.phone,
            address=who.address,
            registered_on=body.registered_on,
            today=today,
        )
    except Invalid as exc:
        raise exc.at("identity") from None
    vault = deps.vault
    lookup = vault.nik_lookup(identity.nik)
    client_id = uuid.uuid4()
    data_key, wrapped = vault.new_data_key(client_id)
    client = Client(
        client_id=client_id,
        unit_id=body.unit_id,
        registered_on=body.registered_on,
        sex=who.sex.value,
        age_band=identity.age_band,
        came_through=body.came_through.value,
    )
    await insert_new(uow.session, client)
    await insert_new(uow.session, ClientKey(client_id=client_id, wrapped_key=wrapped))

    def seal(field: str, value: str | None) -> bytes | None:
        return None if value is None else vault.seal(data_key, client_id, field, value)

    await insert_new(
        uow.session,
        ClientIdentity(
            client_id=client_id,
            full_name=seal("full_name", identity.full_name),
            nik=seal("nik", identity.nik),
            birth_date=seal("birth_date", identity.birth_date.isoformat()),
            phone=seal("phone", identity.phone),
            address=seal("address", identity.address),
            nik_lookup=lookup,
        ),
    )
    await _flag_possible_duplicates(uow, principal, client_id, lookup)
    await uow.emit(ClientRegistered.model_validate(client, from_attributes=True))
    return client


_EARLIER_WITH_NIK = select(ClientIdentity.client_id).where(
    ClientIdentity.nik_lookup == bindparam("lookup"), ClientIdentity.client_id != bindparam("client_id")
)
"""The other clients registered with a NIK (by its lookup), built once: every registration asks,
and a statement built anew costs its construction and cache key, about what the SELECT costs."""


async def _flag_possible_duplicates(
    uow: UnitOfWork, principal: Principal, client_id: UUID, lookup: str
) -> None:
    earlier = (await uow.session.scalars(_EARLIER_WITH_NIK, {"lookup": lookup, "client_id": client_id})).all()
    for existing_client_id in earlier:
        uow.session.add(
            PossibleDuplicate(
                duplicate_id=uuid.uuid4(),
                client_id=client_id,
                existing_client_id=existing_client_id,
                flagged_at=datetime.now(UTC),
                flagged_by=principal.sub,
                flagged_by_role=principal.role.value,
            )
        )


async def possible_duplicates(
    session: AsyncSession, *, status: str | None = None, duplicate_id: UUID | None = None
) -> list[DuplicateView]:
    """Possible duplicate registrations, oldest first: ``open``, ``resolved`` or all (or one)."""
    newer, existing = aliased(Client), aliased(Client)
    query = (
        select(PossibleDuplicate, newer.unit_id, existing.unit_id)
        .join(newer, newer.client_id == PossibleDuplicate.client_id)
        .join(existing, existing.client_id == PossibleDuplicate.existing_client_id)
        .order_by(PossibleDuplicate.flagged_at, PossibleDuplicate.duplicate_id)
    )
    if status == "open":
        query = query.where(PossibleDuplicate.resolution.is_(None))
    elif status == "resolved":
        query = query.where(PossibleDuplicate.resolution.is_not(None))
    if duplicate_id is not None:
        query = query.where(PossibleDuplicate.duplicate_id == duplicate_id)
    rows = (await session.execute(query)).all()
    return [
        DuplicateView.model_validate(flag, from_attributes=True).model_copy(
            update={"unit_id": unit_id, "existing_unit_id": existing_unit_id}
        )
        for flag, unit_id, existing_unit_id in rows
    ]


async def resolve_duplicate(
    uow: UnitOfWork, principal: Principal, duplicate_id: UUID, today: date, body: ResolveDuplicate
) -> DuplicateView:
    """A facilitator decides: ``same_person`` erases the newer registration's identity (dated
    today), ``different_people`` keeps both."""
    flag = await uow.session.get(PossibleDuplicate, duplicate_id)
    if flag is None:
        raise NotFound("duplicate_not_found", f"no possible duplicate {duplicate_id}", "duplicate_id")
    duplicate_rules.check_open(flag.resolution, flag.resolved_at)
    newer = await uow.session.get(Client, flag.client_id)
    assert newer is not None  # a foreign key
    if duplicate_rules.erases_newer(body.resolution, newer.erased):
        await _erase(uow, newer, today)
    flag.resolution = body.resolution.value
    flag.resolved_at = datetime.now(UTC)
    flag.resolved_by = principal.sub
    [view] = await possible_duplicates(uow.session, duplicate_id=duplicate_id)
    return view


async def erase_client(uow: UnitOfWork, client_id: UUID, today: date, body: EraseClient) -> Client:
    """Erase a client for good: their data key is destroyed, so no copy can be decrypted."""
    client = await uow.session.get(Client, client_id)
    if client is None:
        raise NotFound("client_not_found", f"no client {client_id}", "client_id")
    consent_rules.not_erased(client.erased_on)
    registration_rules.check_erasure(body.on, client.registered_on, today)
    await _erase(uow, client, body.on)
    return client


async def _erase(uow: UnitOfWork, client: Client, on: date) -> None:
    await uow.session.execute(delete(ClientKey).where(ClientKey.client_id == client.client_id))
    identity = await uow.session.get(ClientIdentity, client.client_id)
    if identity is not None:
        identity.nik_lookup = None
    client.erased_on = on
    await uow.emit(ClientErased(client_id=client.client_id, on=on))
