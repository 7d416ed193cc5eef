"""What a running service holds: settings, store, broker, relay, emitter, clock, jobs and its
own typed dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pulih.contracts import CloudEvent
from pulih.kit.clock import Clock, SystemClock
from pulih.kit.database import Database
from pulih.kit.emitter import Emitter
from pulih.kit.settings import Settings
from pulih.kit.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from faststream.nats import NatsBroker

    from pulih.kit.batch_consumer import BatchConsumer
    from pulih.kit.outbox import OutboxRelay
    from pulih.kit.scheduler import PeriodicJob


class ServiceDeps(Protocol):
    """A service's own dependencies (programme, vault, HTTP clients…), built once at start."""

    async def aclose(self) -> None:
        """Release what the dependencies hold (connections, clients)."""


class NoDeps:
    """The dependencies of a service that needs none of its own."""

    async def aclose(self) -> None:
        """Nothing to release."""


D = TypeVar("D", bound=ServiceDeps)


@dataclass
class ServiceRuntime:
    """The live parts of one service, shared by its routes, consumers and jobs."""

    name: str
    settings: Settings
    database: Database
    emitter: Emitter
    deps: ServiceDeps = field(default_factory=NoDeps)
    broker: NatsBroker | None = None
    relay: OutboxRelay | None = None
    clock: Clock = field(default_factory=SystemClock)
    jobs: dict[str, PeriodicJob] = field(default_factory=dict)
    durables: list[str] = field(default_factory=list)
    """The JetStream durable consumers this service subscribed (``<service>-<durable>``)."""
    paused_consumers: set[str] = field(default_factory=set)
    """Consumers that stopped taking messages because the store is failing (readiness reports
    them; they resume by themselves when the store answers again)."""
    batch_consumers: list[BatchConsumer] = field(default_factory=list)
    """Ordered batch consumers (:mod:`pulih.kit.batch_consumer`): they pull with nats-py
    themselves, so they start after the broker and stop before it."""

    @asynccontextmanager
    async def unit_of_work(
        self, *, caused_by: CloudEvent[Any] | None = None, correlationid: str | None = None
    ) -> AsyncIterator[UnitOfWork]:
        """One transaction: committed when the block ends, rolled back if it raises.

        ``caused_by`` is the event being applied (consumers); ``correlationid`` the request's
        (commands). A job passes neither: its run starts a new chain.
        """
        async with self.database.transaction() as session:
            if caused_by is not None:
                yield UnitOfWork.caused_by(session, self.emitter, caused_by)
            else:
                yield UnitOfWork(session, self.emitter, correlationid=correlationid)

    def deps_as(self, kind: type[D]) -> D:
        """The service's dependencies as the type it declared (a wiring mistake fails loudly)."""
        if not isinstance(self.deps, kind):
            raise TypeError(f"{self.name} runs with {type(self.deps).__name__}, not {kind.__name__}")
        return self.deps
