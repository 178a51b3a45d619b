"""The explorer's chart, table and CSV keep the periods without usage, as zero rows."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine

from tests.conftest import login
from tests.dashboards.conftest import NOW
from tests.factories import MachineFactory, daily

pytestmark = pytest.mark.django_db

SINCE, UNTIL = date(2026, 11, 5), date(2026, 11, 16)
EMPTY = {date(2026, 11, 9), date(2026, 11, 15)}


@pytest.fixture(autouse=True)
def _at_now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def gappy(member):
    """$2 a day on Nov 5-16 but Nov 9 and 15 on one of the member's machines."""
    machine = MachineFactory(owner=member, name="gappy")
    day = SINCE
    while day <= UNTIL:
        if day not in EMPTY:
            daily(machine, day, cost="2.00")
        day += timedelta(days=1)
    return machine


RANGE = {"range": "custom", "since": SINCE.isoformat(), "until": UNTIL.isoformat()}


def test_the_table_has_a_row_for_every_day_of_the_range(gappy, member):
    response = login(member).get("/usage/", RANGE)
    rows = response.context["data"]["results"]
    # Nov 5..16 inclusive is 12 days.
    assert [r["key"] for r in rows] == [(SINCE + timedelta(days=n)).isoformat() for n in range(12)]
    zero = [r["key"] for r in rows if not r["cost_usd"] and not r["total_tokens"]]
    assert zero == ["2026-11-09", "2026-11-15"]
    assert response.context["data"]["totals"]["cost_usd"] == Decimal("2.00") * 10
    html = response.content.decode()
    assert 'data-key="2026-11-09"' in html
    assert "No usage matches these filters" not in html


def test_the_csv_is_the_table_zero_rows_included(gappy, member):
    response = login(member).get("/usage/export.csv", RANGE)
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    days = [row[1] for row in rows[1:-1]]
    assert len(days) == 12
    by_day = {row[1]: row for row in rows[1:-1]}
    assert by_day["2026-11-15"][-1] == "0.00"
    assert rows[-1][0] == "Total" and rows[-1][-1] == "20.00"


@pytest.mark.parametrize(
    ("period", "keys"),
    [
        # Nov 5 is a Thursday: the weeks from Monday Nov 2, Nov 9 and Nov 16.
        ("week", ["2026-11-02", "2026-11-09", "2026-11-16"]),
        ("month", ["2026-09", "2026-10", "2026-11"]),
    ],
)
def test_weeks_and_months_without_usage_are_zero_rows(member, period, keys):
    machine = MachineFactory(owner=member, name="rare")
    daily(machine, date(2026, 9, 20), cost="1.00")
    daily(machine, date(2026, 11, 5), cost="1.00")
    daily(machine, date(2026, 11, 16), cost="1.00")
    since = "2026-09-20" if period == "month" else "2026-11-05"
    response = login(member).get(
        "/usage/", {"range": "custom", "since": since, "until": "2026-11-16", "period": period}
    )
    rows = response.context["data"]["results"]
    assert [r["key"] for r in rows] == keys
    assert [r["cost_usd"] for r in rows][1] == 0


def test_the_team_total_by_day_fills_the_gaps_too(gappy, admin, member):
    response = login(admin).get("/usage/", {**RANGE, "scope": "team"})
    rows = response.context["data"]["results"]
    assert len(rows) == 12
    assert {r["key"] for r in rows if not r["cost_usd"]} == {"2026-11-09", "2026-11-15"}


def test_a_range_without_usage_says_so(member):
    MachineFactory(owner=member, name="idle")
    response = login(member).get("/usage/", RANGE)
    assert len(response.context["data"]["results"]) == 12
    assert "No usage matches these filters" in response.content.decode()


def test_the_default_range_is_thirty_team_days(gappy, member, team_a):
    # 15:30 UTC on Nov 24 is Nov 25 at UTC+14: the 30 days end on the team's today.
    team_a.timezone = "Pacific/Kiritimati"
    team_a.save()
    rows = login(member).get("/usage/").context["data"]["results"]
    assert len(rows) == 30
    assert (rows[0]["key"], rows[-1]["key"]) == ("2026-10-27", "2026-11-25")
