"""WHO ASSIST v3 screening: validating the answers, scoring each substance, choosing the path.

The Alcohol, Smoking and Substance Involvement Screening Test asks, per substance, whether it was
ever used (Q1), then Q2-Q7, whose answer values are the item scores themselves. Q8 (injecting) is
recorded but not scored; injecting in the past 3 months sends the client down the regency's
``recent_injecting`` path whatever the scores say.

The answer dataclasses do not validate themselves: a bad answer is reported by
:func:`score_assist` with its full path (``substances[2].q5``), which a dataclass does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal

from pulih.contracts.codes import Recommendation, RiskLevel, Substance
from pulih.kit.errors import Invalid

__all__ = [
    "ITEM_VALUES",
    "AssistAnswerError",
    "AssistAnswers",
    "AssistResult",
    "Injecting",
    "Recommendation",
    "RiskLevel",
    "ScreeningPath",
    "Substance",
    "SubstanceAnswers",
    "SubstanceScore",
    "risk_for",
    "score_assist",
    "specific_involvement_score",
    "validate_assist_answers",
    "validate_substance_answers",
]


class Injecting(StrEnum):
    """Q8: has the client ever used any drug by injection (non-medical use)."""

    NEVER = "never"  # "no, never"
    PAST_3_MONTHS = "past_3_months"  # "yes, in the past 3 months"
    EARLIER = "earlier"  # "yes, but not in the past 3 months"


# StrEnum compares alphabetically, which is not the programme's order: rank explicitly.
_RISK_RANK: Final[dict[RiskLevel, int]] = {
    RiskLevel.LOW: 0,
    RiskLevel.MODERATE: 1,
    RiskLevel.HIGH: 2,
}
_RECOMMENDATION_RANK: Final[dict[Recommendation, int]] = {
    Recommendation.ADVICE: 0,
    Recommendation.IBM_PROGRAMME: 1,
    Recommendation.REFERRAL: 2,
}

_Item = Literal["q2", "q3", "q4", "q5", "q6", "q7"]
_ITEMS: Final[tuple[_Item, ...]] = ("q2", "q3", "q4", "q5", "q6", "q7")

ITEM_VALUES: Final[dict[str, frozenset[int]]] = {
    "q2": frozenset({0, 2, 3, 4, 6}),  # never, once or twice, monthly, weekly, (almost) daily
    "q3": frozenset({0, 3, 4, 5, 6}),  # craving
    "q4": frozenset({0, 4, 5, 6, 7}),  # health, social, legal or financial problems
    "q5": frozenset({0, 5, 6, 7, 8}),  # failed role obligations (not asked for tobacco)
    "q6": frozenset({0, 3, 6}),  # others concerned: never, not in past 3 months, in past 3 months
    "q7": frozenset({0, 3, 6}),  # tried and failed to cut down: same values as Q6
}
"""The possible values of each scored item; an answer's value is its score."""

# Upper bounds of the low and moderate bands; anything above the moderate bound is high.
_ALCOHOL_LOW_MAX: Final = 10
_OTHER_LOW_MAX: Final = 3
_MODERATE_MAX: Final = 26


class AssistAnswerError(Invalid):
    """An answer the ASSIST cannot produce (a value outside the item, Q5 for tobacco, ...);
    ``field`` is its path in the form (``substances[0].q5``)."""

    field: str

    def __init__(self, field: str, message: str, *, code: str = "impossible_answer") -> None:
        super().__init__(code, message, field)


@dataclass(frozen=True)
class SubstanceAnswers:
    """One substance's answers: Q1 (ever used) and the scored items Q2-Q7.

    ``None`` means "not asked". Q1 no: nothing else is asked. Q2 "never" (0): only Q6 and Q7 are
    asked. Q5 is never asked for tobacco.
    """

    substance: Substance
    ever_used: bool
    q2: int | None = None
    q3: int | None = None
    q4: int | None = None
    q5: int | None = None
    q6: int | None = None
    q7: int | None = None


