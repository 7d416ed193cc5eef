"""What reporting subscribes to (placeholder until the batch consumer lands)."""

from __future__ import annotations

from faststream.nats import NatsBroker

from pulih.kit.runtime import ServiceRuntime


def subscribe(runtime: ServiceRuntime, broker: NatsBroker) -> None:
    """Register reporting's consumer of the whole regency stream."""
