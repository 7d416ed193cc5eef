"""Reporting's live consumer against a real nats-server, on SQLite and PostgreSQL: the events of a
random history, published to the regency stream (some twice), end up as exactly the cells a
plain fold of the same events gives, with the position at the end of the stream."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest
from reporting_histories import generate
from sqlalchemy import func, select
from test_recount import recount

from pulih.contracts import CloudEvent, stream_name, subject_for
from pulih.contracts.events.referral import ReferredToClinic
from pulih.kit.nats_server import NatsServer
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.testing import REGENCY, eventually, make_settings, serve
from pulih.reporting.app import build
from pulih.reporting.store import LIVE

pytestmark = [pytest.mark.system, pytest.mark.slow]


def _subject(event: CloudEvent[Any], clinics: dict[Any, str]) -> str:
    if event.data.service_name == "clinic":
        return subject_for(event, REGENCY, clinic_id=clinics[event.data.referral_id])
    return subject_for(event, REGENCY)


async def test_the_live_projection_of_a_stream_equals_a_plain_fold(
    tmp_path: Path, database_url: str, nats_server: NatsServer
) -> None:
    history = generate(random.Random(3), units=3, months=5, late_share=0.1, out_of_order_months=1)
    assert history.regency == REGENCY
    clinics = {
        e.data.referral_id: e.data.clinic_id for e in history.stream if isinstance(e.data, ReferredToClinic)
    }
    settings = make_settings(
        tmp_path,
        nats_url=nats_server.url,
        database_url=database_url,
        PULIH_CLOCK="manual",
        PULIH_CLOCK_START=history.today.isoformat(),
        PULIH_SCHEDULER_SECONDS=3600,
    )
    app = build(settings)
    async with serve(app):
        runtime: ServiceRuntime = app.state.runtime
        connection = await nats.connect(nats_server.url)
        try:
            js = connection.jetstream()

            async def stream_ready() -> bool:  # the service creates the stream once connected
                try:
                    await js.stream_info(stream_name(REGENCY))
                except nats.js.errors.NotFoundError:
                    return False
                return True

            await eventually(stream_ready, timeout=20)
            published: set[Any] = set()
            for index, event in enumerate(history.stream):
                # An answer its clinic published again after a refusal is a new message (it came
                # past JetStream's deduplication window): give it a message id of its own.
                message_id = f"{event.id}:{index}" if event.id in published else str(event.id)
                published.add(event.id)
                copies = 2 if index % 17 == 0 else 1  # the relay publishes again: JetStream drops it
                for _ in range(copies):
                    await js.publish(
                        _subject(event, clinics), event.to_json(), headers={"Nats-Msg-Id": message_id}
                    )
        finally:
            await connection.close()

        async def applied() -> int:
            async with runtime.database.transaction() as session:
                return int(await session.scalar(select(func.count()).select_from(LIVE.applied_events)) or 0)

        await eventually(applied, until=lambda n: n == len(published), timeout=60)

        # The last batch's recount may still be committing with it: read after one more poll.
        c = LIVE.indicator_cells

        async def cells() -> dict[tuple[str, str, str, str], int]:
            async with runtime.database.transaction() as session:
                rows = await session.execute(
                    select(c.c.level, c.c.org_id, c.c.period, c.c.indicator, c.c.value)
                )
                return {(r.level, r.org_id, r.period, r.indicator): r.value for r in rows}

        expected = recount(
            history.deliveries, today=history.today, regency=REGENCY, timezone=history.timezone
        )
        assert await eventually(cells, until=lambda found: found == expected, timeout=20) == expected

        async def position() -> int:
            async with runtime.database.transaction() as session:
                seq = await session.scalar(
                    select(LIVE.position.c.stream_seq).where(LIVE.position.c.consumer == "stream")
                )
                return int(seq or 0)

        # The last message may be an answer published again, which changes no cell.
        assert await eventually(position, until=lambda seq: seq == len(history.stream), timeout=20) == len(
            history.stream
        )
        async with runtime.database.transaction() as session:
            phases = await session.scalar(select(func.count()).select_from(LIVE.unit_phases))
        assert phases and phases > 0