@dataclass(frozen=True)
class AssistAnswers:
    """A whole ASSIST interview: the substances asked about (each once) and Q8."""

    substances: tuple[SubstanceAnswers, ...]
    injecting: Injecting


@dataclass(frozen=True)
class ScreeningPath:
    """Where each outcome leads; configurable per regency (the defaults are the national path)."""

    low: Recommendation = Recommendation.ADVICE
    moderate: Recommendation = Recommendation.IBM_PROGRAMME
    high: Recommendation = Recommendation.REFERRAL
    recent_injecting: Recommendation = Recommendation.REFERRAL

    @classmethod
    def from_programme(cls, programme: Mapping[str, Any]) -> ScreeningPath:
        """The ``[screening.path]`` section of a programme file (defaults where absent)."""
        screening = programme.get("screening", {})
        section = screening.get("path", {}) if isinstance(screening, Mapping) else {}
        if not isinstance(section, Mapping):
            raise ValueError("[screening.path] must be a table")
        default = cls()
        try:
            return cls(
                low=Recommendation(section.get("low", default.low)),
                moderate=Recommendation(section.get("moderate", default.moderate)),
                high=Recommendation(section.get("high", default.high)),
                recent_injecting=Recommendation(section.get("recent_injecting", default.recent_injecting)),
            )
        except ValueError as exc:
            raise ValueError(f"[screening.path]: {exc}") from exc

    def for_risk(self, risk: RiskLevel) -> Recommendation:
        """The recommendation this path gives for an overall risk level."""
        if risk is RiskLevel.HIGH:
            return self.high
        if risk is RiskLevel.MODERATE:
            return self.moderate
        return self.low


@dataclass(frozen=True)
class SubstanceScore:
    """A substance's Specific Substance Involvement score and its risk level."""

    substance: Substance
    score: int
    risk: RiskLevel


@dataclass(frozen=True)
class AssistResult:
    """The outcome of a screening: per-substance scores (used substances only) and the path."""

    substances: tuple[SubstanceScore, ...]
    overall_risk: RiskLevel
    injected_last_3_months: bool
    recommendation: Recommendation


def _is_asked(answers: SubstanceAnswers, item: _Item) -> bool:
    """Whether the interview asks ``item`` given the answers before it (Q2 must be valid)."""
    if not answers.ever_used:
        return False
    if item in ("q2", "q6", "q7"):
        return True
    if item == "q5" and answers.substance == Substance.TOBACCO:
        return False
    return answers.q2 != 0


def _why_not_asked(answers: SubstanceAnswers, item: _Item) -> str:
    if not answers.ever_used:
        return f"{item} is not asked when the substance was never used (Q1 no)"
    if item == "q5" and answers.substance == Substance.TOBACCO:
        return "q5 (failed role obligations) is not asked for tobacco"
    return f"{item} is not asked when Q2 is never (0) in the past 3 months"


def validate_substance_answers(answers: SubstanceAnswers, *, at: str = "") -> None:
    """Check one substance's answers, raising :class:`AssistAnswerError` on the first bad one.

    Items are checked in interview order (Q1, then Q2 to Q7). ``at`` prefixes the error's field,
    e.g. ``"substances[2]."``.
    """
    if not isinstance(answers.substance, Substance):
        raise AssistAnswerError(f"{at}substance", f"unknown substance {answers.substance!r}")
    if not isinstance(answers.ever_used, bool):
        raise AssistAnswerError(f"{at}ever_used", "Q1 (ever used) must be yes or no")
    for item in _ITEMS:
        value = getattr(answers, item)
        field = f"{at}{item}"
        if not _is_asked(answers, item):
            if value is not None:
                raise AssistAnswerError(field, _why_not_asked(answers, item))
            continue
        if value is None:
            raise AssistAnswerError(field, f"{item} is required for {answers.substance.value}")
        allowed = ITEM_VALUES[item]
        # bool is an int; False would pass as 0, so refuse it explicitly.
        if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
            choices = ", ".join(str(v) for v in sorted(allowed))
            raise AssistAnswerError(field, f"{value!r} is not a possible {item} (one of {choices})")


