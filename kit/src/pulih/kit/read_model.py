"""The read models of other services' events that several services keep: outreach's clients,
consents, screenings and agents, and referral's referrals, pseudonymous (ids, dates and codes
only).

Rehab checks enrolment against outreach's, referral checks referrals, reporting counts from them;
outreach and rehab follow referral's referrals. Each service keeps its own copy in its own store
(a service never reads another's database), but the columns and the rules of applying the events
are written once, here:

- the classes below are mixins: a service maps them onto its own tables, adding what it needs
  (a foreign key, an index, an extra column such as ``injected_last_3_months``)::

      class KnownClient(read_model.KnownClient, Base):
          __tablename__ = "clients"

- :class:`OutreachReadModel` applies outreach's events to the service's classes,
  :class:`ReferralReadModel` referral's. A row takes every field of its event that the service's
  table has a column for;
- an event about a client (or consent, agent, referral) not heard of yet raises
  :class:`~pulih.kit.consumers.NotReadyYet`: it is retried, never dropped;
- events already applied are left alone, so a replay changes nothing: a new row is one
  ``INSERT … ON CONFLICT DO NOTHING`` (no read first; a consumer applies thousands a second);
- ``.then({Event: handler})`` runs a service's own reaction after the read model applied an event
  (rehab pauses an enrolment when its client is referred).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID

from sqlalchemy import JSON, Boolean, Date, Executable, Select, String, Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from pulih.contracts import CloudEvent, Event
from pulih.contracts.consent import ConsentTerms
from pulih.contracts.events.outreach import (
    AgentDeactivated,
    AgentRegistered,
    ClientErased,
    ClientRegistered,
    ClientScreened,
    ConsentRecorded,
    ConsentWithdrawn,
)
from pulih.contracts.events.referral import ReferralClosed, ReferredToClinic
from pulih.kit.consumers import Delivery, EventHandler, NotReadyYet
from pulih.kit.database import insert_for
from pulih.kit.errors import Invalid
from pulih.kit.unit_of_work import UnitOfWork


class KnownClient:
    """A client registered in outreach (``ClientRegistered``, ``ClientErased``)."""

    client_id: Mapped[UUID] = mapped_column(primary_key=True)
    unit_id: Mapped[UUID] = mapped_column(index=True)
    registered_on: Mapped[date] = mapped_column(Date)
    erased_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class KnownConsent:
    """A consent a client gave (``ConsentRecorded``) and maybe withdrew (``ConsentWithdrawn``)."""

    consent_id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    given_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    withdrawn_on: Mapped[date | None] = mapped_column(Date, nullable=True)

    def terms(self) -> ConsentTerms:
        """The consent as the domain rules read it."""
        return ConsentTerms(frozenset(self.scopes), self.given_on, self.expires_on, self.withdrawn_on)

    def allows(self, scope: str | None, day: date) -> bool:
        """Whether the consent covers ``scope`` (any scope if None) on ``day``."""
        return self.terms().allows(scope, day)


class KnownScreening:
    """A WHO ASSIST screening's outcome (``ClientScreened``); no answers, no scores."""

    screening_id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(index=True)
    unit_id: Mapped[UUID]
    screened_on: Mapped[date] = mapped_column(Date)
    overall_risk: Mapped[str] = mapped_column(String(10))
    recommendation: Mapped[str] = mapped_column(String(20))


class KnownAgent:
    """A recovery agent of a unit (``AgentRegistered``, ``AgentDeactivated``)."""

    agent_id: Mapped[UUID] = mapped_column(primary_key=True)
    unit_id: Mapped[UUID] = mapped_column(index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class KnownReferral:
    """A referral to a clinic (``ReferredToClinic``) and the day it closed (``ReferralClosed``):
    the columns every service that follows referrals keeps."""

    referral_id: Mapped[UUID] = mapped_column(primary_key=True)
    client_id: Mapped[UUID] = mapped_column(index=True)
    clinic_id: Mapped[str] = mapped_column(String(64))
    referred_on: Mapped[date] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)


