"""What a running service holds: settings, store, broker, relay, emitter, clock and jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pulih.kit.clock import Clock, SystemClock
from pulih.kit.database import Database
from pulih.kit.emitter import Emitter
from pulih.kit.settings import Settings

if TYPE_CHECKING:
    from faststream.nats import NatsBroker

    from pulih.kit.outbox import OutboxRelay
    from pulih.kit.scheduler import PeriodicJob


@dataclass
class ServiceRuntime:
    """The live parts of one service, shared by its routes and consumers."""

    name: str
    settings: Settings
    database: Database
    emitter: Emitter
    broker: NatsBroker | None = None
    relay: OutboxRelay | None = None
    clock: Clock = field(default_factory=SystemClock)
    jobs: dict[str, PeriodicJob] = field(default_factory=dict)
    extras: dict[str, object] = field(default_factory=dict)
