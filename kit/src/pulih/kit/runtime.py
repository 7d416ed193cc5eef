"""What a running service holds: settings, store, broker, relay and emitter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pulih.kit.database import Database
from pulih.kit.emitter import Emitter
from pulih.kit.settings import Settings

if TYPE_CHECKING:
    from faststream.nats import NatsBroker

    from pulih.kit.outbox import OutboxRelay


@dataclass
class ServiceRuntime:
    """The live parts of one service, shared by its routes and consumers."""

    name: str
    settings: Settings
    database: Database
    emitter: Emitter
    broker: NatsBroker | None = None
    relay: OutboxRelay | None = None
    extras: dict[str, object] = field(default_factory=dict)
