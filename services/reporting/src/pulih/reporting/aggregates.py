"""The monthly ``AggregateReported`` (placeholder until its helper lands)."""

from __future__ import annotations

from pulih.kit.runtime import ServiceRuntime


async def publish_aggregates(runtime: ServiceRuntime) -> int:
    """Publish the aggregates of closed months that changed; how many were published."""
    return 0
