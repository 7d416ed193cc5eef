"""A test-side solver: what an outsider can work out from one published aggregate.

It knows only what the national office knows: the published cells, the linear relations between
indicators that EVENTS.md states, that counts are non-negative integers, and that a null is never
0 (zeros are published, so every null is at least 1). It is not told which nulls are small
counts and which are complements, so it bounds no null from above. For each null cell it
searches every assignment of the null cells (exhaustively, from 1 up to a cap above the largest
true value: a second solution inside the cap is a real one, so a cell found unpinned is
unpinned) and reports the cells that can take only one value. It shares no code with the
service's suppression, whose relations it restates on its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping

from pulih.contracts.codes import Indicator

NULL_AT_LEAST = 1
"""Zeros are published: an outsider knows every null stands for 1 or more."""

Linear = tuple[Mapping[str, int], str]
"""A relation ``Σ coefficient * cell (== or <=) 0``."""

EVENTS_MD_RELATIONS: list[Linear] = [
    # clients_screened = low + moderate + high
    (
        {
            Indicator.CLIENTS_SCREENED: 1,
            Indicator.SCREENED_LOW: -1,
            Indicator.SCREENED_MODERATE: -1,
            Indicator.SCREENED_HIGH: -1,
        },
        "==",
    ),
    # sessions_attended <= sessions_held
    ({Indicator.SESSIONS_ATTENDED: 1, Indicator.SESSIONS_HELD: -1}, "<="),
]


def _holds(relation: Linear, cells: Mapping[str, int]) -> bool:
    coefficients, kind = relation
    total = sum(c * cells[name] for name, c in coefficients.items())
    return total == 0 if kind == "==" else total <= 0


def _groups(nulls: list[str], relations: list[Linear]) -> list[list[str]]:
    """Null cells split into groups no relation ties to one another."""
    groups: list[list[str]] = []
    for name in nulls:
        touching = [set(r[0]) for r in relations if name in r[0]]
        linked = [g for g in groups if any(other in cells for other in g for cells in touching)]
        merged = [name, *[n for g in linked for n in g]]
        groups = [g for g in groups if g not in linked] + [merged]
    return groups


def _solutions(
    group: list[str], known: Mapping[str, int], relations: list[Linear], cap: int
) -> Iterator[dict[str, int]]:
    """Every assignment of ``group``'s cells (1..``cap``) that satisfies the relations (each
    relation must have all its cells in ``group`` or ``known``)."""
    involved = [r for r in relations if all(name in group or name in known for name in r[0])]
    for values in itertools.product(range(NULL_AT_LEAST, cap + 1), repeat=len(group)):
        cells = {**known, **dict(zip(group, values, strict=True))}
        if all(_holds(r, cells) for r in involved):
            yield cells


def _split(published: Mapping[str, int | None]) -> tuple[list[str], dict[str, int]]:
    nulls = [name for name, value in published.items() if value is None]
    return nulls, {name: value for name, value in published.items() if value is not None}


def feasible_values(
    published: Mapping[str, int | None], *, cap: int, relations: list[Linear] = EVENTS_MD_RELATIONS
) -> dict[str, set[int]]:
    """Every value each null cell takes in some solution (from 1 up to ``cap``)."""
    nulls, known = _split(published)
    seen: dict[str, set[int]] = {name: set() for name in nulls}
    for group in _groups(nulls, relations):
        for cells in _solutions(group, known, relations, cap):
            for name in group:
                seen[name].add(cells[name])
    return seen


def pinned_cells(
    published: Mapping[str, int | None], *, cap: int, relations: list[Linear] = EVENTS_MD_RELATIONS
) -> dict[str, int]:
    """The null cells an outsider can work out, with their value: each null cell is tried at
    every value from 1 up to ``cap`` until two of them are possible (the search stops there)."""
    nulls, known = _split(published)
    pinned: dict[str, int] = {}
    for group in _groups(nulls, relations):
        for name in group:
            others = [n for n in group if n != name]
            possible = []
            for value in range(NULL_AT_LEAST, cap + 1):
                if next(_solutions(others, {**known, name: value}, relations, cap), None) is not None:
                    possible.append(value)
                    if len(possible) == 2:
                        break
            if len(possible) == 1:
                pinned[name] = possible[0]
    return pinned


def published_is_consistent(published: Mapping[str, int | None], truth: Mapping[str, int]) -> bool:
    """Every published count is the true one (nulls aside)."""
    return all(value is None or value == truth[name] for name, value in published.items())


def test_the_solver_works_out_a_part_hidden_alone() -> None:
    published: dict[str, int | None] = {
        "clients_screened": 12,
        "screened_low": None,
        "screened_moderate": 5,
        "screened_high": 5,
    }
    assert pinned_cells(published, cap=14) == {"screened_low": 2}


def test_the_solver_works_out_a_total_whose_parts_are_published() -> None:
    published: dict[str, int | None] = {
        "clients_screened": None,
        "screened_low": 0,
        "screened_moderate": 5,
        "screened_high": 6,
    }
    assert pinned_cells(published, cap=13) == {"clients_screened": 11}


def test_the_solver_works_out_attended_sessions_under_one_session() -> None:
    assert pinned_cells({"sessions_attended": None, "sessions_held": 1}, cap=3) == {"sessions_attended": 1}


def test_the_solver_knows_two_nulls_adding_up_to_2_are_both_1() -> None:
    # The review's case: 7 screened, 5 high, low and moderate hidden. Neither can be 0.
    published: dict[str, int | None] = {
        "clients_screened": 7,
        "screened_low": None,
        "screened_moderate": None,
        "screened_high": 5,
    }
    assert pinned_cells(published, cap=9) == {"screened_low": 1, "screened_moderate": 1}


def test_the_solver_cannot_tell_two_hidden_parts_apart() -> None:
    published: dict[str, int | None] = {
        "clients_screened": 12,
        "screened_low": None,
        "screened_moderate": None,
        "screened_high": 5,
    }
    assert pinned_cells(published, cap=14) == {}
    assert feasible_values(published, cap=14)["screened_low"] == set(range(1, 7))
