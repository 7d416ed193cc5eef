"""The programme's time rules on the default programme ibm-16w-2021, walked day by day."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pulih.contracts.codes import DischargeReason, Phase
from pulih.kit.programme import load_programme
from pulih.rehab.domain.programme import programme_from
from pulih.rehab.domain.timeline import (
    Discharged,
    DropoutReversal,
    PhaseClosed,
    PhasePeriod,
    Status,
    Timeline,
    TimelineError,
    advance,
    discharge_on_request,
    disproves_dropout,
    enrol,
    enrol_in_aftercare,
    pause,
    phase_on,
    resume_in_aftercare,
    resume_where_paused,
    reverse_dropout,
    seen,
)

IBM = programme_from(load_programme())
MONDAY = date(2026, 3, 2)


def test_the_default_programme_is_read_from_the_programme_file() -> None:
    assert [s.phase for s in IBM.stages] == [
        Phase.SKRINING,
        Phase.PENERIMAAN_AWAL,
        Phase.INTERVENSI,
        Phase.BINA_LANJUT,
    ]
    assert IBM.stage(Phase.INTERVENSI).weeks == 10
    assert IBM.planned_end(MONDAY, Phase.PENERIMAAN_AWAL) == date(2026, 6, 14)  # weeks 2-16


def test_a_client_seen_every_week_walks_through_all_sixteen_weeks_and_completes() -> None:
    timeline, changes = enrol(IBM, MONDAY)
    day = MONDAY
    while day <= date(2026, 6, 20):
        if day.weekday() == 2:  # a session every Wednesday
            timeline = seen(timeline, day)
        timeline, today = advance(IBM, timeline, day)
        changes += today
        day += timedelta(days=1)
    assert changes == [
        PhaseClosed(Phase.SKRINING, MONDAY, Phase.PENERIMAAN_AWAL),
        PhaseClosed(Phase.PENERIMAAN_AWAL, date(2026, 3, 8), Phase.INTERVENSI),
        PhaseClosed(Phase.INTERVENSI, date(2026, 5, 17), Phase.BINA_LANJUT),
        PhaseClosed(Phase.BINA_LANJUT, date(2026, 6, 14), None),
        Discharged(date(2026, 6, 14), DischargeReason.COMPLETED),
    ]
    assert timeline.status is Status.DISCHARGED


def test_a_rule_takes_effect_only_once_its_day_has_passed() -> None:
    timeline, _ = enrol(IBM, MONDAY)
    assert advance(IBM, timeline, date(2026, 3, 8))[1] == []  # intake's last day
    assert advance(IBM, timeline, date(2026, 3, 9))[1] == [
        PhaseClosed(Phase.PENERIMAAN_AWAL, date(2026, 3, 8), Phase.INTERVENSI)
    ]


def test_a_service_down_for_months_catches_up_with_the_same_dates() -> None:
    timeline, _ = enrol(IBM, MONDAY)
    for week in range(15):
        timeline = seen(timeline, MONDAY + timedelta(weeks=week, days=2))
    timeline, changes = advance(IBM, timeline, date(2026, 9, 1))
    assert [c.on for c in changes] == [
        date(2026, 3, 8),
        date(2026, 5, 17),
        date(2026, 6, 14),
        date(2026, 6, 14),
    ]


def test_three_weeks_without_an_attended_session_is_a_dropout() -> None:
    timeline, _ = enrol(IBM, MONDAY)
    timeline = seen(timeline, date(2026, 3, 11))
    timeline, changes = advance(IBM, timeline, date(2026, 4, 1))  # 3 weeks after Mar 11 is Apr 1
    assert Discharged(date(2026, 4, 1), DischargeReason.DROPPED_OUT) not in changes
    timeline, changes = advance(IBM, timeline, date(2026, 4, 2))
    assert changes == [Discharged(date(2026, 4, 1), DischargeReason.DROPPED_OUT)]
    assert timeline.status is Status.DISCHARGED


def dropped_out_on_april_1() -> Timeline:
    """Enrolled on Monday 2 March, last seen on Wednesday 11 March, out by the rule on 1 April."""
    timeline, _ = enrol(IBM, MONDAY)
    timeline, _ = advance(IBM, seen(timeline, date(2026, 3, 11)), date(2026, 4, 2))
    assert (timeline.discharged_on, timeline.discharge_reason) == (
        date(2026, 4, 1),
        DischargeReason.DROPPED_OUT,
    )
    return timeline


def test_an_attended_session_in_the_weeks_counted_as_unseen_disproves_the_dropout() -> None:
    timeline = dropped_out_on_april_1()
    assert disproves_dropout(timeline, date(2026, 3, 12), attended=True)  # the day after the last sighting
    assert disproves_dropout(timeline, date(2026, 4, 1), attended=True)  # seen that day, never out
    assert not disproves_dropout(timeline, date(2026, 3, 25), attended=False)  # held, not attended
    assert not disproves_dropout(timeline, date(2026, 3, 11), attended=True)  # the rule knew of it
    assert not disproves_dropout(timeline, date(2026, 4, 2), attended=True)  # after the dropout


def test_a_reversed_dropout_reopens_the_stage_and_the_rules_run_again_from_the_session() -> None:
    timeline, reversal = reverse_dropout(dropped_out_on_april_1(), date(2026, 3, 25))
    assert reversal == DropoutReversal(dropped_out_on=date(2026, 4, 1), on=date(2026, 3, 25))
    assert (timeline.status, timeline.phase, timeline.last_seen_on) == (
        Status.ACTIVE,
        Phase.INTERVENSI,
        date(2026, 3, 25),
    )
    assert (timeline.discharged_on, timeline.discharge_reason) == (None, None)
    assert advance(IBM, timeline, date(2026, 4, 15))[1] == []  # three weeks from Mar 25 end on Apr 15
    timeline, changes = advance(IBM, timeline, date(2026, 4, 16))
    assert changes == [Discharged(date(2026, 4, 15), DischargeReason.DROPPED_OUT)]
    assert disproves_dropout(timeline, date(2026, 4, 10), attended=True)  # and this one can go too


def test_a_dropout_an_agent_recorded_and_every_other_discharge_stand() -> None:
    timeline, _ = enrol(IBM, MONDAY)
    timeline = seen(timeline, date(2026, 3, 11))
    for reason in DischargeReason:
        if reason is DischargeReason.COMPLETED:
            continue
        discharged, _ = discharge_on_request(timeline, date(2026, 4, 1), reason)
        assert not disproves_dropout(discharged, date(2026, 3, 25), attended=True), reason
        with pytest.raises(TimelineError):
            reverse_dropout(discharged, date(2026, 3, 25))
    completed = enrol_in_aftercare(IBM, MONDAY)
    completed, _ = advance(IBM, seen(completed, date(2026, 3, 25)), date(2026, 4, 1))
    assert completed.discharge_reason is DischargeReason.COMPLETED
    assert not disproves_dropout(completed, date(2026, 3, 27), attended=True)


def test_a_paused_enrolment_neither_progresses_nor_drops_out() -> None:
    timeline, _ = enrol(IBM, MONDAY)
    timeline = pause(timeline, date(2026, 3, 4))
    timeline, changes = advance(IBM, timeline, date(2026, 8, 1))
    assert changes == [] and timeline.status is Status.PAUSED


def test_a_declined_referral_resumes_the_same_stage_with_the_weeks_it_had_left() -> None:
    timeline, _ = enrol(IBM, MONDAY)  # intake ends Mar 8
    timeline = resume_where_paused(pause(timeline, date(2026, 3, 4)), date(2026, 3, 11))
    assert timeline.phase is Phase.PENERIMAAN_AWAL and timeline.stage_started_on == date(2026, 3, 9)
    _, changes = advance(IBM, timeline, date(2026, 3, 16))
    assert changes == [PhaseClosed(Phase.PENERIMAAN_AWAL, date(2026, 3, 15), Phase.INTERVENSI)]


def test_a_back_referral_resumes_the_client_in_bina_lanjut() -> None:
    timeline, _ = enrol(IBM, MONDAY)
    timeline, _ = advance(IBM, seen(timeline, date(2026, 3, 12)), date(2026, 3, 13))  # in intervensi
    timeline = pause(timeline, date(2026, 3, 20))
    timeline, changes = resume_in_aftercare(IBM, timeline, date(2026, 5, 1))
    assert changes == [PhaseClosed(Phase.INTERVENSI, date(2026, 5, 1), Phase.BINA_LANJUT)]
    assert (timeline.phase, timeline.status, timeline.stage_started_on) == (
        Phase.BINA_LANJUT,
        Status.ACTIVE,
        date(2026, 5, 1),
    )


def test_an_aftercare_only_enrolment_lasts_the_four_weeks_of_bina_lanjut() -> None:
    timeline = enrol_in_aftercare(IBM, date(2026, 5, 4))
    for week in range(4):
        timeline = seen(timeline, date(2026, 5, 6) + timedelta(weeks=week))
    _, changes = advance(IBM, timeline, date(2026, 6, 1))
    assert changes == [
        PhaseClosed(Phase.BINA_LANJUT, date(2026, 5, 31), None),
        Discharged(date(2026, 5, 31), DischargeReason.COMPLETED),
    ]


def test_only_an_active_enrolment_pauses_and_only_a_paused_one_resumes() -> None:
    timeline, _ = enrol(IBM, MONDAY)
    with pytest.raises(TimelineError):
        resume_where_paused(timeline, MONDAY)
    with pytest.raises(TimelineError):
        pause(pause(timeline, MONDAY), MONDAY)


def test_the_phase_on_a_day_comes_from_the_enrolment_history() -> None:
    periods = [
        PhasePeriod(Phase.PENERIMAAN_AWAL, MONDAY, date(2026, 3, 8)),
        PhasePeriod(Phase.INTERVENSI, date(2026, 3, 9), None),
    ]
    assert phase_on(periods, date(2026, 3, 8)) is Phase.PENERIMAAN_AWAL
    assert phase_on(periods, date(2026, 4, 1)) is Phase.INTERVENSI
    assert phase_on(periods, date(2026, 3, 1)) is None
    enrolment_day = [
        PhasePeriod(Phase.SKRINING, MONDAY, MONDAY),
        PhasePeriod(Phase.PENERIMAAN_AWAL, MONDAY, None),
    ]
    assert phase_on(enrolment_day, MONDAY) is Phase.PENERIMAAN_AWAL


def test_a_programme_file_with_a_gap_between_stages_is_refused() -> None:
    data = load_programme()
    data["rehab"]["stages"][2]["weeks"] = [4, 12]
    with pytest.raises(ValueError, match="must start in week 3"):
        programme_from(data)
