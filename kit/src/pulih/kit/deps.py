"""FastAPI dependency aliases shared by every service's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pulih.kit.runtime import ServiceRuntime


def _runtime(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(_runtime)]
"""The running service's store, broker and settings."""
