"""Small counts hidden from what leaves a regency (DOMAIN.md, Privacy). Pure.

A count from 1 to ``below - 1`` (``below`` is ``suppressed_below``, 5 by default) could single a
person out, so it is published as null (*primary suppression*); zeros are published. Hiding it
is not enough when other published figures give it away: with ``clients_screened`` 12,
``screened_moderate`` 5 and ``screened_high`` 5 published, a hidden ``screened_low`` is 12 - 5 - 5
= 2. So *complementary suppression* hides more cells until no hidden count can be worked out
from the published ones and the relations between them.

**What an outsider knows.** The published cells, the relations below, and that a null is never
0: zeros are published, so every null stands for 1 or more. Nothing bounds a null from above: a
complement can be any count, and nothing says which nulls are small counts and which are
complements. Every null must keep at least two possible values under these bounds.

The relations inside one monthly aggregate (:data:`AGGREGATE_RELATIONS`):

- ``clients_screened = screened_low + screened_moderate + screened_high`` (EVENTS.md: the three
  add up). With the total published, ``k`` hidden parts add up to what the published ones leave
  (``s``), each at least 1: a lone hidden part is pinned, and so are ``k`` parts adding up to
  ``k`` (two nulls adding up to 2 are both 1); otherwise each lies between 1 and ``s - k + 1``.
  With the total hidden, nothing bounds it from above: a part is never pinned, but the total is
  when no part is hidden.
- ``sessions_attended ≤ sessions_held``. A hidden ``sessions_attended`` lies between 1 and a
  published ``sessions_held``: pinned when that is 1 (hidden itself whenever anything is).

No other indicators are tied within a month: referrals accepted, completed and made are dated by
different events; ``back_referrals`` may follow a dropped-out treatment too; ``clients_active``
is a stock whose change also depends on discharges that are not published (moved, died, referred
out). ``units_by_phase`` counts units, not people, and is never suppressed.

The complement is chosen deterministically: the smallest published non-zero cell of the relation
(a part before the total on a tie, then in the relation's order), again until nothing is
pinned. A zero is never needed (the total of hidden parts, or the ``sessions_held`` over a
hidden attendance, is itself non-zero), so the outsider's premise holds: every null is 1 or more.

**Revisions.** Each revision of a month is protected on its own: it hides what its own figures
require, nothing more. A cell hidden in an earlier revision is published in a later one once its
count reaches the threshold (a month published right after it closes, before devices have
synced, would otherwise keep blanking figures that later grew large). A revision whose published
figures equal the latest one's is not published at all
(:func:`pulih.reporting.aggregates.publish_aggregates`), so a change confined to hidden cells
does not show.

What this does not prevent: comparing revisions. Each aggregate on its own pins nothing, but the
difference between two says what changed, as any correction must: if ``screened_high`` was 0
and published and a late screening makes it 1 (hidden, with a complement), someone who assumes
the complement did not change can work out the 1; and a cell hidden in one revision and
published in the next, with nothing else changed in its relation, tells what the hidden one
was. Each revision publishes only true counts of a closed month, and late changes are few.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
        if not hidden_parts:
            return False
        # Each hidden part is at least 1: k parts adding up to k (or less, were a zero hidden)
        # are each 1; one hidden part is the rest of the total.
        return len(hidden_parts) == 1 or sum(values.get(p, 0) for p in hidden_parts) <= len(hidden_parts)


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
        """Whether the hidden ``small`` (at least 1) is pinned by a published ``big`` of 1 (or
        0, were a zero hidden)."""
        return self.small in hidden and self.big not in hidden and values.get(self.big, 0) <= 1


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
) -> dict[str, int | None]:
    """``values`` as they may leave the regency: counts from 1 to ``below - 1`` null, and every
    complement needed so that no null can be worked out through ``relations`` by someone who
    knows a null is at least 1. Depends on ``values`` alone (each revision on its own)."""
    hidden = {name for name, count in values.items() if 1 <= count < below}
    changed = True
    while changed:
        changed = False
        for relation in relations:
            if relation.gives_away(values, hidden):
                hidden.add(_complement(relation, values, hidden))
                changed = True
    return {name: None if name in hidden else count for name, count in values.items()}
