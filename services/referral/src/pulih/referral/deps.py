"""Referral's own dependencies, built once at start and closed at shutdown: the clinics'
response times (programme file) and the HTTP client to outreach, which keeps identities."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends

from pulih.kit.deps import RuntimeDep
from pulih.kit.programme import load_programme
from pulih.kit.settings import Settings
from pulih.referral.domain.response_times import ResponseTimes

if TYPE_CHECKING:
    import httpx

OUTREACH_TIMEOUT_SECONDS = 5.0


@dataclass
class Outreach:
    """The HTTP client that asks outreach for identities, opened at the first hand-over: httpx
    (with the command-line tools it loads) would cost the service 5 MB from start, for a request
    that comes a few times a week."""

    base_url: str
    opened: httpx.AsyncClient | None = field(default=None, repr=False)
    """The client once opened (a test gives one of its own)."""

    def client(self) -> httpx.AsyncClient:
        """The client, opened now if it is not yet."""
        if self.opened is None:
            import httpx

            self.opened = httpx.AsyncClient(base_url=self.base_url, timeout=OUTREACH_TIMEOUT_SECONDS)
        return self.opened

    @property
    def is_open(self) -> bool:
        """Whether a client is open (a hand-over opened it and the service has not stopped)."""
        return self.opened is not None and not self.opened.is_closed

    async def aclose(self) -> None:
        """Close the client's connections, if it was opened."""
        if self.opened is not None:
            await self.opened.aclose()


@dataclass(frozen=True)
class ReferralDeps:
    """How long clinics have to answer, and the client that asks outreach for identities."""

    response_times: ResponseTimes
    outreach: Outreach

    @classmethod
    def build(cls, settings: Settings) -> ReferralDeps:
        """From the programme file and ``PULIH_OUTREACH_URL``; a ValueError names the file."""
        programme = load_programme(settings.programme_file)
        try:
            times = ResponseTimes.from_programme(programme)
        except ValueError as exc:
            source = settings.programme_file or programme["programme"]
            raise ValueError(f"programme file {source}: {exc}") from exc
        return cls(times, Outreach(settings.outreach_url))

    async def aclose(self) -> None:
        """Close the connections to outreach."""
        await self.outreach.aclose()


async def _deps(runtime: RuntimeDep) -> ReferralDeps:
    return runtime.deps_as(ReferralDeps)


Deps = Annotated[ReferralDeps, Depends(_deps)]
"""Referral's dependencies, for a route."""
