"""Unit phases, as DOMAIN.md states them: criteria per phase, one phase up at most per
assessment, down when criteria stop holding, and criteria a regency can change."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pulih.contracts.codes import UnitPhase
from pulih.reporting.domain.phases import Measure, PhaseCriteria, UnitMonth, assess

DEFAULT = PhaseCriteria()

RINTISAN = UnitMonth(active_agents=1, months_active=1)
TUMBUH = replace(RINTISAN, active_agents=3, outreach_months=3, clients_screened=1)
BERKEMBANG = replace(TUMBUH, clients_enrolled=5, session_months=3, referrals_closed=1)
TANGGUH = replace(
    BERKEMBANG,
    clients_enrolled=10,
    programmes_completed=3,
    dropouts=3,
    referrals_due=5,
    referrals_answered_in_time=4,
)
PRIMA = replace(
    TANGGUH,
    clients_enrolled=20,
    programmes_completed=10,
    dropouts=2,
    months_active=12,
    completers_qol_improved=6,
)


@pytest.mark.parametrize(
    ("facts", "phase"),
    [
        (RINTISAN, UnitPhase.RINTISAN),
        (TUMBUH, UnitPhase.TUMBUH),
        (BERKEMBANG, UnitPhase.BERKEMBANG),
        (TANGGUH, UnitPhase.TANGGUH),
        (PRIMA, UnitPhase.PRIMA),
    ],
)
def test_a_unit_earns_the_phase_whose_criteria_hold_at_domain_md_s_thresholds(
    facts: UnitMonth, phase: UnitPhase
) -> None:
    assert DEFAULT.earned(facts) is phase


def test_one_agent_short_of_three_is_not_tumbuh() -> None:
    assert DEFAULT.earned(replace(TUMBUH, active_agents=2)) is UnitPhase.RINTISAN


def test_outreach_in_only_the_last_two_months_is_not_tumbuh() -> None:
    assert DEFAULT.earned(replace(TUMBUH, outreach_months=2)) is UnitPhase.RINTISAN


def test_a_unit_without_a_screened_client_is_not_tumbuh() -> None:
    assert DEFAULT.earned(replace(TUMBUH, clients_screened=0)) is UnitPhase.RINTISAN


def test_berkembang_needs_a_closed_referral() -> None:
    assert DEFAULT.earned(replace(BERKEMBANG, referrals_closed=0)) is UnitPhase.TUMBUH


def test_a_completion_rate_under_half_is_not_tangguh() -> None:
    # 3 completed, 4 dropped out: 43 %
    assert DEFAULT.earned(replace(TANGGUH, dropouts=4)) is UnitPhase.BERKEMBANG


def test_79_percent_of_referrals_answered_in_time_is_not_tangguh_and_80_is() -> None:
    assert (
        DEFAULT.earned(replace(TANGGUH, referrals_due=100, referrals_answered_in_time=79))
        is UnitPhase.BERKEMBANG
    )
    assert (
        DEFAULT.earned(replace(TANGGUH, referrals_due=100, referrals_answered_in_time=80))
        is UnitPhase.TANGGUH
    )


def test_no_referral_due_yet_means_none_was_late() -> None:
    facts = replace(TANGGUH, referrals_due=0, referrals_answered_in_time=0)
    assert facts.measure(Measure.REFERRALS_ANSWERED_IN_TIME_PERCENT) == 100
    assert DEFAULT.earned(facts) is UnitPhase.TANGGUH


def test_prima_needs_twelve_months_and_qol_improved_for_60_percent_of_completers() -> None:
    assert DEFAULT.earned(replace(PRIMA, months_active=11)) is UnitPhase.TANGGUH
    assert DEFAULT.earned(replace(PRIMA, completers_qol_improved=5)) is UnitPhase.TANGGUH


def test_a_unit_earns_no_phase_whose_lower_phase_fails() -> None:
    # Everything prima asks for, but outreach stopped this month: tumbuh fails, so does all above.
    assert DEFAULT.earned(replace(PRIMA, outreach_months=0)) is UnitPhase.RINTISAN


def test_a_unit_with_no_agent_is_still_rintisan_and_says_so() -> None:
    assessment = assess(UnitMonth(months_active=1), UnitPhase.RINTISAN, DEFAULT)
    assert assessment.phase is UnitPhase.RINTISAN
    assert assessment.criteria_record()["rintisan"] == {"active_agents": False}


def test_a_unit_is_rintisan_at_its_first_assessment_whatever_it_has_done() -> None:
    assert assess(PRIMA, None, DEFAULT).phase is UnitPhase.RINTISAN


def test_a_unit_climbs_one_phase_per_assessment() -> None:
    phases = []
    previous = None
    for _ in range(6):
        previous = assess(PRIMA, previous, DEFAULT).phase
        phases.append(previous)
    assert phases == [
        UnitPhase.RINTISAN,
        UnitPhase.TUMBUH,
        UnitPhase.BERKEMBANG,
        UnitPhase.TANGGUH,
        UnitPhase.PRIMA,
        UnitPhase.PRIMA,
    ]


def test_a_unit_falls_straight_to_the_phase_it_still_earns() -> None:
    assessment = assess(replace(PRIMA, session_months=1), UnitPhase.PRIMA, DEFAULT)
    assert assessment.phase is UnitPhase.TUMBUH
    assert assessment.previous is UnitPhase.PRIMA
    assert assessment.criteria_record()["berkembang"]["session_months"] is False


def test_a_unit_that_still_earns_its_phase_stays() -> None:
    assert assess(TANGGUH, UnitPhase.TANGGUH, DEFAULT).phase is UnitPhase.TANGGUH


def test_a_unit_below_what_it_earns_climbs_one_not_two() -> None:
    assert assess(TANGGUH, UnitPhase.TUMBUH, DEFAULT).phase is UnitPhase.BERKEMBANG


def test_a_programme_file_replaces_one_phase_s_criteria_and_keeps_the_others() -> None:
    criteria = PhaseCriteria.from_programme(
        {"reporting": {"phases": {"tumbuh": {"active_agents": 2, "outreach_months": 1}}}}
    )
    lenient = UnitMonth(active_agents=2, outreach_months=1, months_active=1)
    assert criteria.earned(lenient) is UnitPhase.TUMBUH  # no screening asked any more
    assert criteria.thresholds[UnitPhase.PRIMA] == PhaseCriteria().thresholds[UnitPhase.PRIMA]


def test_a_programme_file_without_a_reporting_section_gives_domain_md_s_table() -> None:
    assert PhaseCriteria.from_programme({"programme": "ibm-16w-2021"}) == PhaseCriteria()


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        ({"emas": {"active_agents": 1}}, "no such phase"),
        ({"tumbuh": {"volunteers": 3}}, "no such criterion"),
        ({"tumbuh": {"active_agents": -1}}, "number ≥ 0"),
        ({"tumbuh": {"active_agents": "three"}}, "number ≥ 0"),
        ({"tangguh": {"completion_rate_percent": 150}}, "at most 100"),
        ({"tumbuh": 3}, "table of criteria"),
    ],
)
def test_a_malformed_phase_table_is_refused_with_its_name(phases: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PhaseCriteria.from_programme({"reporting": {"phases": phases}})