class KnownReferralInFull(KnownReferral):
    """A :class:`KnownReferral` with the unit that referred and how the referral ended: what
    rehab keeps (it enrols a client sent back in aftercare in the referring unit)."""

    unit_id: Mapped[UUID]
    outcome: Mapped[str | None] = mapped_column(String(20), nullable=True)
    """A :class:`~pulih.contracts.codes.ReferralOutcome`; ``None`` while the referral is open."""
    back_referral: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    """The clinic sent the client back to the unit; ``None`` while the referral is open."""


class AgentLike(Protocol):
    """What the agent rule reads: outreach's own ``Agent`` and every ``KnownAgent`` have it."""

    @property
    def unit_id(self) -> UUID: ...

    @property
    def active(self) -> bool: ...


A = TypeVar("A", bound=AgentLike)


async def active_agent_of(session: AsyncSession, model: type[A], agent_id: UUID, unit_id: UUID) -> A:
    """An active agent of ``unit_id`` (422 otherwise: the request names the wrong agent)."""
    agent = await session.get(model, agent_id)
    if agent is None or agent.unit_id != unit_id:
        raise Invalid("unknown_agent", f"no agent {agent_id} in this unit", "agent_id")
    if not agent.active:
        raise Invalid("agent_inactive", f"agent {agent_id} was deactivated", "agent_id")
    return agent


def _table(model: type[Any]) -> Table:
    """The table a read-model class is mapped to."""
    table: Table = model.__table__
    return table


def _columns(model: type[Any]) -> set[str]:
    """The names of the columns of ``model``'s table."""
    return set(model.__table__.columns.keys())


_SHARED_FIELDS: dict[tuple[type[Any], type[Event]], tuple[str, ...]] = {}


def _shared_fields(model: type[Any], kind: type[Event]) -> tuple[str, ...]:
    """The fields of events of ``kind`` that ``model``'s table has columns for (found once)."""
    fields = _SHARED_FIELDS.get((model, kind))
    if fields is None:
        columns = _columns(model)
        fields = _SHARED_FIELDS[model, kind] = tuple(name for name in kind.model_fields if name in columns)
    return fields


def _values(model: type[Any], data: Event, **overrides: Any) -> dict[str, Any]:
    """The columns of a row of ``model`` from the event fields it has columns for."""
    values = {name: getattr(data, name) for name in _shared_fields(model, type(data))}
    return values | overrides


async def _insert_once(session: AsyncSession, model: type[Any], values: dict[str, Any]) -> None:
    """Add a row of ``model`` unless its key is there already (a replay): one statement."""
    await session.execute(_insert_statement(_table(model), session.get_bind().dialect.name), values)


@cache
def _insert_statement(table: Table, dialect: str) -> Executable:
    """``INSERT … ON CONFLICT (key) DO NOTHING`` into ``table``, built once (building and keying a
    statement costs more than running it); its columns are those of the values it is given."""
    keys = [column.name for column in table.primary_key.columns]
    return insert_for(table, dialect).on_conflict_do_nothing(index_elements=keys)


@cache
def _client_key_query(table: Table) -> Select[tuple[UUID]]:
    """The client's key if the client is known, built once."""
    key = table.c.client_id
    return select(key).where(key == bindparam("client_id"))


C = TypeVar("C", bound=KnownClient)


async def _known_client(session: AsyncSession, model: type[C], client_id: UUID) -> C:
    """The client, or :class:`NotReadyYet` if their registration has not arrived yet."""
    client = await session.get(model, client_id)
    if client is None:
        raise NotReadyYet(f"client {client_id} is not registered here yet")
    return client


async def _client_known(session: AsyncSession, model: type[KnownClient], client_id: UUID) -> None:
    """:class:`NotReadyYet` unless the client's registration has arrived (a key read only)."""
    if await session.scalar(_client_key_query(_table(model)), {"client_id": client_id}) is None:
        raise NotReadyYet(f"client {client_id} is not registered here yet")


