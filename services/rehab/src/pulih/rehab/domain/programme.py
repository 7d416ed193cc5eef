"""The programme a regency runs, as data: stages, their weeks, session rules, dropout and
follow-up rules. Read from the ``[rehab]`` section of the versioned programme file
(``ibm-16w-2021`` by default); nothing about weeks is written in code.

Weeks count from the screening week: *skrining* is week 1 (outreach does it), enrolment opens
*penerimaan awal* (intake) in week 2, *intervensi* runs weeks 3-12 and *bina lanjut*
(aftercare) weeks 13-16 in the default programme.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pulih.contracts.codes import DischargeReason, Phase, Recommendation, SessionKind


@dataclass(frozen=True)
class Stage:
    """One stage of the programme: its phase, weeks and the sessions it asks for."""

    phase: Phase
    first_week: int
    last_week: int
    kinds: frozenset[SessionKind]
    min_sessions: int
    every_weeks: int

    @property
    def weeks(self) -> int:
        """How many weeks the stage lasts."""
        return self.last_week - self.first_week + 1

    def ends_on(self, started_on: date) -> date:
        """The last day of the stage when it started on ``started_on``."""
        return started_on + timedelta(weeks=self.weeks, days=-1)


@dataclass(frozen=True)
class Programme:
    """A versioned programme: the rules every enrolment in it follows."""

    code: str
    version: int
    stages: tuple[Stage, ...]
    enrol_after: frozenset[Recommendation]
    screening_valid_days: int
    """How many days a screening stays good enough to enrol on; an older one asks for a new one."""
    dropout_after_weeks: int
    follow_up_months: tuple[int, ...]
    follow_up_after: frozenset[DischargeReason]
    exit_assessment_week: int

    def stage(self, phase: Phase) -> Stage:
        """The stage of ``phase``."""
        for stage in self.stages:
            if stage.phase is phase:
                return stage
        raise KeyError(f"programme {self.code} has no stage {phase}")

    def next_phase(self, phase: Phase) -> Phase | None:
        """The phase after ``phase``, or None after the last one."""
        phases = [s.phase for s in self.stages]
        at = phases.index(phase)
        return phases[at + 1] if at + 1 < len(phases) else None

    @property
    def intake_phase(self) -> Phase:
        """The phase enrolment opens (the one after screening)."""
        follows = self.next_phase(self.stages[0].phase)
        assert follows is not None  # checked when the programme is read
        return follows

    @property
    def aftercare_phase(self) -> Phase:
        """The last phase: aftercare, where clients sent back by a clinic start."""
        return self.stages[-1].phase

    def weeks_from(self, phase: Phase) -> int:
        """Weeks from the start of ``phase`` to the end of the programme."""
        phases = [s.phase for s in self.stages]
        return sum(s.weeks for s in self.stages[phases.index(phase) :])

    def planned_end(self, started_on: date, phase: Phase) -> date:
        """The last day of the programme for someone starting ``phase`` on ``started_on``."""
        return started_on + timedelta(weeks=self.weeks_from(phase), days=-1)

    def week_of(self, phase: Phase, stage_started_on: date, day: date) -> int:
        """The programme week ``day`` falls in, for a stage of ``phase`` started then."""
        return self.stage(phase).first_week + (day - stage_started_on).days // 7


class _StageFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phase: Phase
    weeks: tuple[int, int]
    kinds: list[SessionKind] = Field(default_factory=list)
    min_sessions: int = Field(0, ge=0)
    every_weeks: int = Field(1, ge=1)


class _RehabFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enrol_after: list[Recommendation]
    screening_valid_days: int = Field(ge=0)
    dropout_after_weeks: int = Field(ge=1)
    follow_up_months: list[int] = Field(default_factory=list)
    follow_up_after: list[DischargeReason] = Field(default_factory=list)
    exit_assessment_week: int = Field(ge=1)
    stages: list[_StageFile] = Field(min_length=2)

    @model_validator(mode="after")
    def _stages_follow_each_other(self) -> _RehabFile:
        expected = 1
        for stage in self.stages:
            first, last = stage.weeks
            if first != expected or last < first:
                raise ValueError(f"stage {stage.phase} must start in week {expected} and not end before it")
            expected = last + 1
        if len({s.phase for s in self.stages}) != len(self.stages):
            raise ValueError("a phase appears twice in the stages")
        return self


def programme_from(data: dict[str, Any]) -> Programme:
    """The programme described by a parsed programme file; ValueError naming what is wrong
    (the caller, who knows which file it read, names the file)."""
    try:
        rehab = _RehabFile.model_validate(data.get("rehab"))
    except ValidationError as exc:
        raise ValueError(f"programme {data.get('programme')}: [rehab] {exc}") from exc
    return Programme(
        code=str(data["programme"]),
        version=int(data["version"]),
        stages=tuple(
            Stage(
                phase=s.phase,
                first_week=s.weeks[0],
                last_week=s.weeks[1],
                kinds=frozenset(s.kinds),
                min_sessions=s.min_sessions,
                every_weeks=s.every_weeks,
            )
            for s in rehab.stages
        ),
        enrol_after=frozenset(rehab.enrol_after),
        screening_valid_days=rehab.screening_valid_days,
        dropout_after_weeks=rehab.dropout_after_weeks,
        follow_up_months=tuple(rehab.follow_up_months),
        follow_up_after=frozenset(rehab.follow_up_after),
        exit_assessment_week=rehab.exit_assessment_week,
    )
