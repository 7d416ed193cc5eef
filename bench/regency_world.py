"""What the simulated regency's stories share: planned events, the units, the randomness.

A story is a generator of :class:`Planned` events in the order they happen, each with the day it
reaches the stream (``publish_on``, never before the domain date it carries); a story may also
yield :class:`Spawn` to start another (a unit registering a client). ``generate_regency.py``
interleaves every story by ``publish_on``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from pulih.contracts import Event

DAY = timedelta(days=1)
WEEK = timedelta(days=7)
PROGRAMME = "ibm-16w-2021"


@dataclass(frozen=True, slots=True)
class Planned:
    """One event of a story and the day it reaches the stream (a clinic's answers name the
    clinic, which their subject carries)."""

    publish_on: date
    data: Event
    clinic_id: str | None = None


@dataclass(frozen=True, slots=True)
class Spawn:
    """A new story (a client's) that starts on ``publish_on``."""

    publish_on: date
    story: Iterator[Planned | Spawn]


Step = Planned | Spawn
Story = Iterator[Step]


@dataclass
class Unit:
    """An IBM unit's state that its clients' stories read: where it is and who works there."""

    unit_id: uuid.UUID
    village_code: str
    agents: list[uuid.UUID] = field(default_factory=list)


@dataclass(frozen=True)
class World:
    """What every story shares: the randomness and the last day told (the regency's yesterday)."""

    rng: random.Random
    end: date

    def uuid(self) -> uuid.UUID:
        """A random (version 4) id drawn from the story's randomness, so a seed repeats it."""
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def days(self, low: int, high: int) -> timedelta:
        """A whole number of days between ``low`` and ``high`` inclusive."""
        return timedelta(days=self.rng.randint(low, high))

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return self.rng.random() < p

    def pick(self, weighted: dict[str, int]) -> str:
        """One key of ``weighted``, drawn in proportion to its weight."""
        return self.rng.choices(tuple(weighted), tuple(weighted.values()))[0]
