"""WHOQOL-BREF: the WHO's 26-item quality-of-life form, scored into four domains (0-100).

The rules (DOMAIN.md):

- 26 items answered 1-5; items 3, 4 and 26 are worded negatively and reversed (6 - x);
  items 1 and 2 (overall quality of life and health) belong to no domain.
- A domain's score is the mean of its items x 4 (a 4-20 score), then (score - 4) x 100 / 16.
- A form with more than 20% of its items missing is rejected. Up to two missing items in a
  domain take the mean of the domain's other items; the social domain (three items) needs at
  least two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pulih.kit.errors import Invalid

ITEMS = range(1, 27)
REVERSED = frozenset({3, 4, 26})
DOMAIN_ITEMS: Mapping[str, tuple[int, ...]] = {
    "physical": (3, 4, 10, 15, 16, 17, 18),
    "psychological": (5, 6, 7, 11, 19, 26),
    "social": (20, 21, 22),
    "environment": (8, 9, 12, 13, 14, 23, 24, 25),
}
MOST_MISSING_IN_FORM = int(len(ITEMS) * 0.2)  # 5 of 26; six or more is more than 20%
MOST_MISSING_IN_DOMAIN = {"physical": 2, "psychological": 2, "social": 1, "environment": 2}


class WhoqolFormError(Invalid):
    """A form that cannot be scored (422): ``code``, a message, and the item at fault within the
    form (``q7``; none when the form as a whole is: a domain or the form with too many items
    missing); a route places it under the form's field in its body with :meth:`at` (``answers``
    gives ``answers.q7``, or ``answers``)."""


@dataclass(frozen=True)
class WhoqolScores:
    """The four domain scores, 0-100."""

    physical: float
    psychological: float
    social: float
    environment: float

    @property
    def mean(self) -> float:
        """The mean of the four domains (to compare exit with baseline)."""
        return (self.physical + self.psychological + self.social + self.environment) / 4


def _domain_score(name: str, answers: Mapping[int, int | None]) -> float:
    items = DOMAIN_ITEMS[name]
    given = [answers.get(i) for i in items]
    values = [6 - v if i in REVERSED else v for i, v in zip(items, given, strict=True) if v is not None]
    missing = len(items) - len(values)
    if missing > MOST_MISSING_IN_DOMAIN[name]:
        raise WhoqolFormError(
            "whoqol_domain_incomplete",
            f"the {name} domain has {missing} of its {len(items)} items missing; "
            f"at most {MOST_MISSING_IN_DOMAIN[name]} may be",
        )
    four_to_twenty = sum(values) / len(values) * 4
    return round((four_to_twenty - 4) * 100 / 16, 2)


def score_whoqol(answers: Mapping[int, int | None]) -> WhoqolScores:
    """Score a form given as item number → answer (1-5) or None for a missing item."""
    for item, value in answers.items():
        if item not in ITEMS:
            raise WhoqolFormError("whoqol_unknown_item", f"WHOQOL-BREF has no item {item}", f"q{item}")
        if value is not None and not 1 <= value <= 5:
            raise WhoqolFormError(
                "whoqol_answer_out_of_range",
                f"item {item} is answered 1 to 5, not {value}",
                f"q{item}",
            )
    missing = sum(1 for i in ITEMS if answers.get(i) is None)
    if missing > MOST_MISSING_IN_FORM:
        raise WhoqolFormError(
            "whoqol_too_many_missing",
            f"{missing} of 26 items are missing; a form with more than 20% missing cannot be scored",
        )
    return WhoqolScores(
        physical=_domain_score("physical", answers),
        psychological=_domain_score("psychological", answers),
        social=_domain_score("social", answers),
        environment=_domain_score("environment", answers),
    )
