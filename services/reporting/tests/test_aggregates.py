"""The monthly AggregateReported: published when a month closes, again with corrected figures
when a late event changes it, small counts suppressed with no null that can be worked out.

The reporting app runs on a real store (SQLite and PostgreSQL) with a manual clock and NATS down:
events are applied as the projection's consumer applies them, and the aggregates wait in the
outbox, where the tests read them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from test_suppression_solver import pinned_cells

from pulih.contracts import CloudEvent, Event, new_event, parse_event
from pulih.contracts.events.outreach import (
    AgentRegistered,
    ClientRegistered,
    ClientScreened,
    SubstanceResult,
    UnitEstablished,
)
from pulih.contracts.events.rehab import ClientEnrolled, SessionHeld
from pulih.kit.clock import ManualClock
from pulih.kit.outbox import outbox_table
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import service_app
from pulih.reporting import indicators, phases, projection
from pulih.reporting.app import build
from pulih.reporting.status import reporting_status
from pulih.reporting.store import LIVE, published_aggregates

D = date
UNIT = uuid.UUID("00000000-0000-7000-8000-0000000000b1")
AGENT = uuid.UUID("00000000-0000-7000-8000-0000000000b2")


@dataclass(frozen=True)
class Delivery:
    """What the batch consumer hands the projection."""

    event: CloudEvent[Any]
    stream_seq: int


@dataclass
class Regency:
    """The reporting app, its clock, and the stream it has been fed so far."""

    app: FastAPI
    seq: int = 0
    enrolments: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state.runtime
        return runtime

    @property
    def clock(self) -> ManualClock:
        assert isinstance(self.runtime.clock, ManualClock)
        return self.runtime.clock

    async def feed(self, *events: Event) -> None:
        """Apply ``events`` as one batch of the projection's consumer: tables, cells, phases."""
        deliveries = []
        for data in events:
            self.seq += 1
            deliveries.append(Delivery(new_event(data, regency=self.runtime.settings.regency), self.seq))
        today, regency = self.clock.today(), self.runtime.settings.regency
        async with self.runtime.unit_of_work() as uow:
            touched = await projection.apply_batch(uow.session, LIVE, deliveries, timezone="Asia/Jakarta")
            await indicators.refresh(uow.session, LIVE, touched, today=today, regency=regency)
            await phases.note_changed(uow.session, LIVE, touched.earliest)

    async def publish(self) -> int:
        """One run of the job."""
        return await self.runtime.jobs["publish-aggregates"].run_once(self.runtime)

    async def move_to(self, day: date) -> None:
        """Move the clock (which wakes the job) and wait for a run of the job on that day."""
        self.clock.set(day)
        await self.publish()

    async def aggregates(self) -> list[tuple[str, dict[str, Any]]]:
        """(subject, data) of every AggregateReported in the outbox, in order."""
        async with self.runtime.database.transaction() as session:
            rows = await session.execute(
                select(outbox_table.c.subject, outbox_table.c.payload).order_by(outbox_table.c.seq)
            )
            return [(subject, parse_event(payload).data.model_dump(mode="json")) for subject, payload in rows]

    async def recorded(self) -> list[dict[str, Any]]:
        """Every ``published_aggregates`` row, by period and revision."""
        t = published_aggregates
        async with self.runtime.database.transaction() as session:
            rows = await session.execute(select(t).order_by(t.c.period, t.c.revision))
            return [dict(row._mapping) for row in rows]

    def enrol(self, client: uuid.UUID, on: date) -> ClientEnrolled:
        self.enrolments[client] = uuid.uuid4()
        return ClientEnrolled(
            enrollment_id=self.enrolments[client],
            client_id=client,
            unit_id=UNIT,
            agent_id=AGENT,
            enrolled_on=on,
            programme="ibm-16w-2021",
            planned_end_on=on + timedelta(weeks=16),
        )

    def session(self, client: uuid.UUID, on: date, *, attended: bool = True) -> SessionHeld:
        return SessionHeld(
            session_id=uuid.uuid4(),
            enrollment_id=self.enrolments[client],
            client_id=client,
            unit_id=UNIT,
            agent_id=AGENT,
            held_on=on,
            kind="konseling",
            attended=attended,
            minutes=45,
        )


def registered(client: uuid.UUID, on: date) -> ClientRegistered:
    return ClientRegistered(
        client_id=client, unit_id=UNIT, registered_on=on, sex="m", age_band="25_34", came_through="outreach"
    )


