"""The simulator's scenario: the rates of a living programme, read from a TOML file.

The default, ``scenario.toml`` beside this module, is calibrated on the seeds' facts and says in
its comments where each number comes from. A user copies it, edits it and passes it with
``pulih simulate --scenario FILE``; a wrong or missing key is refused naming the key.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

Share = Annotated[float, Field(ge=0, le=1)]
"""A probability."""
Count = Annotated[int, Field(ge=0)]


class ScenarioError(Exception):
    """The scenario file cannot be used; the message names the file and the key."""


class Section(BaseModel):
    """A table of the scenario: every key known, none missing."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _range(value: tuple[int, int]) -> tuple[int, int]:
    if value[0] > value[1]:
        raise ValueError(f"from {value[0]} to {value[1]}: the first is the lower")
    return value


class Units(Section):
    agents: tuple[Annotated[int, Field(ge=1, le=20)], Annotated[int, Field(ge=1, le=20)]]
    villages: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _agents_rise(self) -> Units:
        _range(self.agents)
        return self


class Outreach(Section):
    activities_per_month: Count
    penjangkauan: tuple[Count, Count]
    sosialisasi: tuple[Count, Count]
    pemetaan: tuple[Count, Count]

    @model_validator(mode="after")
    def _ranges_rise(self) -> Outreach:
        for value in (self.penjangkauan, self.sosialisasi, self.pemetaan):
            _range(value)
        return self


class Clients(Section):
    per_unit_month: Annotated[float, Field(ge=0, le=20)]
    consent: Share


class Risk(Section):
    low: Share
    moderate: Share
    high: Share


class Enrolment(Section):
    low: Share
    moderate: Share


class Sessions(Section):
    attendance: Share
    weekly_dropout: Share


class Referral(Section):
    high: Share
    moderate: Share


class Clinic(Section):
    accepted: Share
    declined: Share
    late: Share
    silent: Share
    back_referral: Share


class Whoqol(Section):
    baseline: tuple[Annotated[int, Field(ge=1, le=5)], Annotated[int, Field(ge=1, le=5)]]
    improved: Share

    @model_validator(mode="after")
    def _baseline_rises(self) -> Whoqol:
        _range(self.baseline)
        return self


class FollowUp(Section):
    abstinent: Share
    reduced_use: Share
    relapsed: Share
    unreachable: Share


class Scenario(Section):
    """The rates of the simulated programme (``scenario.toml`` explains each)."""

    units: Units
    villages: dict[str, list[str]] = Field(default_factory=dict)
    outreach: Outreach
    clients: Clients
    risk: Risk
    enrolment: Enrolment
    sessions: Sessions
    referral: Referral
    clinic: Clinic
    whoqol: Whoqol
    follow_up: FollowUp

    @model_validator(mode="after")
    def _shares_add_up(self) -> Scenario:
        for name, section in (("risk", self.risk), ("clinic", self.clinic), ("follow_up", self.follow_up)):
            shares = section.model_dump(exclude={"back_referral"})
            if abs(sum(shares.values()) - 1) > 0.001:
                raise ValueError(f"[{name}] {', '.join(shares)} add up to {sum(shares.values()):g}, not 1")
        return self

    def villages_of(self, regency: str) -> list[str]:
        """The villages a regency's units are set up in: the seeds' own first, then the list."""
        own = self.villages.get(regency, [])
        return own + [v for v in self.units.villages if v not in own]


def _where(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(the file)"


def load_scenario(path: Path | None = None) -> Scenario:
    """The scenario in ``path`` (the default one when ``None``); :class:`ScenarioError` naming
    the file and the key when it cannot be read or a key is wrong, missing or unknown."""
    name = str(path) if path else "the default scenario"
    try:
        text = path.read_text() if path else (files("pulih.kit.simulate") / "scenario.toml").read_text()
        raw = tomllib.loads(text)
    except OSError as exc:
        raise ScenarioError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{name}: not TOML ({exc})") from None
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(e)}: {e['msg']}" for e in exc.errors())
        raise ScenarioError(f"{name}: {problems}") from None
