"""Who the national view expects, and what it calls them.

Regency names and the regencies expected to report come from the federation list
(``PULIH_FEDERATION_FILE``, ``deploy/federation.toml``); without it the national view knows only
the regencies it has received, by their codes. A province is the first two digits of a
Kemendagri regency code; its name comes from :data:`pulih.kit.federation.names.PROVINCES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pulih.kit.federation.names import PROVINCES
from pulih.kit.federation.topology import load_federation

NATION = "ID"
"""The org unit code of the nation."""

NATION_NAME = "Indonesia"


def province_of(regency: str) -> str:
    """The province of a Kemendagri regency code: its first two digits."""
    return regency[:2]


def _province_names() -> dict[str, str]:
    return dict(PROVINCES)


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
        federation = load_federation(federation_file)
        return cls(regencies={r.code: r.name for r in federation.regencies})

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
