"""Who the national view expects, and what it calls them.

Regency names and the regencies expected to report come from the federation list
(``PULIH_FEDERATION_FILE``, ``deploy/federation.toml``); without it the national view knows only
the regencies it has received, by their codes. A province is the first two digits of a
Kemendagri regency code; its name comes from :data:`pulih.kit.federation.names.PROVINCES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NATION = "ID"
"""The org unit code of the nation."""

NATION_NAME = "Indonesia"


def province_of(regency: str) -> str:
    """The province of a Kemendagri regency code: its first two digits."""
    return regency[:2]


def _federation_module(name: str) -> Any:
    """``pulih.kit.federation.<name>`` (None where the kit has no federation package)."""
    try:
        return importlib.import_module(f"pulih.kit.federation.{name}")
    except ImportError:
        return None


def _province_names() -> dict[str, str]:
    names = _federation_module("names")
    provinces = getattr(names, "PROVINCES", None) if names is not None else None
    return {str(code): str(name) for code, name in (provinces or {}).items()}


@dataclass(frozen=True)
class Directory:
    """The regencies the national office expects (code → name) and the provinces' names."""

    regencies: Mapping[str, str] = field(default_factory=dict)
    """Expected regencies, code → name (empty: none declared)."""
    provinces: Mapping[str, str] = field(default_factory=_province_names)
    """Province code (two digits) → name."""

    @classmethod
    def load(cls, federation_file: Path | None) -> Directory:
        """The regencies of ``federation_file`` (none when it is None). ValueError or OSError
        for a file that cannot be read."""
        if federation_file is None:
            return cls()
        topology = _federation_module("topology")
        if topology is None:
            raise ValueError("PULIH_FEDERATION_FILE needs pulih.kit.federation, which is not installed")
        federation = topology.load_federation(federation_file)
        return cls(regencies={str(r.code): str(r.name) for r in federation.regencies})

    @property
    def expected(self) -> frozenset[str]:
        """The codes of the regencies expected to report."""
        return frozenset(self.regencies)

    def regency_name(self, code: str) -> str:
        """A regency's name (its code where the federation list does not name it)."""
        return self.regencies.get(code, code)

    def province_name(self, code: str) -> str:
        """A province's name (its code where unknown)."""
        return self.provinces.get(code, code)

    def name_of(self, level: str, code: str) -> str:
        """The name of org unit ``code`` at ``level`` (nation, province or regency)."""
        if level == "regency":
            return self.regency_name(code)
        if level == "province":
            return self.province_name(code)
        return NATION_NAME
