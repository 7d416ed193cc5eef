"""Aggregates of made-up regencies for the national view's tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pulih.contracts.codes import Indicator, UnitPhase
from pulih.contracts.events.reporting import AggregateReported


def aggregate(
    regency: str,
    period: str,
    *,
    revision: int = 1,
    base: int = 10,
    hidden: tuple[str, ...] = (),
    phases: dict[str, int] | None = None,
    **values: int | None,
) -> AggregateReported:
    """An aggregate of ``regency`` for ``period``: every indicator ``base`` (or as ``values``
    say), the ``hidden`` ones null."""
    indicators: dict[str, Any] = {i.value: base for i in Indicator}
    indicators.update(values)
    for name in hidden:
        indicators[name] = None
    return AggregateReported(
        regency=regency,
        period=period,
        generated_at=datetime(2026, 11, 1, 1, 0, tzinfo=UTC),
        indicators=indicators,
        units_by_phase=phases if phases is not None else {p.value: 1 for p in UnitPhase},
        suppressed_below=5,
        revision=revision,
    )