def screened(client: uuid.UUID, on: date, risk: str) -> ClientScreened:
    score = {"low": 2, "moderate": 10, "high": 30}[risk]
    return ClientScreened(
        screening_id=uuid.uuid4(),
        client_id=client,
        unit_id=UNIT,
        agent_id=AGENT,
        screened_on=on,
        instrument="assist_v3",
        substances=[SubstanceResult(substance="cannabis", score=score, risk=risk)],
        injected_last_3_months=False,
        overall_risk=risk,
        recommendation={"low": "advice", "moderate": "ibm_programme", "high": "referral"}[risk],
    )


@pytest.fixture
async def regency(tmp_path: Path, database_url: str) -> AsyncIterator[Regency]:
    async with service_app(
        build,
        tmp_path,
        database_url,
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START="2026-01-31",
        PULIH_SCHEDULER_SECONDS=3600,
    ) as (_, app):
        yield Regency(app)


async def january(regency: Regency) -> list[uuid.UUID]:
    """A unit's January: 7 clients registered and screened (2 low, 5 moderate), the 5 moderate
    ones enrolled, 6 sessions held of which 5 attended."""
    clients = [uuid.UUID(int=0xC0 + i) for i in range(7)]
    events: list[Event] = [
        UnitEstablished(
            unit_id=UNIT, name="Unit Mawar", village_code="3301012001", established_on=D(2026, 1, 5)
        ),
        AgentRegistered(agent_id=AGENT, unit_id=UNIT, trained_on=D(2026, 1, 5)),
    ]
    for i, client in enumerate(clients):
        events += [
            registered(client, D(2026, 1, 6)),
            screened(client, D(2026, 1, 7), "low" if i < 2 else "moderate"),
        ]
    events += [regency.enrol(client, D(2026, 1, 10)) for client in clients[2:]]
    events += [regency.session(client, D(2026, 1, 17)) for client in clients[2:]]
    events.append(regency.session(clients[2], D(2026, 1, 24), attended=False))
    await regency.feed(*events)
    return clients


def assert_nothing_pinned(indicators: dict[str, int | None], truth_cap: int = 40) -> None:
    assert pinned_cells(indicators, cap=truth_cap) == {}


async def test_nothing_is_published_while_the_month_runs(regency: Regency) -> None:
    await january(regency)
    assert await regency.publish() == 0
    assert await regency.aggregates() == []


async def test_a_closed_month_is_published_once_with_small_counts_hidden(regency: Regency) -> None:
    await january(regency)
    await regency.move_to(D(2026, 2, 1))
    [(subject, data)] = await regency.aggregates()
    assert subject == "ibm.3301.reporting.aggregate_reported"
    assert data["period"] == "2026-01" and data["revision"] == 1 and data["regency"] == "3301"
    assert data["suppressed_below"] == 5
    shown = data["indicators"]
    assert shown["clients_registered"] == 7
    assert shown["clients_enrolled"] == 5
    assert shown["clients_screened"] == 7
    assert shown["screened_low"] is None  # 2
    assert shown["screened_moderate"] is None  # 5, hidden so the 2 cannot be worked out
    assert shown["screened_high"] == 0
    assert shown["sessions_held"] == 6 and shown["sessions_attended"] == 5
    assert shown["clients_active"] == 5
    assert data["units_by_phase"] == {"rintisan": 1, "tumbuh": 0, "berkembang": 0, "tangguh": 0, "prima": 0}
    assert_nothing_pinned(shown)
    [row] = await regency.recorded()
    assert (row["period"], row["revision"], row["indicators"]) == ("2026-01", 1, shown)
    assert await regency.publish() == 0  # nothing changed: nothing new


async def test_a_late_session_republishes_its_month_with_corrected_figures(regency: Regency) -> None:
    clients = await january(regency)
    await regency.move_to(D(2026, 2, 3))
    [(_, first)] = await regency.aggregates()
    # A session held on 28 January reaches reporting on 3 February.
    await regency.feed(regency.session(clients[3], D(2026, 1, 28)))
    assert await regency.publish() == 1
    [_, (_, second)] = await regency.aggregates()
    assert second["period"] == "2026-01" and second["revision"] == 2
    assert second["indicators"]["sessions_held"] == 7
    assert second["indicators"]["sessions_attended"] == 6
    assert second["generated_at"] >= first["generated_at"]
    assert_nothing_pinned(second["indicators"])
    assert [(r["period"], r["revision"]) for r in await regency.recorded()] == [
        ("2026-01", 1),
        ("2026-01", 2),
    ]
    assert await regency.publish() == 0


