"""What a simulation did, in the reporting API's indicator terms: each regency's figures by month
as its reporting counts them (``GET /v1/indicators?level=regency&by=month``), beside what the
simulator recorded, and the table ``pulih simulate`` prints at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rich.table import Table

from pulih.contracts.codes import Indicator
from pulih.kit.simulate.regency import TRACKED


@dataclass
class RegencySummary:
    """One regency's months: ``reported[period][indicator]`` as the reporting API says them, and
    ``recorded[period]`` what the simulator recorded (its :data:`~.regency.TRACKED` figures)."""

    code: str
    name: str
    units: int
    agents: int
    reported: dict[str, dict[str, int]] = field(default_factory=dict)
    recorded: dict[str, Counter[str]] = field(default_factory=dict)

    def differences(self) -> dict[str, dict[str, tuple[int, int]]]:
        """Period → indicator → (recorded, reported) where the reporting counts otherwise."""
        found: dict[str, dict[str, tuple[int, int]]] = {}
        for period, reported in self.reported.items():
            recorded = self.recorded.get(period, Counter[str]())
            for name in TRACKED:
                if recorded.get(name, 0) != reported.get(name, 0):
                    found.setdefault(period, {})[name] = (recorded.get(name, 0), reported.get(name, 0))
        return found


STOCKS = frozenset({Indicator.CLIENTS_ACTIVE, Indicator.REFERRALS_OVERDUE})
"""The indicators counted on a month's last day (EVENTS.md): a total over months is the last one."""


@dataclass
class Summary:
    """Every regency the simulation drove, its months and how long it took."""

    periods: list[str]
    regencies: list[RegencySummary]
    seconds: float = 0.0

    def totals(self, code: str) -> dict[str, int]:
        """A regency's figures over the simulated months (counts add up; a month-end stock,
        ``clients_active`` or ``referrals_overdue``, is its last month's)."""
        regency = next(r for r in self.regencies if r.code == code)
        total: Counter[str] = Counter()
        for period in self.periods:
            for name, value in regency.reported.get(period, {}).items():
                if name in STOCKS:
                    total[name] = value
                else:
                    total[name] += value
        return dict(total)

    def tables(self) -> list[Table]:
        """A table per regency: an indicator a row, a month a column, and the total."""
        tables = []
        for regency in self.regencies:
            # a federation's regency has a name (r3301 Cilacap); a lone one is named by its code
            named = regency.name if regency.code in regency.name else f"r{regency.code} {regency.name}"
            table = Table(
                title=f"{named}: {regency.units} units, {regency.agents} agents "
                "(the reporting API's regency indicators)",
            )
            table.add_column("indicator")
            for period in self.periods:
                table.add_column(period, justify="right")
            table.add_column("total", justify="right")
            totals = self.totals(regency.code)
            for indicator in Indicator:
                row = [str(regency.reported.get(p, {}).get(indicator, 0)) for p in self.periods]
                table.add_row(indicator.value, *row, str(totals.get(indicator, 0)))
            tables.append(table)
        return tables
