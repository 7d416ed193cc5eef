"""What outreach's API takes and gives back (request and response bodies).

Request bodies are strict (:mod:`pulih.kit.strict`): a date is ``YYYY-MM-DD``, a count a JSON
integer, a yes/no a JSON boolean; each carries an example of a request the service takes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo, field_validator

from pulih.contracts.codes import (
    AgeBand,
    AgentDeactivationReason,
    CameThrough,
    ConsentScope,
    OutreachKind,
    Recommendation,
    RiskLevel,
    Sex,
    VillageCode,
)
from pulih.kit.happened_on import HappenedOn
from pulih.kit.pagination import Page
from pulih.kit.strict import FROM_TEXT, JSON_INTEGER, STRICT_BODY, Day, Id, Integer, strict_body
from pulih.outreach.domain.assist import Injecting, Substance
from pulih.outreach.domain.consent import check_expiry
from pulih.outreach.domain.duplicates import Resolution


def _utc(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes for DateTime(timezone=True): they were stored in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A moment in UTC, whichever store it came from."""


class Body(BaseModel):
    """Request bodies are strict and refuse unknown fields, so a typo is an error rather than
    ignored."""

    model_config = STRICT_BODY


NAME_RULE = (
    "a name: once trimmed of white space, it holds a letter of any script and no control or "
    "invisible character (422 `blank`, `no_letter` or `control_character` otherwise)"
)
Name = Annotated[str, Field(min_length=1, max_length=200, description=NAME_RULE)]
"""A person's or a unit's name, checked by :func:`pulih.outreach.domain.text.clean_name`. No
``pattern`` says the rule: Python's ``re`` (which schemathesis generates from) has no ``\\p{L}``,
so "a letter of any script" is a 16,000-character list of code point ranges, which buried the
document it was in (tests/schemathesis_rules.py names the rule instead)."""


VILLAGE_IN_REGENCY = (
    "the 10-digit Kemendagri code of a village (desa/kelurahan) of this regency: its first four "
    "digits are the regency's code (the service's `PULIH_REGENCY`), and its `pattern` here says so"
)


class EstablishUnit(Body):
    model_config = strict_body(
        {"name": "Unit IBM Sidareja", "village_code": "3301012001", "established_on": "2024-11-04"}
    )

    name: Name
    village_code: Annotated[VillageCode, Field(description=VILLAGE_IN_REGENCY)]
    established_on: HappenedOn


class UnitView(BaseModel):
    unit_id: UUID
    name: str
    village_code: str
    established_on: date
    active_agents: int = 0


class RegisterAgent(Body):
    model_config = strict_body(
        {"trained_on": "2024-10-21"},
        {"trained_on": "2024-10-21", "agent_id": "5b0b4a43-64f5-4c1b-9a53-0d5c4a1e7f21"},
    )

    trained_on: HappenedOn
    agent_id: Id | None = Field(None, description="a device-made id; one is assigned if absent")


class AgentView(BaseModel):
    agent_id: UUID
    unit_id: UUID
    trained_on: date
    active: bool
    deactivated_on: date | None = None


class DeactivateAgent(Body):
    model_config = strict_body({"on": "2025-01-10", "reason_code": "moved"})

    on: HappenedOn
    reason_code: Annotated[AgentDeactivationReason, FROM_TEXT]


class RecordOutreach(Body):
    model_config = strict_body(
        {
            "agent_id": "5b0b4a43-64f5-4c1b-9a53-0d5c4a1e7f21",
            "kind": "sosialisasi",
            "held_on": "2025-01-08",
            "people_reached": 40,
        }
    )

    agent_id: Id
    kind: Annotated[OutreachKind, FROM_TEXT]
    held_on: HappenedOn
    people_reached: Annotated[int, Field(ge=0, le=100_000), JSON_INTEGER]


class OutreachView(BaseModel):
    activity_id: UUID
    unit_id: UUID
    agent_id: UUID
    kind: OutreachKind
    held_on: date
    people_reached: int


class Identity(Body):
    """Who the client is. Stored only in outreach, each field encrypted; never in an event."""

    full_name: Name
    nik: Annotated[
        str,
        Field(
            description="16-digit Nomor Induk Kependudukan: its day, month and two-digit year "
            "are the birth date's (the day plus 40 for a woman)"
        ),
    ]
    birth_date: HappenedOn
    sex: Annotated[Sex, FROM_TEXT]
    phone: Annotated[str | None, Field(max_length=30)] = None
    address: Annotated[str | None, Field(max_length=500)] = None


class RegisterClient(Body):
    model_config = strict_body(
        {
            "unit_id": "0f8e61e6-a1f5-4c4f-9a3a-4d1d2f8f3c11",
            "registered_on": "2025-01-09",
            "came_through": "outreach",
            "identity": {
                "full_name": "Budi Santoso",
                "nik": "3301011503900001",
                "birth_date": "1990-03-15",
                "sex": "m",
                "phone": "081234567890",
                "address": "Jl. Merdeka 12, Sidareja",
            },
        }
    )

    unit_id: Id
    registered_on: HappenedOn
    came_through: Annotated[CameThrough, FROM_TEXT]
    identity: Identity


