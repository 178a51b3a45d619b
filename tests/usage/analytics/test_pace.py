"""Pace: averages over active days, the trend threshold, anomalies and projections."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from tests.factories import MachineFactory, ProjectFactory, daily
from usage.analytics import pace
from usage.analytics.pace import Trend, compute_pace

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 25)  # a Wednesday


def days_before(values: list, today: date = TODAY) -> dict:
    """Costs for the days just before `today`, oldest first."""
    start = today - timedelta(days=len(values))
    return {start + timedelta(days=i): Decimal(str(v)) for i, v in enumerate(values)}


def test_the_daily_average_counts_only_days_with_usage():
    costs = days_before([10, 0, 20, 0, 30, 0, 0])
    result = compute_pace(costs, TODAY)
    assert result.daily_average == Decimal("20.00")
    assert result.active_days == 3
    # Projections use the cost per calendar day, idle days included: 60 / 7.
    assert result.daily_rate == pytest.approx(Decimal(60) / 7)


def test_a_flat_history_is_stable_with_no_anomalies():
    result = compute_pace(days_before([10] * 28), TODAY)
    assert (result.trend, result.slope, result.anomalies) == (Trend.STABLE, 0, [])


def test_a_slope_of_at_least_five_percent_of_the_mean_per_day_is_increasing():
    # 1..14: mean 7.5, slope 1/day = 13% of the mean.
    assert compute_pace(days_before(list(range(1, 15))), TODAY).trend == Trend.INCREASING
    assert compute_pace(days_before(list(range(14, 0, -1))), TODAY).trend == Trend.DECREASING


def test_a_slope_under_the_threshold_is_stable():
    # Mean 100, slope 4 per day: 4% of the mean.
    values = [100 + 4 * (i - 3) for i in range(7)]
    result = compute_pace(days_before(values), TODAY)
    assert result.slope == Decimal("4.00")
    assert result.trend == Trend.STABLE


def test_fewer_than_seven_days_give_no_trend():
    assert compute_pace(days_before([5, 6, 7]), TODAY).trend == Trend.UNKNOWN


def test_a_day_two_standard_deviations_away_is_an_anomaly():
    values = [10] * 13 + [100]
    result = compute_pace(days_before(values), TODAY)
    assert [(a.day, a.cost_usd) for a in result.anomalies] == [
        (TODAY - timedelta(days=1), Decimal(100))
    ]
    assert result.anomalies[0].z >= 2


def test_today_is_an_anomaly_only_once_it_is_already_far_above_the_mean():
    history = days_before([10, 12] * 7)
    assert compute_pace({**history, TODAY: Decimal(11)}, TODAY).anomalies == []
    spiking = compute_pace({**history, TODAY: Decimal(80)}, TODAY)
    assert [a.day for a in spiking.anomalies] == [TODAY]


def test_days_before_the_first_usage_do_not_dilute_the_pace():
    result = compute_pace(days_before([10, 10]), TODAY)
    assert result.history_days == 2
    assert result.daily_rate == 10


def test_an_earlier_first_day_counts_the_idle_days_since():
    result = compute_pace(days_before([10, 10]), TODAY, first_day=TODAY - timedelta(days=4))
    assert result.history_days == 4
    assert result.daily_rate == 5


def test_projections_add_the_pace_for_every_day_left():
    # Wednesday: Monday and Tuesday spent 10 each, today 4 so far, pace 10 per day.
    costs = {**days_before([10] * 28), TODAY: Decimal(4)}
    result = compute_pace(costs, TODAY)
    assert result.week_start == date(2026, 11, 23)
    assert result.week_spent == 24
    # 20 before today + max(4, 10) today + 10 x 4 days left (Thursday to Sunday).
    assert result.projected_week_total == Decimal("70.00")
    # November: 24 days of 10, then max(4, 10) today and 10 x 5 days left.
    assert result.month_spent == 24 * 10 + 4
    assert result.projected_month_total == Decimal("300.00")


def test_a_first_day_of_use_projects_from_today_alone():
    result = compute_pace({TODAY: Decimal(6)}, TODAY)
    assert result.daily_rate == 6 and result.trend == Trend.UNKNOWN
    assert result.projected_week_total == Decimal("30.00")


def test_no_usage_at_all_projects_nothing():
    result = compute_pace({}, TODAY)
    assert (result.daily_average, result.projected_month_total) == (0, 0)
    assert result.run_out_day(Decimal(100), date(2026, 11, 1), date(2026, 11, 30), 0) is None


def test_run_out_day_is_when_spending_at_this_pace_reaches_the_amount():
    result = compute_pace({**days_before([10] * 14), TODAY: Decimal(4)}, TODAY)
    start, end = date(2026, 11, 1), date(2026, 11, 30)
    # 20 left: today's pace has 6 more to spend, the other 14 take Thursday and Friday.
    assert result.run_out_day(Decimal(264), start, end, Decimal(244)) == date(2026, 11, 27)
    # Already spent: today.
    assert result.run_out_day(Decimal(200), start, end, Decimal(244)) == TODAY
    # Reached only after the period ends: never in this period.
    assert result.run_out_day(Decimal(1000), start, end, Decimal(244)) is None
    # Within what is left of today's pace: today.
    assert result.run_out_day(Decimal(248), start, end, Decimal(244)) == TODAY


def test_tooltip_text_states_the_method():
    for words in ("days with usage", "least-squares", "5%", "2 standard deviations", "idle days"):
        assert words in pace.PACE_TOOLTIP


def test_pace_of_a_member_team_and_project_reads_their_facts(member, admin):
    webapp = ProjectFactory(team=member.team, key="-home-dev-src-webapp")
    clone = ProjectFactory(team=member.team, key="-home-dev-work-webapp", alias_of=webapp)
    mine, theirs = MachineFactory(owner=member), MachineFactory(owner=admin)
    for offset in range(1, 8):
        day = TODAY - timedelta(days=offset)
        daily(mine, day, 3, project=webapp)
        daily(mine, day, 1, project=clone)
        daily(theirs, day, 6, project=ProjectFactory(team=member.team, key="-srv-api"))

    assert pace.pace_for_member(member, TODAY).daily_average == Decimal("4.00")
    assert pace.pace_for_team(member.team, TODAY).daily_average == Decimal("10.00")
    assert pace.pace_for_project(webapp, TODAY).daily_average == Decimal("4.00")
    assert pace.pace_for_project(clone, TODAY).daily_average == Decimal("4.00")
    assert pace.pace_for_project(webapp, TODAY, member=admin).daily_average == 0


def test_pace_reads_a_bounded_number_of_queries(member, django_assert_max_num_queries):
    machine = MachineFactory(owner=member)
    for offset in range(40):
        daily(machine, TODAY - timedelta(days=offset), 2)
    with django_assert_max_num_queries(2):
        result = pace.pace_for_member(member, TODAY)
    assert result.history_days == 28