@dataclass(frozen=True)
class OutreachReadModel:
    """Outreach's events applied to one service's read-model classes.

    ``agents`` is optional: a service that never checks agents keeps no agent table.
    """

    clients: type[KnownClient]
    consents: type[KnownConsent]
    screenings: type[KnownScreening]
    agents: type[KnownAgent] | None = None
    _extra: Mapping[type[Event], EventHandler] = field(default_factory=dict)

    async def client(self, session: AsyncSession, client_id: UUID) -> KnownClient:
        """The client, or :class:`NotReadyYet` if their registration has not arrived yet."""
        return await _known_client(session, self.clients, client_id)

    async def consents_of(self, session: AsyncSession, client_id: UUID) -> Sequence[KnownConsent]:
        """Every consent the client gave, withdrawn ones included."""
        query = select(self.consents).where(self.consents.client_id == client_id)
        return (await session.scalars(query)).all()

    async def consent_for(
        self, session: AsyncSession, client_id: UUID, scope: str, day: date
    ) -> KnownConsent | None:
        """A consent of the client that covers ``scope`` on ``day``, if any."""
        return next((c for c in await self.consents_of(session, client_id) if c.allows(scope, day)), None)

    async def latest_screening(
        self, session: AsyncSession, client_id: UUID, on_or_before: date | None = None
    ) -> KnownScreening | None:
        """The client's most recent screening (up to ``on_or_before``)."""
        query = select(self.screenings).where(self.screenings.client_id == client_id)
        if on_or_before is not None:
            query = query.where(self.screenings.screened_on <= on_or_before)
        return await session.scalar(query.order_by(self.screenings.screened_on.desc()).limit(1))

    def then(self, extra: Mapping[type[Event], EventHandler]) -> OutreachReadModel:
        """The same read model, running a service's own ``extra`` handler after the read model
        has applied an event (referral cancels referrals once the last consent is withdrawn)."""
        return OutreachReadModel(self.clients, self.consents, self.screenings, self.agents, extra)

    def handlers(self) -> dict[type[Event], EventHandler]:
        """The consumer's handler table for outreach's events."""
        table: dict[type[Event], EventHandler] = {
            ClientRegistered: self._registered,
            ClientErased: self._erased,
            ConsentRecorded: self._consent_recorded,
            ConsentWithdrawn: self._consent_withdrawn,
            ClientScreened: self._screened,
        }
        if self.agents is not None:
            table[AgentRegistered] = self._agent_registered
            table[AgentDeactivated] = self._agent_deactivated
        for kind, extra in self._extra.items():
            table[kind] = _chain(table.get(kind), extra)
        return table

    async def _registered(self, uow: UnitOfWork, event: CloudEvent[ClientRegistered], _: Delivery) -> None:
        await _insert_once(uow.session, self.clients, _values(self.clients, event.data))

    async def _erased(self, uow: UnitOfWork, event: CloudEvent[ClientErased], _: Delivery) -> None:
        client = await self.client(uow.session, event.data.client_id)
        client.erased_on = event.data.on

    async def _consent_recorded(
        self, uow: UnitOfWork, event: CloudEvent[ConsentRecorded], _: Delivery
    ) -> None:
        data = event.data
        await _client_known(uow.session, self.clients, data.client_id)
        scopes = sorted(s.value for s in data.scopes)
        await _insert_once(uow.session, self.consents, _values(self.consents, data, scopes=scopes))

    async def _consent_withdrawn(
        self, uow: UnitOfWork, event: CloudEvent[ConsentWithdrawn], _: Delivery
    ) -> None:
        consent = await uow.session.get(self.consents, event.data.consent_id)
        if consent is None:
            raise NotReadyYet(f"consent {event.data.consent_id} is not recorded here yet")
        consent.withdrawn_on = event.data.on
        await uow.session.flush()

    async def _screened(self, uow: UnitOfWork, event: CloudEvent[ClientScreened], _: Delivery) -> None:
        data = event.data
        await _client_known(uow.session, self.clients, data.client_id)
        risk, recommendation = data.overall_risk.value, data.recommendation.value
        values = _values(self.screenings, data, overall_risk=risk, recommendation=recommendation)
        await _insert_once(uow.session, self.screenings, values)

    async def _agent_registered(
        self, uow: UnitOfWork, event: CloudEvent[AgentRegistered], _: Delivery
    ) -> None:
        assert self.agents is not None
        await _insert_once(uow.session, self.agents, _values(self.agents, event.data, active=True))

    async def _agent_deactivated(
        self, uow: UnitOfWork, event: CloudEvent[AgentDeactivated], _: Delivery
    ) -> None:
        assert self.agents is not None
        agent = await uow.session.get(self.agents, event.data.agent_id)
        if agent is None:
            raise NotReadyYet(f"agent {event.data.agent_id} is not registered here yet")
        agent.active = False