class ClientView(BaseModel):
    """A client as everyone but an identity read sees them: pseudonymous."""

    client_id: UUID
    unit_id: UUID
    registered_on: date
    sex: Sex
    age_band: AgeBand
    came_through: CameThrough
    erased: bool = False


class IdentityView(BaseModel):
    client_id: UUID
    unit_id: UUID
    full_name: str
    nik: str
    birth_date: date
    sex: Sex
    phone: str | None
    address: str | None


class RecordConsent(Body):
    """What the client agreed to, from ``given_on`` until ``expires_on`` (if it expires): an
    expiry is on or after the day the consent is given."""

    model_config = strict_body(
        {"scopes": ["programme", "referral"], "given_on": "2025-01-09"},
        {"scopes": ["identity_to_clinic"], "given_on": "2025-01-09", "expires_on": "2025-07-09"},
    )

    scopes: Annotated[list[Annotated[ConsentScope, FROM_TEXT]], Field(min_length=1)]
    given_on: HappenedOn
    expires_on: Annotated[
        Day | None, Field(description="the last day the consent holds: not before `given_on`")
    ] = None

    @field_validator("expires_on")
    @classmethod
    def _not_before_given(cls, expires_on: date | None, info: ValidationInfo) -> date | None:
        # the domain's rule and error (422 expires_before_given), checked as the body is read
        given_on = info.data.get("given_on")
        if expires_on is not None and given_on is not None:
            check_expiry(given_on, expires_on)
        return expires_on


class ConsentView(BaseModel):
    consent_id: UUID
    client_id: UUID
    scopes: list[ConsentScope]
    given_on: date
    expires_on: date | None
    withdrawn_on: date | None


class WithdrawConsent(Body):
    model_config = strict_body({"on": "2025-01-12"})

    on: HappenedOn


class SubstanceAnswersIn(Body):
    """ASSIST v3 answers for one substance. Q1 = ever used; Q2-Q7 as scored by the form."""

    substance: Annotated[Substance, FROM_TEXT]
    ever_used: bool
    q2: Integer | None = None
    q3: Integer | None = None
    q4: Integer | None = None
    q5: Integer | None = None
    q6: Integer | None = None
    q7: Integer | None = None


class ScreenClient(Body):
    model_config = strict_body(
        {
            "agent_id": "5b0b4a43-64f5-4c1b-9a53-0d5c4a1e7f21",
            "screened_on": "2025-01-10",
            "substances": [
                {"substance": "tobacco", "ever_used": True, "q2": 6, "q3": 4, "q4": 0, "q6": 0, "q7": 0},
                {
                    "substance": "amphetamine_type_stimulants",
                    "ever_used": True,
                    "q2": 4,
                    "q3": 5,
                    "q4": 5,
                    "q5": 6,
                    "q6": 3,
                    "q7": 3,
                },
                {"substance": "cannabis", "ever_used": False},
            ],
            "injecting": "never",
        }
    )

    agent_id: Id
    screened_on: HappenedOn
    substances: list[SubstanceAnswersIn]
    injecting: Annotated[Injecting, FROM_TEXT] = Field(description="Q8: never, past_3_months, earlier")


class SubstanceResultView(BaseModel):
    substance: Substance
    score: int
    risk: RiskLevel


class ScreeningView(BaseModel):
    screening_id: UUID
    client_id: UUID
    screened_on: date
    substances: list[SubstanceResultView]
    overall_risk: RiskLevel
    injected_last_3_months: bool
    recommendation: Recommendation


class EraseClient(Body):
    model_config = strict_body({"on": "2025-01-14"})

    on: HappenedOn


class IdentityReadView(BaseModel):
    """One attempt to read a client's identity, as the audit shows it."""

    actor: str
    actor_role: str
    on_behalf_of: str | None
    purpose: str
    outcome: str
    reason: str | None = Field(None, description="why a denied attempt was refused (its error code)")
    read_at: UtcDatetime


class DuplicateView(BaseModel):
    """A registration whose NIK was already registered, flagged for a facilitator."""

    duplicate_id: UUID
    client_id: UUID = Field(description="the newer registration")
    unit_id: UUID | None = None
    existing_client_id: UUID = Field(description="the registration it may repeat")
    existing_unit_id: UUID | None = None
    flagged_at: UtcDatetime
    flagged_by: str
    flagged_by_role: str
    resolution: Resolution | None
    resolved_at: UtcDatetime | None
    resolved_by: str | None


class ResolveDuplicate(Body):
    model_config = strict_body({"resolution": "same_person"})

    resolution: Annotated[Resolution, FROM_TEXT] = Field(
        description="same_person: the newer registration's identity is erased; "
        "different_people: both registrations stand"
    )


class UnitPage(Page[UnitView]):
    """A page of units, by name."""


class AgentPage(Page[AgentView]):
    """A page of a unit's agents, by training date."""


class ClientPage(Page[ClientView]):
    """A page of clients, by registration date."""


class ConsentPage(Page[ConsentView]):
    """A page of a client's consents, by the day each was given."""


class DuplicatePage(Page[DuplicateView]):
    """A page of possible duplicates, oldest flag first."""


class IdentityReadPage(Page[IdentityReadView]):
    """A page of a client's identity audit, oldest attempt first."""
