"""The national view's store: the highest revision of a regency's month wins, and the totals by
regency, province and nation say how many figures were hidden (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from national_seed import aggregate

from pulih.contracts import new_event
from pulih.contracts.events.reporting import AggregateReported
from pulih.kit.database import Database
from pulih.reporting.national.directory import Directory
from pulih.reporting.national.figures import (
    NationalCell,
    last_closed_month,
    national_phases,
    national_rows,
    regency_statuses,
)
from pulih.reporting.national.projection import apply_aggregates


async def feed(store: Database, *events: AggregateReported) -> int:
    async with store.transaction() as session:
        return await apply_aggregates(session, events)


async def rows(store: Database, **query: object) -> list[NationalCell]:
    async with store.sessions() as session:
        return await national_rows(session, start="2026-01", end="2026-12", **query)  # type: ignore[arg-type]


def one(cells: list[NationalCell], org_unit: str, period: str, indicator: str) -> NationalCell:
    (cell,) = [c for c in cells if (c.org_unit, c.period, c.indicator) == (org_unit, period, indicator)]
    return cell


async def test_the_highest_revision_wins_and_an_older_or_equal_one_changes_nothing(store: Database) -> None:
    assert await feed(store, aggregate("3301", "2026-09", revision=2, base=20)) == 1
    assert await feed(store, aggregate("3301", "2026-09", revision=1, base=99)) == 0
    assert await feed(store, aggregate("3301", "2026-09", revision=2, base=77)) == 0
    cells = await rows(store, level="regency", indicator="clients_screened")
    assert [(c.org_unit, c.period, c.value) for c in cells] == [("3301", "2026-09", 20)]
    assert (
        await feed(store, aggregate("3301", "2026-09", revision=3, base=30, hidden=("clients_screened",)))
        == 1
    )
    (cell,) = await rows(store, level="regency", indicator="clients_screened")
    assert (cell.value, cell.hidden, cell.reporting, cell.exact) == (0, 1, 1, False)


async def test_within_one_batch_the_highest_revision_wins_whatever_the_order(store: Database) -> None:
    assert (
        await feed(
            store,
            aggregate("3301", "2026-09", revision=3, base=30),
            aggregate("3301", "2026-09", revision=1, base=10),
            aggregate("3301", "2026-09", revision=2, base=20),
        )
        == 1
    )
    (cell,) = await rows(store, level="regency", indicator="dropouts")
    assert cell.value == 30


async def test_a_replayed_envelope_changes_nothing(store: Database) -> None:
    event = new_event(aggregate("3301", "2026-09", base=12), regency="3301")
    async with store.transaction() as session:
        assert await apply_aggregates(session, [event]) == 1
    async with store.transaction() as session:
        assert await apply_aggregates(session, [event, event]) == 0
    (cell,) = await rows(store, level="nation", indicator="dropouts")
    assert (cell.value, cell.reporting) == (12, 1)


async def test_sums_by_regency_province_and_nation_count_the_hidden_cells(store: Database) -> None:
    await feed(
        store,
        aggregate("3301", "2026-09", base=10, hidden=("dropouts",)),
        aggregate("3302", "2026-09", base=20),
        aggregate("7471", "2026-09", base=5, hidden=("dropouts", "qol_improved")),
        aggregate("3301", "2026-10", base=1),
    )
    directory = Directory(regencies={"3301": "Cilacap", "3302": "Banyumas"}, provinces={"33": "Jawa Tengah"})
    regencies = await rows(store, level="regency", indicator="dropouts", directory=directory)
    assert [(c.org_unit, c.name, c.period, c.value, c.hidden) for c in regencies] == [
        ("3301", "Cilacap", "2026-09", 0, 1),
        ("3301", "Cilacap", "2026-10", 1, 0),
        ("3302", "Banyumas", "2026-09", 20, 0),
        ("7471", "7471", "2026-09", 0, 1),
    ]
    provinces = await rows(store, level="province", directory=directory)
    central_java = one(provinces, "33", "2026-09", "dropouts")
    assert (central_java.name, central_java.value, central_java.hidden, central_java.reporting) == (
        "Jawa Tengah",
        20,
        1,
        2,
    )
    assert not central_java.exact
    assert one(provinces, "33", "2026-09", "clients_screened").exact
    assert one(provinces, "33", "2026-09", "clients_screened").value == 30
    assert one(provinces, "74", "2026-09", "qol_improved").hidden == 1
    nation = await rows(store, level="nation")
    total = one(nation, "ID", "2026-09", "dropouts")
    assert (total.name, total.value, total.hidden, total.reporting, total.exact) == (
        "Indonesia",
        20,
        2,
        3,
        False,
    )
    screened = one(nation, "ID", "2026-09", "clients_screened")
    assert (screened.value, screened.hidden, screened.exact) == (35, 0, True)
    assert one(nation, "ID", "2026-10", "clients_screened").reporting == 1
    assert len(nation) == 2 * 19
    # one org unit: a province, a regency, the regencies of a province
    assert {c.org_unit for c in await rows(store, level="province", code="74")} == {"74"}
    assert {c.org_unit for c in await rows(store, level="regency", code="3302")} == {"3302"}
    assert {c.org_unit for c in await rows(store, level="regency", code="33")} == {"3301", "3302"}


async def test_units_by_phase_add_up(store: Database) -> None:
    await feed(
        store,
        aggregate("3301", "2026-09", phases={"rintisan": 2, "prima": 1}),
        aggregate("3302", "2026-09", phases={"rintisan": 3, "tumbuh": 4}),
        aggregate("3302", "2026-09", revision=2, phases={"rintisan": 1, "tumbuh": 6}),
    )
    async with store.sessions() as session:
        nation = await national_phases(session, level="nation", start="2026-09", end="2026-09")
        regencies = await national_phases(session, level="regency", start="2026-09", end="2026-09")
    assert [(c.org_unit, c.phase, c.units) for c in nation] == [
        ("ID", "rintisan", 3),
        ("ID", "tumbuh", 6),
        ("ID", "prima", 1),
    ]
    assert [(c.org_unit, c.phase, c.units) for c in regencies] == [
        ("3301", "rintisan", 2),
        ("3301", "prima", 1),
        ("3302", "rintisan", 1),
        ("3302", "tumbuh", 6),
    ]


async def test_silent_regencies_are_the_expected_or_known_without_the_last_closed_month(
    store: Database,
) -> None:
    await feed(
        store,
        aggregate("3301", "2026-10", revision=2),
        aggregate("3302", "2026-09"),
        aggregate("7471", "2026-10"),
    )
    directory = Directory(regencies={"3301": "Cilacap", "3302": "Banyumas", "3303": "Purbalingga"})
    closed = last_closed_month(date(2026, 11, 3))
    assert closed == "2026-10"
    assert last_closed_month(date(2027, 1, 1)) == "2026-12"
    async with store.sessions() as session:
        statuses = await regency_statuses(session, last_closed_month=closed, directory=directory)
    assert [(s.code, s.name, s.last_period, s.revision, s.silent) for s in statuses] == [
        ("3301", "Cilacap", "2026-10", 2, False),
        ("3302", "Banyumas", "2026-09", 1, True),
        ("3303", "Purbalingga", None, None, True),
        ("7471", "7471", "2026-10", 1, False),
    ]
    assert statuses[0].province == "33" and statuses[0].last_received_at is not None


async def test_when_an_aggregate_arrived_is_the_same_instant_read_back(store: Database) -> None:
    """Given in any offset, read back as the same instant in UTC (SQLite keeps no offset)."""
    arrived = datetime(2026, 11, 1, 8, 30, tzinfo=timezone(timedelta(hours=7)))
    async with store.transaction() as session:
        await apply_aggregates(session, [aggregate("3301", "2026-10")], received_at=arrived)
    async with store.sessions() as session:
        (status,) = await regency_statuses(session, last_closed_month="2026-10")
    assert status.last_received_at == arrived
    assert status.last_received_at is not None and status.last_received_at.utcoffset() == timedelta(0)


def test_an_aggregate_under_another_regencys_subject_or_link_is_refused_as_forged() -> None:
    from pulih.kit.batch_consumer import Received
    from pulih.kit.consumers import Rejected
    from pulih.reporting.national.consumers import arrival_of
    from pulih.reporting.national.provenance import SOURCE_HEADER, source_name

    def through(code: str) -> dict[str, str]:
        return {SOURCE_HEADER: f"{source_name(code)} 7 ibm.{code}.reporting.aggregate_reported > x"}

    subject = "ibm.3301.reporting.aggregate_reported"
    own = new_event(aggregate("3301", "2026-09"), regency="3301")
    assert arrival_of(Received(own, 7, subject, 1, through("3301"))).key == ("3301", "2026-09")
    forged = new_event(aggregate("3302", "2026-09"), regency="3302")
    for subject_, headers in (
        (subject, through("3301")),  # another's payload under the regency's subject
        ("elsewhere", through("3302")),
        ("ibm.3302.reporting.aggregate_reported", through("3301")),  # 3301's link claiming 3302
        ("ibm.3302.reporting.aggregate_reported", {SOURCE_HEADER: "IBM_3302:wronghash 7 x > x"}),
        ("ibm.3302.reporting.aggregate_reported", {SOURCE_HEADER: "IBM_3302 7"}),
    ):
        with pytest.raises(Rejected) as refused:
            arrival_of(Received(forged, 8, subject_, 1, headers))
        assert refused.value.error == "forged_regency", (subject_, headers)
    with pytest.raises(Rejected) as refused:
        arrival_of(Received(forged, 9, "ibm.3302.reporting.aggregate_reported", 1))
    assert refused.value.error == "unsourced"


async def test_a_later_revision_in_a_later_batch_updates_the_province_and_nation_totals(
    store: Database,
) -> None:
    await feed(store, aggregate("3301", "2026-09", base=10), aggregate("3302", "2026-09", base=5))
    await feed(store, aggregate("3301", "2026-09", revision=2, base=1, hidden=("dropouts",)))
    for level, org_unit in (("nation", "ID"), ("province", "33")):
        cells = await rows(store, level=level)
        assert (
            one(cells, org_unit, "2026-09", "sessions_held").value,
            one(cells, org_unit, "2026-09", "sessions_held").reporting,
        ) == (6, 2)
        dropouts = one(cells, org_unit, "2026-09", "dropouts")
        assert (dropouts.value, dropouts.hidden, dropouts.exact) == (5, 1, False)
    async with store.sessions() as session:
        phases = await national_phases(session, level="province", start="2026-09", end="2026-09")
    assert {(c.phase, c.units) for c in phases} == {
        (p, 2) for p in ("rintisan", "tumbuh", "berkembang", "tangguh", "prima")
    }
