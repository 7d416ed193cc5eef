"""A figure of the benchmarks: one row ``{metric, value, unit, limit, ratio}``, and the ways the
bench scripts print them.

``limit`` is the same quantity measured in the same run, on the same machine, for what the figure
cannot beat (raw nats-py against the same nats-server, a bare web app…), and ``ratio`` is
``value / limit``. A figure without a limit (a limit itself, or a breakdown) has both ``None``.
A figure that could not be measured has ``value`` ``None`` and says why in ``note``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any

Figure = dict[str, Any]
"""``{"metric", "value", "unit", "limit", "ratio"}``, and optionally ``note``, ``target``, ``met``."""

KEYS = ("metric", "value", "unit", "limit", "ratio")
"""The keys every figure has, in the order they are printed."""


def figure(
    metric: str,
    value: float | None,
    unit: str,
    limit: float | None = None,
    *,
    note: str | None = None,
    digits: int = 1,
) -> Figure:
    """A row; its ratio is ``value / limit`` when both are known."""
    ratio = None
    if value is not None and limit:
        ratio = round(value / limit, 3)
    row: Figure = {
        "metric": metric,
        "value": None if value is None else round(value, digits),
        "unit": unit,
        "limit": None if limit is None else round(limit, digits),
        "ratio": ratio,
    }
    if note:
        row["note"] = note
    return row


def unavailable(metric: str, why: str) -> Figure:
    """A row for a figure that was not measured, and why."""
    return {"metric": metric, "value": None, "unit": "", "limit": None, "ratio": None, "note": why}


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` (0-1) percentile of ``values`` by the nearest rank (the p99 of 200 values is
    the 198th smallest: no interpolation that hides the tail)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def print_figures(rows: Iterable[Figure], *, as_json: bool) -> None:
    """Print the rows: JSON lines, or an aligned plain table (a script run on its own)."""
    rows = list(rows)
    if as_json:
        for row in rows:
            print(json.dumps(row), flush=True)
        return
    for row in rows:
        value = "—" if row["value"] is None else f"{row['value']:,}"
        limit = "" if row["limit"] is None else f"   limit {row['limit']:,}"
        ratio = "" if row["ratio"] is None else f"   ratio {row['ratio']:.2f}"
        note = f"   ({row['note']})" if row.get("note") else ""
        print(f"{row['metric']:<58} {value:>12} {row['unit']:<9}{limit}{ratio}{note}")
    sys.stdout.flush()
