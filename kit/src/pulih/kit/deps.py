"""FastAPI dependency aliases shared by every service's routes.

A dependency is ``async def`` unless it blocks: FastAPI runs a plain ``def`` in its thread pool,
two thread hops per request for what is an attribute lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pulih.kit.runtime import ServiceRuntime


async def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(_runtime)]
"""The running service's store, broker and settings."""
