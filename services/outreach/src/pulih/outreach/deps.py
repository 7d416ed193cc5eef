"""Outreach's own dependencies, built once at start: the identity vault and the screening path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from pulih.kit.deps import RuntimeDep
from pulih.kit.programme import load_programme
from pulih.kit.settings import Settings
from pulih.outreach.domain.assist import ScreeningPath
from pulih.outreach.vault import IdentityVault


@dataclass(frozen=True)
class OutreachDeps:
    """The vault that seals identities, and the regency's screening path."""

    vault: IdentityVault
    screening_path: ScreeningPath

    @classmethod
    def build(cls, settings: Settings) -> OutreachDeps:
        """From the master key and the programme file; raises ValueError naming what is wrong."""
        programme = load_programme(settings.programme_file)
        try:
            path = ScreeningPath.from_programme(programme)
        except ValueError as exc:
            raise ValueError(
                f"programme file {settings.programme_file or programme['programme']}: {exc}"
            ) from exc
        return cls(IdentityVault(settings.master_key_bytes()), path)

    async def aclose(self) -> None:
        """Nothing to release."""


async def _deps(runtime: RuntimeDep) -> OutreachDeps:
    return runtime.deps_as(OutreachDeps)


Deps = Annotated[OutreachDeps, Depends(_deps)]
"""Outreach's dependencies, for a route."""