async def test_a_cell_hidden_in_a_young_month_is_published_once_it_has_grown(regency: Regency) -> None:
    await january(regency)
    await regency.move_to(D(2026, 2, 3))
    [(_, first)] = await regency.aggregates()
    assert first["indicators"]["screened_low"] is None and first["indicators"]["screened_moderate"] is None
    # Four more clients screened low in January, synced on 3 February: 6 low, 5 moderate.
    late = [uuid.UUID(int=0xD0 + i) for i in range(4)]
    await regency.feed(
        *[e for c in late for e in (registered(c, D(2026, 1, 20)), screened(c, D(2026, 1, 21), "low"))]
    )
    assert await regency.publish() == 1
    [_, (_, second)] = await regency.aggregates()
    shown = second["indicators"]
    assert (second["revision"], shown["clients_screened"]) == (2, 11)
    assert (shown["screened_low"], shown["screened_moderate"], shown["screened_high"]) == (6, 5, 0)


async def test_a_change_only_in_hidden_cells_publishes_no_revision(regency: Regency) -> None:
    clients = await january(regency)
    await regency.move_to(D(2026, 2, 3))
    [(_, first)] = await regency.aggregates()
    [before] = await regency.recorded()
    # A low-risk client screened again on 29 January, moderate now: 1 low, 6 moderate, 7 in
    # all. Published, it would be January's revision 1 again, saying that a hidden count moved.
    await regency.feed(screened(clients[0], D(2026, 1, 29), "moderate"))
    assert await regency.publish() == 0
    assert [data for _, data in await regency.aggregates()] == [first]
    [after] = await regency.recorded()
    assert after["revision"] == 1 and after["indicators"] == before["indicators"]
    assert after["true_digest"] != before["true_digest"]  # the new figures are not tried again
    # A change that shows is published, as revision 2.
    await regency.feed(regency.session(clients[3], D(2026, 1, 28)))
    assert await regency.publish() == 1
    [_, (_, second)] = await regency.aggregates()
    assert second["revision"] == 2 and second["indicators"]["sessions_held"] == 7
    assert (second["indicators"]["screened_low"], second["indicators"]["screened_moderate"]) == (None, None)
    assert await regency.publish() == 0


async def test_a_month_no_event_arrived_in_is_published_with_its_stocks_and_phases(regency: Regency) -> None:
    await january(regency)
    await regency.move_to(D(2026, 3, 2))  # February passed without an event
    published = {data["period"]: data for _, data in await regency.aggregates()}
    assert sorted(published) == ["2026-01", "2026-02"]
    february = published["2026-02"]
    assert february["indicators"]["clients_active"] == 5  # counted on 28 February
    assert february["indicators"]["sessions_held"] == 0
    assert february["units_by_phase"]["rintisan"] == 1


async def test_the_threshold_comes_from_the_programme_file(tmp_path: Path, database_url: str) -> None:
    programme = tmp_path / "programme.toml"
    programme.write_text('programme = "ibm-16w-2021"\nversion = 2\n[reporting]\nsuppressed_below = 6\n')
    async with service_app(
        build,
        tmp_path,
        database_url,
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START="2026-01-31",
        PULIH_SCHEDULER_SECONDS=3600,
        PULIH_PROGRAMME_FILE=programme,
    ) as (_, app):
        regency = Regency(app)
        await january(regency)
        await regency.move_to(D(2026, 2, 1))
        [(_, data)] = await regency.aggregates()
    assert data["suppressed_below"] == 6
    assert data["indicators"]["clients_registered"] == 7 and data["indicators"]["clients_enrolled"] is None
    assert_nothing_pinned(data["indicators"])


async def test_status_says_how_far_the_projection_is_and_what_was_published(regency: Regency) -> None:
    empty = await reporting_status(regency.runtime.database, stream_last_seq=12)
    assert (empty["applied_seq"], empty["lag"], empty["last_event"]) == (0, 12, None)
    assert empty["aggregates"] == {"months": 0, "revisions": 0, "latest": None, "waiting_in_outbox": 0}

    clients = await january(regency)
    await regency.move_to(D(2026, 2, 3))
    await regency.feed(regency.session(clients[3], D(2026, 1, 28)))
    await regency.publish()
    status = await reporting_status(regency.runtime.database, stream_last_seq=regency.seq + 3)
    assert status["applied_events"] == regency.seq
    assert (status["applied_seq"], status["lag"]) == (regency.seq, 3)
    assert status["last_event"]["id"] is not None
    assert status["phases_assessed_to"] == "2026-01"  # closed months only (finding 4)
    assert status["aggregates"]["months"] == 1 and status["aggregates"]["revisions"] == 2
    assert status["aggregates"]["latest"]["period"] == "2026-01"
    assert status["aggregates"]["latest"]["revision"] == 2
    assert status["aggregates"]["waiting_in_outbox"] == 2  # NATS is down in these tests
    assert (await reporting_status(regency.runtime.database))["lag"] is None
