"""Rehab's own dependencies, built once at start: the programme the regency runs.

The programme file is read in the lifespan, so a bad one stops rehab at start with a message
naming the file, not at the first enrolment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from pulih.kit.deps import RuntimeDep
from pulih.kit.programme import load_programme
from pulih.kit.settings import Settings
from pulih.rehab.domain.programme import Programme, programme_from


@dataclass(frozen=True)
class RehabDeps:
    """The programme (stages, weeks, session, dropout and follow-up rules) of this regency."""

    programme: Programme

    @classmethod
    def build(cls, settings: Settings) -> RehabDeps:
        """From the programme file (the default one if none is set); raises ValueError or OSError
        naming the file when it is missing or wrong."""
        data = load_programme(settings.programme_file)  # its errors name the file
        try:
            programme = programme_from(data)
        except ValueError as exc:
            raise ValueError(f"programme file {settings.programme_file or data['programme']}: {exc}") from exc
        return cls(programme)

    async def aclose(self) -> None:
        """Nothing to release."""


async def _deps(runtime: RuntimeDep) -> RehabDeps:
    return runtime.deps_as(RehabDeps)


Deps = Annotated[RehabDeps, Depends(_deps)]
"""Rehab's dependencies, for a route."""
