"""Date presets (team days) and the change against the previous period on the stat cards."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from dashboards.periods import change, preset_range, previous_period
from tests.conftest import login
from tests.dashboards.conftest import NOW
from tests.factories import daily

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _at_now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.mark.parametrize(
    ("preset", "today", "expected"),
    [
        ("7d", date(2026, 11, 24), (date(2026, 11, 18), date(2026, 11, 24))),
        ("30d", date(2026, 11, 24), (date(2026, 10, 26), date(2026, 11, 24))),
        ("mtd", date(2026, 11, 24), (date(2026, 11, 1), date(2026, 11, 24))),
        ("last_month", date(2026, 11, 24), (date(2026, 10, 1), date(2026, 10, 31))),
        ("last_month", date(2027, 1, 1), (date(2026, 12, 1), date(2026, 12, 31))),
        ("last_month", date(2028, 3, 31), (date(2028, 2, 1), date(2028, 2, 29))),
    ],
)
def test_presets_count_back_from_today(preset, today, expected):
    assert preset_range(preset, today) == expected


def test_the_previous_period_has_as_many_days_and_ends_the_day_before():
    assert previous_period(date(2026, 11, 1), date(2026, 11, 24)) == (
        date(2026, 10, 8),
        date(2026, 10, 31),
    )
    assert previous_period(date(2026, 11, 24), date(2026, 11, 24)) == (
        date(2026, 11, 23),
        date(2026, 11, 23),
    )


@pytest.mark.parametrize(
    ("current", "previous", "text", "css"),
    [
        ("15", "10", "↑ 50%", "trend-up"),
        ("9.55", "10", "↓ 4.5%", "trend-down"),
        ("5", "0", "new", "trend-up"),
        ("0", "0", "no change", "trend-flat"),
        ("10", "10", "no change", "trend-flat"),
        ("0", "10", "↓ 100%", "trend-down"),
    ],
)
def test_the_change_reads_as_an_arrow_and_a_percentage(current, previous, text, css):
    figure = change(Decimal(current), Decimal(previous), date(2026, 1, 1), date(2026, 1, 2))
    assert figure.text == text
    assert figure.css == css


def test_the_overview_period_follows_the_preset_and_compares_with_the_days_before(
    populated, member
):
    # The fixture's rows are Nov 20-24 ($1.50 a machine a day); one more on Nov 11 is in the
    # 7 days before the last 7 (Nov 11-17).
    daily(populated.machines["member"][0], date(2026, 11, 11), cost="3.00")
    response = login(member).get("/", {"range": "7d"})
    summary = response.context["summary"]
    assert (summary.since, summary.until) == (date(2026, 11, 18), date(2026, 11, 24))
    assert summary.period.cost_usd == Decimal("22.5")
    period = summary.changes["period"]
    assert period.previous == Decimal("3")
    assert (period.since, period.until) == (date(2026, 11, 11), date(2026, 11, 17))
    # (22.50 - 3.00) / 3.00 = 650 %
    assert period.text == "↑ 650%"
    html = response.content.decode()
    assert "Last 7 days" in html
    assert "↑ 650%" in html
    # Today ($4.50) against yesterday ($4.50); the week so far (Mon-Tue, $9) against the two
    # days before it (Sat-Sun, $9).
    assert summary.changes["today"].text == "no change"
    assert summary.changes["week"].previous == Decimal("9")


def test_without_a_preset_the_period_is_the_month_to_date(populated, member):
    summary = login(member).get("/").context["summary"]
    assert (summary.since, summary.until) == (date(2026, 11, 1), date(2026, 11, 24))
    assert summary.period == summary.month
    # Nothing in the 24 days before November: the month's spend is new.
    assert summary.changes["period"].text == "new"


def test_last_month_and_custom_dates(populated, member):
    client = login(member)
    last = client.get("/", {"range": "last_month"}).context["summary"]
    assert (last.since, last.until) == (date(2026, 10, 1), date(2026, 10, 31))
    assert last.period.cost_usd == 0
    custom = client.get(
        "/", {"range": "custom", "since": "2026-11-23", "until": "2026-11-24"}
    ).context["summary"]
    assert custom.period.cost_usd == Decimal("9")
    assert custom.changes["period"].previous == Decimal("9")


def test_presets_count_in_the_team_calendar(populated, member, team_a):
    # 15:30 UTC on Nov 24 is already Nov 25 at UTC+14.
    team_a.timezone = "Pacific/Kiritimati"
    team_a.save()
    response = login(member).get("/usage/", {"range": "7d"})
    assert response.context["params"]["since"] == date(2026, 11, 19)
    assert response.context["params"]["until"] == date(2026, 11, 25)


def test_the_explorer_shows_the_preset_dates_in_its_fields(populated, member):
    response = login(member).get("/usage/", {"range": "7d", "since": "nonsense"})
    filters = response.context["filters"]
    # A preset replaces what the date fields held, so a stale bad date is no error.
    assert not filters.errors
    html = response.content.decode()
    assert 'value="2026-11-18"' in html
    assert 'data-since="2026-11-18"' in html
    assert response.context["change"].since == date(2026, 11, 11)


def test_dates_without_a_preset_are_a_custom_range(populated, member):
    response = login(member).get("/usage/", {"since": "2026-11-22", "until": "2026-11-24"})
    assert response.context["filters"].value("range") == "custom"
    assert response.context["data"]["totals"]["cost_usd"] == Decimal("13.5")


def test_an_unknown_preset_is_an_error_and_the_default_range_stays(populated, member):
    response = login(member).get("/usage/", {"range": "forever"})
    assert "range" in response.context["filters"].errors
    assert response.context["params"]["since"] == date(2026, 10, 26)


def test_blocks_and_sessions_take_presets(populated, member):
    client = login(member)
    blocks = client.get("/blocks/", {"range": "last_month"})
    assert (blocks.context["since"], blocks.context["until"]) == (
        date(2026, 10, 1),
        date(2026, 10, 31),
    )
    assert blocks.context["rows"] == []
    everything = client.get("/sessions/").context["totals"]["count"]
    recent = client.get("/sessions/", {"range": "custom", "since": "2026-11-24"})
    assert recent.context["totals"]["count"] < everything
    week = client.get("/sessions/", {"range": "7d"}).context["totals"]["count"]
    assert week == everything == 15


def test_the_team_page_follows_the_period(populated, admin):
    response = login(admin).get(
        "/team/", {"range": "custom", "since": "2026-11-24", "until": "2026-11-24"}
    )
    members = response.context["members"]
    # Three members with three machines each at $1.50 on the day.
    assert {m["cost_usd"] for m in members} == {Decimal("4.5")}
    drill = login(admin).get(
        "/team/", {"member": str(populated.machines["member"][0].owner.public_id), "range": "7d"}
    )
    assert drill.status_code == 200
    assert drill.context["summary"].period.cost_usd == Decimal("22.5")


@pytest.mark.parametrize(
    ("query", "since", "until", "label"),
    [
        # A start without an end runs to today (Nov 24).
        (
            {"since": "2026-10-01"},
            date(2026, 10, 1),
            date(2026, 11, 24),
            "Oct 1, 2026 to Nov 24, 2026",
        ),
        (
            {"range": "custom", "since": "2026-10-01"},
            date(2026, 10, 1),
            date(2026, 11, 24),
            "Oct 1, 2026 to Nov 24, 2026",
        ),
        # An end without a start starts on the 1st of its month.
        (
            {"until": "2026-11-21"},
            date(2026, 11, 1),
            date(2026, 11, 21),
            "Nov 1, 2026 to Nov 21, 2026",
        ),
        # A bad value: the default period, and the label says so.
        ({"since": "abc"}, date(2026, 11, 1), date(2026, 11, 24), "Month to date"),
        (
            {"since": "2026-10-01", "until": "abc"},
            date(2026, 11, 1),
            date(2026, 11, 24),
            "Month to date",
        ),
        (
            {"range": "forever", "since": "2026-10-01"},
            date(2026, 11, 1),
            date(2026, 11, 24),
            "Month to date",
        ),
    ],
)
@pytest.mark.parametrize("page", ["/", "/team/"])
def test_the_period_card_names_the_days_of_its_figure(
    populated, admin, page, query, since, until, label
):
    # The fixture: $1.50 a machine a day, Nov 20-24, 9 machines in the team, 3 of them the
    # admin's. Two more days of the admin's: Oct 1 ($2) and Oct 31 ($3).
    laptop = populated.machines["admin"][0]
    daily(laptop, date(2026, 10, 1), cost="2.00")
    daily(laptop, date(2026, 10, 31), cost="3.00")
    machines = 3 if page == "/" else 9
    per_day = Decimal("1.50") * machines
    expected = sum(
        (per_day for day in range(20, 25) if since <= date(2026, 11, day) <= until), Decimal(0)
    )
    expected += sum(
        (
            Decimal(c)
            for d, c in ((date(2026, 10, 1), "2"), (date(2026, 10, 31), "3"))
            if since <= d <= until
        ),
        Decimal(0),
    )
    response = login(admin).get(page, query)
    summary = response.context["summary"]
    assert (summary.since, summary.until) == (since, until)
    assert summary.period.cost_usd == expected
    period = response.context["period"]
    assert period.range_label == label
    html = response.content.decode()
    assert f'<span class="label">{label}</span>' in html
    assert f'value="{since.isoformat()}"' in html
    assert f'value="{until.isoformat()}"' in html
    if label == "Month to date":
        assert "so the page shows the month to date" in html
    else:
        assert not period.errors


@pytest.mark.parametrize(
    ("since", "until", "preset", "expected"),
    [
        # Month to date: the same days of the month before.
        (date(2026, 11, 1), date(2026, 11, 29), "mtd", (date(2026, 10, 1), date(2026, 10, 29))),
        # ... clipped to that month's length (February 2027 has 28 days).
        (date(2027, 3, 1), date(2027, 3, 31), "mtd", (date(2027, 2, 1), date(2027, 2, 28))),
        (date(2028, 3, 1), date(2028, 3, 30), "mtd", (date(2028, 2, 1), date(2028, 2, 29))),
        (date(2027, 1, 1), date(2027, 1, 5), "mtd", (date(2026, 12, 1), date(2026, 12, 5))),
        # Last month: the calendar month before it.
        (
            date(2026, 10, 1),
            date(2026, 10, 31),
            "last_month",
            (date(2026, 9, 1), date(2026, 9, 30)),
        ),
        (date(2027, 3, 1), date(2027, 3, 31), "last_month", (date(2027, 2, 1), date(2027, 2, 28))),
        # Rolling presets and custom ranges: as many days just before.
        (date(2026, 11, 23), date(2026, 11, 29), "7d", (date(2026, 11, 16), date(2026, 11, 22))),
        (date(2026, 10, 31), date(2026, 11, 29), "30d", (date(2026, 10, 1), date(2026, 10, 30))),
        (date(2026, 11, 1), date(2026, 11, 29), "custom", (date(2026, 10, 3), date(2026, 10, 31))),
        (date(2026, 10, 1), date(2026, 10, 31), None, (date(2026, 8, 31), date(2026, 9, 30))),
    ],
)
def test_calendar_presets_compare_with_the_calendar(since, until, preset, expected):
    assert previous_period(since, until, preset) == expected


@pytest.mark.parametrize("page", ["/", "/team/", "/usage/"])
def test_the_month_to_date_and_last_month_cards_compare_with_the_calendar(populated, admin, page):
    # Today is Nov 24. Oct 1-24 is the month to date's comparison: Oct 24 counts, Oct 25
    # does not (it would in the 24 days before Nov 1, Oct 8-31). September is last month's:
    # Sep 1 counts, Aug 31 does not (it would in the 31 days before Oct 1).
    laptop = populated.machines["admin"][0]
    for day, cost in (
        (date(2026, 8, 31), "100.00"),
        (date(2026, 9, 1), "7.00"),
        (date(2026, 10, 1), "2.00"),
        (date(2026, 10, 24), "3.00"),
        (date(2026, 10, 25), "50.00"),
    ):
        daily(laptop, day, cost=cost)
    client = login(admin)
    for preset, since, until, previous in (
        ("mtd", date(2026, 10, 1), date(2026, 10, 24), Decimal("5")),
        ("last_month", date(2026, 9, 1), date(2026, 9, 30), Decimal("7")),
    ):
        response = client.get(page, {"range": preset, "scope": "me"})
        period = (
            response.context["change"]
            if page == "/usage/"
            else response.context["summary"].changes["period"]
        )
        assert (period.since, period.until) == (since, until)
        assert period.previous == previous
