"""The read model of referral's events, written once in the kit: applied to a service's own tables
(here two tiny ones on SQLite), the columns each has, retried when early, replays changing
nothing, and a service's own reaction chained after it."""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import ForeignKey, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pulih.contracts import CloudEvent, Event
from pulih.contracts.codes import ReferralOutcome
from pulih.contracts.events.referral import ReferralClosed, ReferralEscalated, ReferredToClinic
from pulih.kit import read_model
from pulih.kit.consumers import Delivery, EventHandler, NotReadyYet
from pulih.kit.database import Database, kit_metadata
from pulih.kit.emitter import Emitter
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import apply_events, make_settings
from pulih.kit.unit_of_work import UnitOfWork

CLINIC = "klinik-pratama-cilacap"
REFERRED_ON = date(2026, 3, 2)


class Base(DeclarativeBase):
    """A tiny service's tables: its clients and two kinds of referral table."""


class Client(read_model.KnownClient, Base):
    __tablename__ = "clients"


class ShortReferral(read_model.KnownReferral, Base):
    """Like outreach's: the shared columns only."""

    __tablename__ = "short_referrals"


class FullReferral(read_model.KnownReferralInFull, Base):
    """Like rehab's: the unit and the outcome too, and a foreign key to the clients."""

    __tablename__ = "full_referrals"
    client_id: Mapped[UUID] = mapped_column(ForeignKey("clients.client_id"), index=True)


SHORT = read_model.ReferralReadModel(referrals=ShortReferral)
FULL = read_model.ReferralReadModel(referrals=FullReferral, clients=Client)


@pytest.fixture
async def runtime(tmp_path: Path) -> ServiceRuntime:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
        await conn.run_sync(Base.metadata.create_all)
    return ServiceRuntime("rehab", make_settings(tmp_path, nats_url="nats://x"), database, Emitter("3301"))


def referred(client_id: UUID, referral_id: UUID) -> ReferredToClinic:
    return ReferredToClinic.model_validate(
        {
            "referral_id": referral_id,
            "client_id": client_id,
            "unit_id": uuid.UUID(int=7),
            "clinic_id": CLINIC,
            "service": "rawat_jalan",
            "reason": "high_risk",
            "urgency": "routine",
            "referred_on": REFERRED_ON,
            "respond_by": date(2026, 3, 5),
            "consent_id": uuid.uuid4(),
        }
    )


def closed(
    referral_id: UUID, on: date, outcome: ReferralOutcome = ReferralOutcome.COMPLETED, back: bool = True
) -> ReferralClosed:
    return ReferralClosed(
        referral_id=referral_id, clinic_id=CLINIC, on=on, outcome=outcome, back_referral=back
    )


async def register(runtime: ServiceRuntime, client_id: UUID) -> None:
    async with runtime.unit_of_work() as uow:
        uow.session.add(Client(client_id=client_id, unit_id=uuid.UUID(int=7), registered_on=REFERRED_ON))


SHORT_COLUMNS = ("client_id", "clinic_id", "referred_on", "closed_on")
FULL_COLUMNS = (*SHORT_COLUMNS, "unit_id", "outcome", "back_referral")


async def rows(runtime: ServiceRuntime, model: type[Any]) -> list[tuple[Any, ...]]:
    """Every row of ``model``: its columns but the id, in the order of ``FULL_COLUMNS``."""
    columns = [c for c in FULL_COLUMNS if c in model.__table__.columns]
    async with runtime.database.sessions() as s:
        found = (await s.scalars(select(model))).all()
    return [tuple(getattr(r, c) for c in columns) for r in found]


async def test_a_referral_takes_every_event_field_its_table_has_a_column_for(runtime: ServiceRuntime) -> None:
    client_id = uuid.uuid4()
    await register(runtime, client_id)
    await apply_events(runtime, SHORT.handlers(), referred(client_id, uuid.uuid4()))
    await apply_events(runtime, FULL.handlers(), referred(client_id, uuid.uuid4()))
    assert await rows(runtime, ShortReferral) == [(client_id, CLINIC, REFERRED_ON, None)]
    assert await rows(runtime, FullReferral) == [
        (client_id, CLINIC, REFERRED_ON, None, uuid.UUID(int=7), None, None)
    ]


async def test_a_replayed_referral_adds_no_second_row(runtime: ServiceRuntime) -> None:
    client_id, referral_id = uuid.uuid4(), uuid.uuid4()
    await apply_events(runtime, SHORT.handlers(), *[referred(client_id, referral_id)] * 2)
    async with runtime.database.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(ShortReferral)) == 1


