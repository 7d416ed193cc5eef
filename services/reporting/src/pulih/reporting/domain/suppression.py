"""Small counts hidden from what leaves a regency (DOMAIN.md, Privacy). Pure.

A count from 1 to ``below - 1`` (``below`` is ``suppressed_below``, 5 by default) could single a
person out, so it is published as null (*primary suppression*); zeros are published. Hiding it
is not enough when other published figures give it away: with ``clients_screened`` 12,
``screened_moderate`` 5 and ``screened_high`` 5 published, a hidden ``screened_low`` is 12 - 5 - 5
= 2. So *complementary suppression* hides more cells until no hidden count can be worked out
from the published ones and the relations between them.

The relations inside one monthly aggregate (:data:`AGGREGATE_RELATIONS`):

- ``clients_screened = screened_low + screened_moderate + screened_high`` (EVENTS.md: the three
  add up). With the total published, a lone hidden part is pinned; two or more hidden parts are
  not (each lies between 0 and what the hidden ones add up to, at least 1). With the total
  hidden, a part is never pinned, but the total is when no part is hidden.
- ``sessions_attended ≤ sessions_held``. An inequality pins a hidden cell only where its bounds
  meet: a hidden ``sessions_attended`` under a published ``sessions_held`` of 0. That cannot
  happen to a primary suppression (1 ≤ attended ≤ held), only to a cell kept hidden from an
  earlier revision; it is handled all the same.

No other indicators are tied within a month: referrals accepted, completed and made are dated by
different events; ``back_referrals`` may follow a dropped-out treatment too; ``clients_active``
is a stock whose change also depends on discharges that are not published (moved, died, referred
out). ``units_by_phase`` counts units, not people, and is never suppressed.

The complement is chosen deterministically: the smallest published non-zero cell of the relation
(a part before the total on a tie, then in the relation's order); a zero is hidden only when no
non-zero cell is left. Cells hidden in an earlier revision of the same period stay hidden
(``keep_hidden``): otherwise comparing two revisions whose hidden cells differ would give the
counts away.

What this does not prevent: a revision published as a whole next to an earlier one where a cell
was still published. If ``screened_high`` was 0 and published, and a late screening makes it 1
(hidden, with ``screened_low`` as complement), someone who assumes ``screened_low`` did not
change between the two revisions can work out the 1. Each aggregate on its own pins nothing;
the difference between revisions says what changed, as any correction must.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pulih.contracts.codes import Indicator

DEFAULT_SUPPRESSED_BELOW = 5
"""DOMAIN.md: counts 1 to 4 become null (*configurable*: ``[reporting] suppressed_below``)."""


@dataclass(frozen=True)
class Total:
    """``total`` is the sum of ``parts``."""

    total: str
    parts: tuple[str, ...]

    @property
    def cells(self) -> tuple[str, ...]:
        """Every cell of the relation, parts first."""
        return (*self.parts, self.total)

    def gives_away(self, values: Mapping[str, int], hidden: set[str]) -> bool:
        """Whether a hidden cell of the relation can be worked out from the published ones."""
        hidden_parts = [p for p in self.parts if p in hidden]
        if self.total in hidden:
            return not hidden_parts
        if len(hidden_parts) == 1:
            return True
        # Hidden parts that add up to nothing are each pinned at 0 (only cells kept hidden
        # from an earlier revision can be 0).
        return bool(hidden_parts) and sum(values.get(p, 0) for p in hidden_parts) == 0


@dataclass(frozen=True)
class AtMost:
    """``small`` is never more than ``big``."""

    small: str
    big: str

    @property
    def cells(self) -> tuple[str, ...]:
        """Both cells, the one to hide as a complement first."""
        return (self.big, self.small)

    def gives_away(self, values: Mapping[str, int], hidden: set[str]) -> bool:
        """Whether the hidden ``small`` is pinned at 0 by a published ``big`` of 0."""
        return self.small in hidden and self.big not in hidden and values.get(self.big, 0) == 0


Relation = Total | AtMost

AGGREGATE_RELATIONS: tuple[Relation, ...] = (
    Total(
        Indicator.CLIENTS_SCREENED.value,
        (
            Indicator.SCREENED_LOW.value,
            Indicator.SCREENED_MODERATE.value,
            Indicator.SCREENED_HIGH.value,
        ),
    ),
    AtMost(Indicator.SESSIONS_ATTENDED.value, Indicator.SESSIONS_HELD.value),
)
"""The linear relations between the indicators of one ``AggregateReported``."""


def _complement(relation: Relation, values: Mapping[str, int], hidden: set[str]) -> str:
    """The published cell of ``relation`` to hide next: the smallest non-zero one."""
    published = [(i, cell) for i, cell in enumerate(relation.cells) if cell not in hidden]
    _, cell = min(published, key=lambda item: (values.get(item[1], 0) == 0, values.get(item[1], 0), item[0]))
    return cell


def suppress(
    values: Mapping[str, int],
    *,
    below: int = DEFAULT_SUPPRESSED_BELOW,
    relations: Sequence[Relation] = AGGREGATE_RELATIONS,
    keep_hidden: Iterable[str] = (),
) -> dict[str, int | None]:
    """``values`` as they may leave the regency: counts from 1 to ``below - 1`` null, and every
    complement needed so that no null can be worked out through ``relations``. ``keep_hidden``
    names cells hidden in an earlier revision of the same figures; they stay null."""
    hidden = {name for name, count in values.items() if 1 <= count < below}
    hidden |= {name for name in keep_hidden if name in values}
    changed = True
    while changed:
        changed = False
        for relation in relations:
            if relation.gives_away(values, hidden):
                hidden.add(_complement(relation, values, hidden))
                changed = True
    return {name: None if name in hidden else count for name, count in values.items()}
