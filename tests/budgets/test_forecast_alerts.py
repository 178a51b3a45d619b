"""Forecast alerts: the analytics pace says when a budget will be passed, once."""

from datetime import date

import pytest

from budgets.models import Alert, AlertKind
from tests.budgets.conftest import spend
from tests.factories import email_channel, machine_for, make_budget

pytestmark = pytest.mark.django_db


def test_the_pace_forecast_alerts_once_naming_the_day_the_budget_will_be_passed(
    team_a, member, smtp_server, clock, run
):
    budget = make_budget(team_a, "300", channels=[email_channel(team_a)])
    laptop = machine_for(member)
    for day in range(1, 11):
        spend(laptop, date(2026, 11, day), "20")

    fired = run(team_a)
    assert [a.kind for a in fired] == [AlertKind.FORECAST]
    # $200 spent at $20 a day: the remaining $100 is gone five days after today.
    assert fired[0].data["projected_day"] == "2026-11-15"
    assert smtp_server.subjects() == [
        "Budget 'API server' on pace to pass $300.00 on Sunday, Nov 15"
    ]
    body = smtp_server.messages[0].get_body(("plain",)).get_content()
    assert "before the period ends on 2026-11-30" in body

    assert run(team_a) == []
    spend(laptop, date(2026, 11, 10), "90")  # a busier day: still one forecast per period
    assert [a.threshold for a in run(team_a)] == [90]
    assert Alert.objects.filter(budget=budget, kind=AlertKind.FORECAST).count() == 1


def test_a_pace_that_stays_under_the_budget_sends_no_forecast(team_a, member, clock, run):
    make_budget(team_a, "1000")
    laptop = machine_for(member)
    for day in range(1, 11):
        spend(laptop, date(2026, 11, day), "20")
    assert run(team_a) == []


def test_forecast_alerts_can_be_switched_off(team_a, member, clock, run):
    make_budget(team_a, "300", forecast_alerts=False)
    laptop = machine_for(member)
    for day in range(1, 11):
        spend(laptop, date(2026, 11, day), "20")
    assert run(team_a) == []