async def test_a_referral_of_a_client_not_registered_yet_is_retried_when_clients_are_given(
    runtime: ServiceRuntime,
) -> None:
    client_id, referral_id = uuid.uuid4(), uuid.uuid4()
    with pytest.raises(NotReadyYet, match="not registered here yet"):
        await apply_events(runtime, FULL.handlers(), referred(client_id, referral_id))
    assert await rows(runtime, FullReferral) == []
    await register(runtime, client_id)
    await apply_events(runtime, FULL.handlers(), referred(client_id, referral_id))
    assert len(await rows(runtime, FullReferral)) == 1


async def test_a_close_before_its_referral_is_retried(runtime: ServiceRuntime) -> None:
    referral_id = uuid.uuid4()
    for model in (SHORT, FULL):
        with pytest.raises(NotReadyYet, match="not known here yet"):
            await apply_events(runtime, model.handlers(), closed(referral_id, date(2026, 3, 9)))


async def test_a_close_sets_what_the_table_has_and_only_the_first_close_counts(
    runtime: ServiceRuntime,
) -> None:
    client_id, short_id, full_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await register(runtime, client_id)
    await apply_events(runtime, SHORT.handlers(), referred(client_id, short_id))
    await apply_events(runtime, FULL.handlers(), referred(client_id, full_id))
    later = closed(full_id, date(2026, 3, 20), ReferralOutcome.DECLINED, back=False)
    await apply_events(
        runtime, SHORT.handlers(), closed(short_id, date(2026, 3, 9)), closed(short_id, date(2026, 3, 20))
    )
    await apply_events(runtime, FULL.handlers(), closed(full_id, date(2026, 3, 9)), later)
    assert await rows(runtime, ShortReferral) == [(client_id, CLINIC, REFERRED_ON, date(2026, 3, 9))]
    assert await rows(runtime, FullReferral) == [
        (client_id, CLINIC, REFERRED_ON, date(2026, 3, 9), uuid.UUID(int=7), "completed", True)
    ]


async def test_then_runs_the_services_own_reaction_after_the_read_model(runtime: ServiceRuntime) -> None:
    seen: list[tuple[str, Any]] = []

    async def on_referred(uow: UnitOfWork, event: CloudEvent[ReferredToClinic], _: Delivery) -> None:
        referral = await FULL.referral(uow.session, event.data.referral_id)
        seen.append(("referred", referral.unit_id))

    async def on_closed(uow: UnitOfWork, event: CloudEvent[ReferralClosed], _: Delivery) -> None:
        referral = await FULL.referral(uow.session, event.data.referral_id)
        seen.append(("closed", (referral.closed_on, referral.outcome)))

    async def on_escalated(uow: UnitOfWork, event: CloudEvent[ReferralEscalated], _: Delivery) -> None:
        seen.append(("escalated", event.data.on))

    extra: dict[type[Event], EventHandler] = {
        ReferredToClinic: on_referred,
        ReferralClosed: on_closed,
        ReferralEscalated: on_escalated,
    }
    table = FULL.then(extra).handlers()
    assert set(table) == {ReferredToClinic, ReferralClosed, ReferralEscalated}
    assert set(FULL.handlers()) == {ReferredToClinic, ReferralClosed}  # `then` left FULL alone
    client_id, referral_id = uuid.uuid4(), uuid.uuid4()
    await register(runtime, client_id)
    escalated = ReferralEscalated(
        referral_id=referral_id, clinic_id=CLINIC, on=date(2026, 3, 6), reason="no_response"
    )
    await apply_events(
        runtime, table, referred(client_id, referral_id), escalated, closed(referral_id, date(2026, 3, 9))
    )
    assert seen == [
        ("referred", uuid.UUID(int=7)),
        ("escalated", date(2026, 3, 6)),
        ("closed", (date(2026, 3, 9), "completed")),
    ]


async def test_an_early_event_runs_no_reaction(runtime: ServiceRuntime) -> None:
    ran: list[str] = []

    async def on_closed(uow: UnitOfWork, event: CloudEvent[ReferralClosed], _: Delivery) -> None:
        ran.append("closed")

    with pytest.raises(NotReadyYet):
        await apply_events(
            runtime, SHORT.then({ReferralClosed: on_closed}).handlers(), closed(uuid.uuid4(), REFERRED_ON)
        )
    assert ran == []