def validate_assist_answers(answers: AssistAnswers) -> None:
    """Check a whole interview, raising :class:`AssistAnswerError` on the first bad answer.

    A screening names at least one substance (``substances``, code ``no_substances``): an
    interview that asked about nothing screened nothing. Substances are checked in the order
    given; a substance given twice is refused at its second occurrence
    (``substances[i].substance``). Q8 is checked last (``injecting``).
    """
    if not answers.substances:
        raise AssistAnswerError(
            "substances", "a screening names at least one substance", code="no_substances"
        )
    seen: set[Substance] = set()
    for index, substance_answers in enumerate(answers.substances):
        at = f"substances[{index}]."
        validate_substance_answers(substance_answers, at=at)
        if substance_answers.substance in seen:
            raise AssistAnswerError(
                f"{at}substance", f"{substance_answers.substance.value} is answered more than once"
            )
        seen.add(substance_answers.substance)
    if not isinstance(answers.injecting, Injecting):
        raise AssistAnswerError("injecting", f"unknown Q8 answer {answers.injecting!r}")


def specific_involvement_score(answers: SubstanceAnswers) -> int:
    """The Specific Substance Involvement score, Q2+Q3+Q4+Q5+Q6+Q7 (items not asked count 0).

    The answers are validated first (errors name the bare item, e.g. ``q5``). A substance never
    used scores 0. The score is 0..39, or 0..31 for tobacco (no Q5).
    """
    validate_substance_answers(answers)
    return sum(getattr(answers, item) or 0 for item in _ITEMS)


def risk_for(substance: Substance, score: int) -> RiskLevel:
    """The risk level of a Specific Substance Involvement score.

    Alcohol: 0-10 low, 11-26 moderate, 27+ high. Every other substance: 0-3 low, 4-26 moderate,
    27+ high.
    """
    if score < 0:
        raise ValueError(f"a Specific Substance Involvement score is never negative: {score}")
    low_max = _ALCOHOL_LOW_MAX if substance == Substance.ALCOHOL else _OTHER_LOW_MAX
    if score <= low_max:
        return RiskLevel.LOW
    if score <= _MODERATE_MAX:
        return RiskLevel.MODERATE
    return RiskLevel.HIGH


def _stronger(a: Recommendation, b: Recommendation) -> Recommendation:
    return a if _RECOMMENDATION_RANK[a] >= _RECOMMENDATION_RANK[b] else b


def score_assist(answers: AssistAnswers, path: ScreeningPath = ScreeningPath()) -> AssistResult:
    """Score a whole ASSIST interview and choose the client's path.

    Validates every answer (raising :class:`AssistAnswerError` on the first impossible one),
    scores each substance ever used (substances with Q1 no are left out of the result), takes
    the highest risk as the overall risk (low when nothing was used) and picks the path's
    recommendation for it. Injecting in the past 3 months gives the stronger of that and the
    path's ``recent_injecting`` recommendation.
    """
    validate_assist_answers(answers)
    scores: list[SubstanceScore] = []
    for substance_answers in answers.substances:
        if substance_answers.ever_used:
            score = specific_involvement_score(substance_answers)
            scores.append(
                SubstanceScore(
                    substance_answers.substance,
                    score,
                    risk_for(substance_answers.substance, score),
                )
            )
    overall = max((s.risk for s in scores), key=_RISK_RANK.__getitem__, default=RiskLevel.LOW)
    injected_recently = answers.injecting is Injecting.PAST_3_MONTHS
    recommendation = path.for_risk(overall)
    if injected_recently:
        recommendation = _stronger(path.recent_injecting, recommendation)
    return AssistResult(
        substances=tuple(scores),
        overall_risk=overall,
        injected_last_3_months=injected_recently,
        recommendation=recommendation,
    )
