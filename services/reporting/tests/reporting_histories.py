"""Random valid histories of a regency, as a stream and as a consumer receives it.

:func:`generate` makes the events of several units over several months from a seeded
``random.Random``: units, agents, outreach, clients screened (sometimes twice on one day),
enrolled, their sessions, WHOQOL assessments (some without ``assessed_on``, dated by the
regency's day of their ``time``, which may be the next UTC day), phases, discharges, dropouts
reversed by a late session, follow-ups, and referrals in every state (accepted, declined,
unanswered and escalated, cancelled, completed with or without a back-referral). Every event is
built with the contract models, so it is valid.

The stream order is causal (an event never precedes what it builds on) but not chronological:
some events sync days later (*late events*), and some unit-months sync a month late (*out of order
months*). What a consumer receives (:attr:`History.deliveries`) also has *duplicates* (the same
event published again under a new stream sequence) and *redeliveries* (one message delivered
again). :func:`histories` is the hypothesis strategy; :func:`split` cuts deliveries into batches.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hypothesis import strategies as st
from reporting_stories import Story, new_id, unit_story

from pulih.contracts import CloudEvent, Event, new_event
from pulih.contracts.events.outreach import UnitEstablished
from pulih.contracts.events.rehab import QualityOfLifeAssessed

REGENCY = "3301"
TIMEZONE = "Asia/Jakarta"


@dataclass(frozen=True)
class Delivery:
    """One message as a consumer receives it (the shape of the kit's ``Received``)."""

    event: CloudEvent[Any]
    stream_seq: int
    subject: str = ""
    attempt: int = 1


@dataclass
class History:
    """A regency's stream up to ``today`` and the deliveries a consumer got from it."""

    today: date
    stream: list[CloudEvent[Any]]
    """Each event once, in stream order."""
    deliveries: list[Delivery]
    """The stream with duplicates (new sequence) and redeliveries (same sequence)."""
    regency: str = REGENCY
    timezone: str = TIMEZONE


def generate(
    rng: random.Random,
    *,
    units: int = 3,
    months: int = 4,
    start: date = date(2025, 10, 1),
    late_share: float = 0.08,
    out_of_order_months: int = 1,
    duplicate_share: float = 0.03,
    redelivery_share: float = 0.03,
) -> History:
    """A valid history of ``units`` units over about ``months`` months from ``start``; today is
    a day inside the last month (its periods are still running)."""
    today = start + timedelta(days=30 * (months - 1) + rng.randint(5, 25))
    story = Story(rng, today, late_share)
    for _ in range(units):
        unit_story(story, start)
    # A unit-month whose device was offline: it syncs a month later (what builds on it waits).
    offline = {(rng.randrange(units), rng.randrange(months)) for _ in range(out_of_order_months)}
    unit_of: dict[int, int] = {}
    synced: list[date] = []
    founded = 0
    for index, (data, day, parents, delay) in enumerate(story.items):
        if isinstance(data, UnitEstablished):
            founded += 1
        unit_of[index] = founded - 1
        month_index = (day.year - start.year) * 12 + day.month - start.month
        if (unit_of[index], month_index) in offline:
            delay += 31
        synced.append(max([day + timedelta(days=delay)] + [synced[p] for p in parents]))
    order = sorted(range(len(story.items)), key=lambda i: (synced[i], i))
    stream: list[CloudEvent[Any]] = []
    for rank, index in enumerate(order):
        data, day, _, _ = story.items[index]
        if synced[index] > today:
            continue  # not synced yet: it has not reached the stream
        stream.append(
            new_event(
                data,
                regency=REGENCY,
                id=new_id(rng),
                time=_time_of(rng, data, day, synced[index], today, rank),
            )
        )
    return History(
        today=today, stream=stream, deliveries=_deliveries(rng, stream, duplicate_share, redelivery_share)
    )


def _time_of(rng: random.Random, data: Event, day: date, synced: date, today: date, rank: int) -> datetime:
    undated = isinstance(data, QualityOfLifeAssessed) and data.assessed_on is None
    if undated and synced < today and rng.random() < 0.5:
        # Without assessed_on its day is the regency's day of ``time``: 20:00 UTC is already the
        # next day in Jakarta (never past today).
        return datetime.combine(synced, time(20, 0), tzinfo=UTC)
    return datetime.combine(synced, time(3, 0), tzinfo=UTC) + timedelta(seconds=rank % 3600)


def _deliveries(
    rng: random.Random, stream: Sequence[CloudEvent[Any]], duplicate_share: float, redelivery_share: float
) -> list[Delivery]:
    messages: list[CloudEvent[Any]] = []
    for event in stream:
        messages.append(event)
        if rng.random() < duplicate_share:  # published again later, past the dedup window
            messages.insert(rng.randint(len(messages), len(messages) + 5), event)
    deliveries = [Delivery(event, seq) for seq, event in enumerate(messages, start=1)]
    received: list[Delivery] = []
    for delivery in deliveries:
        received.append(delivery)
        if rng.random() < redelivery_share:  # delivered again after an ack was lost
            received.append(Delivery(delivery.event, delivery.stream_seq, attempt=2))
    return received


def split(items: Sequence[Any], rng: random.Random, batches: int) -> list[list[Any]]:
    """``items`` cut into ``batches`` consecutive batches at random boundaries (some may be empty)."""
    cuts = sorted(rng.randint(0, len(items)) for _ in range(batches - 1))
    bounds = [0, *cuts, len(items)]
    return [list(items[a:b]) for a, b in itertools.pairwise(bounds)]


@st.composite
def histories(draw: st.DrawFn, *, max_units: int = 4, max_months: int = 5) -> History:
    """Hypothesis: a random valid history (units, months, lateness and repeats drawn too)."""
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    return generate(
        random.Random(seed),
        units=draw(st.integers(min_value=1, max_value=max_units)),
        months=draw(st.integers(min_value=1, max_value=max_months)),
        late_share=draw(st.sampled_from([0.0, 0.05, 0.2])),
        out_of_order_months=draw(st.integers(min_value=0, max_value=2)),
        duplicate_share=draw(st.sampled_from([0.0, 0.05])),
        redelivery_share=draw(st.sampled_from([0.0, 0.05])),
    )
