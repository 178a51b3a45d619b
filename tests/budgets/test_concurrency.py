"""Several workers at once, on PostgreSQL: one alert, one message per channel.

SQLite serialises every writing transaction (BEGIN IMMEDIATE), so there is no race to test.
"""

import threading
from datetime import UTC, date, datetime

import pytest
from django.db import connection

from accounts.models import Team
from budgets import evaluate, notify
from budgets.models import Alert, AlertKind, Delivery, Report
from budgets.reports import schedule
from tests.budgets.conftest import spend
from tests.factories import (
    chat_channel,
    email_channel,
    machine_for,
    make_budget,
    webhook_channel,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (DATABASE_URL): SQLite runs one writer at a time, so no race",
    ),
]

WORKERS = 6


def run_at_once(target, *args) -> list:
    """Start WORKERS threads that call target(*args) at the same moment; collect results."""
    barrier = threading.Barrier(WORKERS)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            results.append(target(*args))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_several_evaluations_at_once_create_one_alert_and_send_once_per_channel(
    team_a, member, smtp_server, receiver
):
    mail = email_channel(team_a)
    hook = webhook_channel(team_a, receiver)
    budget = make_budget(team_a, "100", channels=[mail, hook], forecast_alerts=False)
    spend(machine_for(member), date.today(), "95")

    results = run_at_once(evaluate.evaluate_team, team_a.pk)

    assert sorted(len(fired) for fired in results) == [0] * (WORKERS - 1) + [1]
    assert Alert.objects.filter(budget=budget).count() == 1
    assert Delivery.objects.count() == 2
    assert len(smtp_server.messages) == 1
    assert len(receiver.accepted) == 1


def test_several_workers_sending_one_delivery_send_it_once(team_a, receiver):
    hook = webhook_channel(team_a, receiver)
    budget = make_budget(team_a, "100", channels=[hook])
    alert = Alert.objects.create(
        team=team_a,
        kind=AlertKind.THRESHOLD,
        budget=budget,
        period_start=date(2026, 11, 1),
        threshold=90,
        data={
            "budget": "API server",
            "scope": "Whole team",
            "period": "month",
            "period_start": "2026-11-01",
            "period_end": "2026-11-30",
            "spent_usd": "95.00",
            "amount_usd": "100.00",
            "percent": 95.0,
            "threshold": 90,
        },
    )
    delivery = Delivery.objects.create(alert=alert, channel=hook)

    outcomes = run_at_once(notify.deliver, delivery.pk)

    assert sorted(o.status if o else "" for o in outcomes) == [""] * (WORKERS - 1) + ["sent"]
    assert len(receiver.requests) == 1


def test_several_beat_runs_at_once_make_each_report_once(
    team_a, owner, admin, member, smtp_server, chat_receiver
):
    Team.objects.filter(pk=team_a.pk).update(created_at=datetime(2026, 9, 1, tzinfo=UTC))
    chat_channel(team_a, "slack", chat_receiver.url(), weekly_digest=True, monthly_report=True)
    spend(machine_for(member), date(2026, 11, 17), "40")
    monday = datetime(2026, 11, 23, 7, 5, tzinfo=UTC)

    results = run_at_once(schedule.send_due_reports, monday)

    # The weekly digest and October's chargeback report, each made by exactly one worker.
    assert sum(results) == 2
    assert Report.objects.count() == 2
    # Two reports to the owner and the admin by email, and to the one chat channel.
    assert len(smtp_server.messages) == 4
    assert len(chat_receiver.bodies) == 2
