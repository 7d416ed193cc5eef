"""Referral's own dependencies, built once at start and closed at shutdown: the clinics'
response times (programme file) and the HTTP client to outreach, which keeps identities."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import httpx
from fastapi import Depends

from pulih.kit.deps import RuntimeDep
from pulih.kit.programme import load_programme
from pulih.kit.settings import Settings
from pulih.referral.domain.response_times import ResponseTimes

OUTREACH_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class ReferralDeps:
    """How long clinics have to answer, and the client that asks outreach for identities."""

    response_times: ResponseTimes
    outreach: httpx.AsyncClient

    @classmethod
    def build(cls, settings: Settings) -> ReferralDeps:
        """From the programme file and ``PULIH_OUTREACH_URL``; a ValueError names the file."""
        programme = load_programme(settings.programme_file)
        try:
            times = ResponseTimes.from_programme(programme)
        except ValueError as exc:
            source = settings.programme_file or programme["programme"]
            raise ValueError(f"programme file {source}: {exc}") from exc
        return cls(times, httpx.AsyncClient(base_url=settings.outreach_url, timeout=OUTREACH_TIMEOUT_SECONDS))

    async def aclose(self) -> None:
        """Close the connections to outreach."""
        await self.outreach.aclose()


async def _deps(runtime: RuntimeDep) -> ReferralDeps:
    return runtime.deps_as(ReferralDeps)


Deps = Annotated[ReferralDeps, Depends(_deps)]
"""Referral's dependencies, for a route."""
