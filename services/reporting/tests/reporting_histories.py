"""Random valid histories of a regency, as a stream and as a consumer receives it.

:func:`generate` makes the events of several units over several months from a seeded
``random.Random``: units, agents, outreach, clients screened (sometimes twice on one day),
enrolled, their sessions, WHOQOL assessments (some without ``assessed_on``, dated by the
regency's day of their ``time``, which may be the next UTC day), phases, discharges, dropouts
reversed by a late session, follow-ups, and referrals in every state (accepted, declined,
unanswered and escalated, cancelled, completed with or without a back-referral). Some clinic
answers are *refused* by the referral service (``AnswerRejected`` later in the stream: an
acceptance that came early or from another clinic, a second acceptance, a decline after an
acceptance, an acceptance after a decline); an answer refused as early is sometimes published
again by its clinic after the refusal (the same event: it is applied then). Every event is built
with the contract models, so it is valid.

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
from pulih.contracts.events.referral import AnswerRejected
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
    """Each message once, in stream order: each event once, but an answer its clinic published
    again after its refusal twice (past JetStream's deduplication window)."""
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
    refused_share: float = 0.3,
) -> History:
    """A valid history of ``units`` units over about ``months`` months from ``start``; today is
    a day inside the last month (its periods are still running)."""
    today = start + timedelta(days=30 * (months - 1) + rng.randint(5, 25))
    story = Story(rng, today, late_share, refused_share)
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
    published: dict[int, CloudEvent[Any]] = {}
    for rank, index in enumerate(order):
        data, day, _, _ = story.items[index]
        if synced[index] > today:
            continue  # not synced yet: it has not reached the stream
        if index in story.refusals:  # the refused answer is in the stream already (a parent)
            answer = published[story.refusals[index]]
            data = data.model_copy(update={"answer_id": answer.id, "answer_type": answer.type})
        published[index] = new_event(
            data, regency=REGENCY, id=new_id(rng), time=_time_of(rng, data, day, synced[index], today, rank)
        )
        stream.append(published[index])
    _publish_again(rng, stream, {published[i].id for i in story.republishable if i in published})
    refused = {e.data.answer_id for e in stream if isinstance(e.data, AnswerRejected)}
    return History(
        today=today,
        stream=stream,
        deliveries=_deliveries(rng, stream, duplicate_share, redelivery_share, refused),
    )


def _publish_again(rng: random.Random, stream: list[CloudEvent[Any]], republishable: set[Any]) -> None:
    """Half the answers refused as early come again, somewhere after their refusal."""
    answers = {e.id: e for e in stream if e.id in republishable}
    refusals = [
        at
        for at, e in enumerate(stream)
        if isinstance(e.data, AnswerRejected) and e.data.answer_id in answers and rng.random() < 0.5
    ]
    for at in reversed(refusals):  # from the end: an insertion moves none of the earlier places
        stream.insert(rng.randint(at + 1, len(stream)), answers[stream[at].data.answer_id])


def _time_of(rng: random.Random, data: Event, day: date, synced: date, today: date, rank: int) -> datetime:
    undated = isinstance(data, QualityOfLifeAssessed) and data.assessed_on is None
    if undated and synced < today and rng.random() < 0.5:
        # Without assessed_on its day is the regency's day of ``time``: 20:00 UTC is already the
        # next day in Jakarta (never past today).
        return datetime.combine(synced, time(20, 0), tzinfo=UTC)
    return datetime.combine(synced, time(3, 0), tzinfo=UTC) + timedelta(seconds=rank % 3600)


def _deliveries(
    rng: random.Random,
    stream: Sequence[CloudEvent[Any]],
    duplicate_share: float,
    redelivery_share: float,
    refused: set[Any],
) -> list[Delivery]:
    messages: list[CloudEvent[Any]] = []
    for event in stream:
        messages.append(event)
        # Published again later, past the dedup window (not a refused answer: the referral
        # service would judge that copy again, and refuse it again, in a history of its own).
        if rng.random() < duplicate_share and event.id not in refused:
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
        refused_share=draw(st.sampled_from([0.0, 0.3, 0.8])),
    )
