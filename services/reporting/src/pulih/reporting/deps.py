"""Reporting's own dependencies (placeholder until the projection helper lands)."""

from __future__ import annotations

from dataclasses import dataclass

from pulih.kit.settings import Settings


@dataclass(frozen=True)
class ReportingDeps:
    """The phase criteria and the suppression threshold, from the programme file."""

    @classmethod
    def build(cls, settings: Settings) -> ReportingDeps:
        return cls()

    async def aclose(self) -> None:
        """Nothing to release."""
