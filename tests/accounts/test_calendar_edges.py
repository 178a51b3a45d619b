"""The team's days, weeks and months at their exact edges (local midnight, ±1 ms), in zones with
daylight saving, half-hour offsets and date-line crossings; the budget periods built on them."""

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from accounts.models import Team
from budgets.models import period_bounds

MS = timedelta(milliseconds=1)
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Lord_Howe",  # daylight saving of half an hour
    "Pacific/Chatham",  # +12:45 / +13:45
    "Pacific/Kiritimati",  # +14:00
]
zones = st.sampled_from(ZONES)
# Ten years around now, so every daylight-saving change of those zones comes up.
days = st.dates(min_value=date(2022, 1, 1), max_value=date(2031, 12, 31))


@given(zones, days)
def test_a_team_day_begins_exactly_at_its_local_midnight(zone, day):
    team = Team(timezone=zone)
    start = team.day_start(day)
    assert team.today(start - MS) == day - timedelta(days=1)
    assert team.today(start) == day
    assert team.today(start + MS) == day


@given(zones, days)
def test_day_bounds_end_where_the_next_day_begins_and_include_its_last_millisecond(zone, day):
    team = Team(timezone=zone)
    start, end = team.day_bounds(day, day)
    assert end == team.day_start(day + timedelta(days=1))
    assert team.today(end - MS) == day
    assert team.today(end) == day + timedelta(days=1)
    # 23, 24 or 25 hours (Lord Howe: 23.5 or 24.5), never anything else.
    assert timedelta(hours=23) <= end - start <= timedelta(hours=25)


@given(zones, days)
def test_a_budget_week_turns_at_local_monday_midnight(zone, day):
    team = Team(timezone=zone)
    monday = day - timedelta(days=day.weekday())
    turn = team.day_start(monday)
    before = period_bounds("week", team.today(turn - MS))
    at = period_bounds("week", team.today(turn))
    assert before == (monday - timedelta(days=7), monday - timedelta(days=1))
    assert at == (monday, monday + timedelta(days=6))
    assert period_bounds("week", team.today(turn + MS)) == at


@given(zones, days)
def test_a_budget_month_turns_at_local_midnight_on_the_first(zone, day):
    team = Team(timezone=zone)
    first = day.replace(day=1)
    turn = team.day_start(first)
    previous_last = first - timedelta(days=1)
    assert period_bounds("month", team.today(turn - MS)) == (
        previous_last.replace(day=1),
        previous_last,
    )
    start, end = period_bounds("month", team.today(turn))
    assert start == first and (end + timedelta(days=1)).day == 1 and end.month == first.month
