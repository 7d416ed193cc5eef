"""The national view's own dependencies, built once at start: its directory of regencies (the
federation list of ``PULIH_FEDERATION_FILE``, read once; a bad file stops the service at start)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends

from pulih.kit.deps import RuntimeDep
from pulih.kit.settings import Settings
from pulih.reporting.national.directory import Directory


@dataclass(frozen=True)
class NationalDeps:
    """The regencies the national office expects, and their names."""

    directory: Directory = field(default_factory=Directory)

    @classmethod
    def build(cls, settings: Settings) -> NationalDeps:
        """From ``PULIH_FEDERATION_FILE`` (no file: the regencies received, by code)."""
        return cls(Directory.load(settings.federation_file))

    async def aclose(self) -> None:
        """Nothing to release."""


def _directory(runtime: RuntimeDep) -> Directory:
    held = getattr(runtime.deps, "directory", None)
    return held if isinstance(held, Directory) else Directory.load(runtime.settings.federation_file)


DirectoryDep = Annotated[Directory, Depends(_directory)]
"""The national view's directory, for a route."""