R = TypeVar("R", bound=KnownReferral)


@dataclass(frozen=True)
class ReferralReadModel(Generic[R]):
    """Referral's events applied to one service's referral class::

        REFERRALS = read_model.ReferralReadModel(referrals=KnownReferral, clients=KnownClient)

    - ``ReferredToClinic`` adds the referral (once) with every event field its table has a
      column for (``unit_id`` if it has one);
    - ``ReferralClosed`` sets ``closed_on``, and ``outcome`` and ``back_referral`` where the table
      has them, the first time only (a referral closes once); a close before its referral
      raises :class:`NotReadyYet`.

    ``clients`` is optional: given, a referral of a client not registered here yet is retried
    (rehab's referral rows reference its clients); outreach, which owns the clients, gives none.
    """

    referrals: type[R]
    clients: type[KnownClient] | None = None
    _extra: Mapping[type[Event], EventHandler] = field(default_factory=dict)

    async def referral(self, session: AsyncSession, referral_id: UUID) -> R:
        """The referral, or :class:`NotReadyYet` if it has not arrived yet."""
        referral = await session.get(self.referrals, referral_id)
        if referral is None:
            raise NotReadyYet(f"referral {referral_id} is not known here yet")
        return referral

    def then(self, extra: Mapping[type[Event], EventHandler]) -> ReferralReadModel[R]:
        """The same read model, running a service's own ``extra`` handler after the read model
        has applied an event (rehab pauses the referred client's enrolment, and resumes it)."""
        return ReferralReadModel(self.referrals, self.clients, extra)

    def handlers(self) -> dict[type[Event], EventHandler]:
        """The consumer's handler table for referral's events."""
        table: dict[type[Event], EventHandler] = {
            ReferredToClinic: self._referred,
            ReferralClosed: self._closed,
        }
        for kind, extra in self._extra.items():
            table[kind] = _chain(table.get(kind), extra)
        return table

    async def _referred(self, uow: UnitOfWork, event: CloudEvent[ReferredToClinic], _: Delivery) -> None:
        data = event.data
        if self.clients is not None:
            await _client_known(uow.session, self.clients, data.client_id)
        await _insert_once(uow.session, self.referrals, _values(self.referrals, data))

    async def _closed(self, uow: UnitOfWork, event: CloudEvent[ReferralClosed], _: Delivery) -> None:
        data = event.data
        referral = await self.referral(uow.session, data.referral_id)
        if referral.closed_on is not None:
            return
        closing = {"closed_on": data.on, "outcome": data.outcome.value, "back_referral": data.back_referral}
        for name in _columns(self.referrals) & closing.keys():
            setattr(referral, name, closing[name])


def _chain(first: EventHandler | None, then: EventHandler) -> EventHandler:
    if first is None:
        return then

    async def both(uow: UnitOfWork, event: CloudEvent[Any], delivery: Delivery) -> None:
        await first(uow, event, delivery)
        await then(uow, event, delivery)

    return both
