"""The injectable clock and periodic jobs that time-driven rules run on."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

import pytest

from pulih.kit.clock import ManualClock, SystemClock, clock_from
from pulih.kit.database import Database
from pulih.kit.emitter import Emitter
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.scheduler import periodic
from pulih.kit.settings import DEV_JWT_SECRET
from pulih.kit.testing import eventually, make_settings


def test_a_manual_clock_stands_still_until_moved_and_tells_its_listeners() -> None:
    clock = ManualClock(date(2026, 3, 2))
    moved: list[date] = []
    clock.on_change(lambda: moved.append(clock.today()))
    assert clock.today() == date(2026, 3, 2)
    assert clock.advance(timedelta(weeks=16)) == date(2026, 6, 22)
    clock.set(date(2026, 1, 1))
    assert moved == [date(2026, 6, 22), date(2026, 1, 1)]
    assert clock.now().date() == date(2026, 1, 1)


def test_the_system_clock_gives_the_date_in_the_regency_time_zone() -> None:
    wib, wit = SystemClock("Asia/Jakarta"), SystemClock("Asia/Jayapura")
    assert wib.now().utcoffset() == timedelta(hours=7)
    assert wit.now().utcoffset() == timedelta(hours=9)


def test_an_unknown_clock_or_time_zone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown clock"):
        clock_from("sundial", "Asia/Jakarta")
    with pytest.raises(ValueError, match="time zone"):
        make_settings(tmp_path, nats_url="nats://x", PULIH_TIMEZONE="Asia/Atlantis")


def test_production_refuses_a_manual_clock(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PULIH_CLOCK=manual"):
        make_settings(
            tmp_path,
            nats_url="nats://x",
            PULIH_ENV="production",
            PULIH_JWT_SECRET=DEV_JWT_SECRET,  # make_settings' own would be refused first
            PULIH_OIDC_ISSUER="https://sso.test/realms/pulih",
            PULIH_CLOCK="manual",
        )


async def test_a_periodic_job_runs_at_once_when_the_manual_clock_moves(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, nats_url="nats://x", PULIH_CLOCK="manual")
    clock = ManualClock(date(2026, 3, 2))
    runtime = ServiceRuntime("rehab", settings, Database("sqlite+aiosqlite://"), Emitter("3301"), clock=clock)
    seen: list[date] = []

    async def job(rt: ServiceRuntime) -> int:
        seen.append(rt.clock.today())
        return 1

    task = periodic("note-the-date", job, lambda _: 3600.0)(runtime)
    try:
        await eventually(lambda: _value(len(seen)), until=lambda n: n == 1)
        clock.set(date(2026, 6, 22))  # the next tick is an hour away: only the wake can run it
        await eventually(lambda: _value(seen[-1]), until=lambda d: d == date(2026, 6, 22))
        assert runtime.jobs["note-the-date"].changed >= 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_failing_job_is_retried_at_the_next_tick(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, nats_url="nats://x")
    runtime = ServiceRuntime("rehab", settings, Database("sqlite+aiosqlite://"), Emitter("3301"))
    attempts: list[int] = []

    async def flaky(_: ServiceRuntime) -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("database briefly away")
        return 0

    task = periodic("flaky", flaky, lambda _: 0.01)(runtime)
    try:
        await eventually(lambda: _value(len(attempts)), until=lambda n: n >= 3)
        assert runtime.jobs["flaky"].failures == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _value(x: object) -> object:
    return x


async def test_a_wake_a_finished_run_started_after_finds_nothing_to_do(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, nats_url="nats://x", PULIH_CLOCK="manual")
    clock = ManualClock(date(2026, 3, 2))
    runtime = ServiceRuntime("rehab", settings, Database("sqlite+aiosqlite://"), Emitter("3301"), clock=clock)
    seen: list[date] = []

    async def job(rt: ServiceRuntime) -> int:
        seen.append(rt.clock.today())
        return 1

    task = periodic("note-the-date", job, lambda _: 3600.0)(runtime)
    periodic_job = runtime.jobs["note-the-date"]
    try:
        await eventually(lambda: _value(len(seen)), until=lambda n: n == 1)
        clock.set(date(2026, 3, 3))
        await periodic_job.run_once(runtime)  # as the clock's PUT does, before the loop wakes
        assert seen == [date(2026, 3, 2), date(2026, 3, 3)]
        assert await periodic_job.run_once(runtime, unless_covered=True) == 0  # the woken loop's
        clock.set(date(2026, 3, 4))  # a wake no run has covered yet: the loop runs it
        await eventually(lambda: _value(seen[-1]), until=lambda d: d == date(2026, 3, 4))
        assert seen.count(date(2026, 3, 3)) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
