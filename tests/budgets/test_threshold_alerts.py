"""Budget thresholds, delivered through a real SMTP server and a real signed-webhook receiver."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError

from budgets import evaluate, notify
from budgets.models import Alert, AlertKind, Budget, Delivery
from tests.budgets.conftest import spend
from tests.factories import email_channel, machine_for, make_budget, project_for, webhook_channel

pytestmark = pytest.mark.django_db

NOV_20 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOV_20, tick=True) as traveller:
        yield traveller


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Evaluate the team as the worker would, sending queued deliveries after commit."""

    def _run(team, times: int = 1):
        fired = []
        for _ in range(times):
            with django_capture_on_commit_callbacks(execute=True):
                fired += evaluate.evaluate_team(team.pk)
        return fired

    return _run


@pytest.fixture
def setup(team_a, member, smtp_server, receiver, clock):
    mail = email_channel(team_a, addresses=["finance@a.example"], members=[member])
    hook = webhook_channel(team_a, receiver)
    budget = make_budget(team_a, "500", channels=[mail, hook], forecast_alerts=False)
    laptop = machine_for(member)
    return budget, laptop


def test_crossing_90_then_100_percent_sends_exactly_two_alerts_per_channel(
    setup, team_a, smtp_server, receiver, run
):
    _, laptop = setup
    spend(laptop, date(2026, 11, 3), "300")
    spend(laptop, date(2026, 11, 19), "160.12")
    run(team_a)

    assert smtp_server.subjects() == ["Budget 'API server' at 92% — $460.12 of $500.00"]
    assert sorted(smtp_server.recipients[0]) == ["finance@a.example", "member@a.example"]
    assert len(receiver.accepted) == 1
    body = receiver.accepted[0].json
    assert body["type"] == "budget.threshold"
    assert body["text"].startswith("Budget 'API server' at 92%")
    assert body["data"]["threshold"] == 90
    assert body["data"]["spent_usd"] == "460.12"

    spend(laptop, date(2026, 11, 20), "45")
    run(team_a)
    assert smtp_server.subjects()[1] == "Budget 'API server' at 101% — $505.12 of $500.00"
    assert [r.json["data"]["threshold"] for r in receiver.accepted] == [90, 100]

    run(team_a, times=5)
    assert len(smtp_server.messages) == 2
    assert len(receiver.requests) == 2
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 4


def test_the_email_has_a_plain_text_and_an_html_part_and_links_to_the_budgets_page(
    setup, team_a, smtp_server, run, settings
):
    _, laptop = setup
    spend(laptop, date(2026, 11, 19), "480")
    run(team_a)

    (message,) = smtp_server.messages
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "$480.00 of its $500.00 month budget" in plain
    assert f"{settings.SITE_URL}/budgets/" in plain
    assert f'href="{settings.SITE_URL}/budgets/"' in html
    assert message["Auto-Submitted"] == "auto-generated"


def test_each_webhook_attempt_of_one_delivery_carries_the_same_id_and_a_valid_signature(
    setup, team_a, receiver, run, clock
):
    _, laptop = setup
    receiver.answer(503)
    spend(laptop, date(2026, 11, 19), "480")
    run(team_a)
    clock.shift(timedelta(hours=1))
    notify.sweep()

    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.headers["webhook-id"].startswith("msg_")
    assert second.verified
    assert first.headers["webhook-timestamp"] != second.headers["webhook-timestamp"]


def test_jumping_past_both_thresholds_at_once_sends_one_message_naming_the_highest(
    setup, team_a, smtp_server, receiver, run
):
    _, laptop = setup
    spend(laptop, date(2026, 11, 19), "640")
    run(team_a, times=3)

    assert smtp_server.subjects() == ["Budget 'API server' at 128% — $640.00 of $500.00"]
    assert [r.json["data"]["threshold"] for r in receiver.accepted] == [100]
    # The 90 % alert is recorded, so it never fires later in the month.
    assert sorted(Alert.objects.values_list("threshold", flat=True)) == [90, 100]


def test_a_new_month_starts_fresh(setup, team_a, smtp_server, receiver, run, clock):
    budget, laptop = setup
    spend(laptop, date(2026, 11, 19), "470")
    run(team_a)
    assert len(smtp_server.messages) == 1

    clock.move_to(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    run(team_a)
    assert len(smtp_server.messages) == 1, "December has no spend yet"

    spend(laptop, date(2026, 12, 1), "455")
    run(team_a, times=2)
    assert len(smtp_server.messages) == 2
    assert smtp_server.subjects()[1] == "Budget 'API server' at 91% — $455.00 of $500.00"
    assert list(
        Alert.objects.filter(budget=budget)
        .order_by("period_start")
        .values_list("period_start", flat=True)
    ) == [date(2026, 11, 1), date(2026, 12, 1)]


def test_months_follow_the_teams_reporting_timezone(team_a, member):
    team_a.timezone = "Pacific/Auckland"
    team_a.save()
    budget = make_budget(team_a, "100", forecast_alerts=False)
    laptop = machine_for(member)
    spend(laptop, date(2026, 11, 30), "95")
    # 2026-11-30 12:00 UTC is already December 1st in Auckland: November's spend is behind us.
    assert evaluate.evaluate_budget(budget, datetime(2026, 11, 30, 12, 0, tzinfo=UTC)) == []
    fired = evaluate.evaluate_budget(budget, datetime(2026, 11, 30, 10, 0, tzinfo=UTC))
    assert [a.period_start for a in fired] == [date(2026, 11, 1)]


def test_weekly_budgets_run_monday_to_sunday(team_a, member):
    budget = make_budget(team_a, "100", period="week", forecast_alerts=False)
    laptop = machine_for(member)
    spend(laptop, date(2026, 11, 15), "95")  # Sunday, the week before
    spend(laptop, date(2026, 11, 16), "20")  # Monday
    assert evaluate.evaluate_budget(budget, NOV_20) == []
    spend(laptop, date(2026, 11, 22), "75")  # Sunday of this week
    (alert,) = evaluate.evaluate_budget(budget, NOV_20)
    assert alert.period_start == date(2026, 11, 16)
    assert alert.data["spent_usd"] == "95.00"


def test_a_project_budget_counts_the_project_and_its_aliases_only(team_a, member, admin):
    api = project_for(team_a, "-home-dev-src-api-server", display_name="api-server")
    clone = project_for(team_a, "-home-dev-work-api-server", alias_of=api)
    other = project_for(team_a, "-home-dev-src-webapp")
    budget = make_budget(
        team_a, "100", scope="project", project=api, thresholds=[50], forecast_alerts=False
    )
    spend(machine_for(member), date(2026, 11, 18), "30", project=api)
    spend(machine_for(admin, "desk"), date(2026, 11, 18), "25", project=clone)
    spend(machine_for(admin, "desk2"), date(2026, 11, 18), "500", project=other)

    (alert,) = evaluate.evaluate_budget(budget, NOV_20)
    assert alert.data["spent_usd"] == "55.00"
    assert alert.data["scope"] == "Project api-server"


def test_a_member_budget_counts_only_that_members_machines(team_a, member, admin):
    budget = make_budget(
        team_a, "100", scope="member", member=member, thresholds=[50], forecast_alerts=False
    )
    spend(machine_for(admin), date(2026, 11, 18), "400")
    assert evaluate.evaluate_budget(budget, NOV_20) == []
    spend(machine_for(member, "tower"), date(2026, 11, 18), "51")
    (alert,) = evaluate.evaluate_budget(budget, NOV_20)
    assert alert.data["spent_usd"] == "51.00"


def test_edited_thresholds_fire_once_each_in_the_period(team_a, member):
    budget = make_budget(team_a, "100", forecast_alerts=False)
    spend(machine_for(member), date(2026, 11, 18), "80")
    assert evaluate.evaluate_budget(budget, NOV_20) == []
    budget.thresholds = [75, 90, 100]
    budget.save()
    assert [a.threshold for a in evaluate.evaluate_budget(budget, NOV_20)] == [75]
    assert evaluate.evaluate_budget(budget, NOV_20) == []


def test_an_inactive_budget_and_a_disabled_channel_send_nothing(
    team_a, member, smtp_server, run, clock
):
    mail = email_channel(team_a)
    mail.disabled_at = NOV_20
    mail.save()
    make_budget(team_a, "100", channels=[mail], forecast_alerts=False)
    make_budget(team_a, "100", name="Paused", channels=[], active=False, forecast_alerts=False)
    spend(machine_for(member), date(2026, 11, 18), "200")
    run(team_a)
    assert smtp_server.messages == []
    assert Alert.objects.filter(kind=AlertKind.THRESHOLD).count() == 2  # 90 and 100, "API server"
    assert not Delivery.objects.exists()


def test_a_threshold_added_below_one_already_crossed_is_recorded_but_not_sent(
    team_a, member, smtp_server, run, clock
):
    budget = make_budget(
        team_a, "100", channels=[email_channel(team_a)], thresholds=[100], forecast_alerts=False
    )
    spend(machine_for(member), date(2026, 11, 18), "120")
    run(team_a)
    budget.thresholds = [80, 100]
    budget.save()
    run(team_a)
    assert smtp_server.subjects() == ["Budget 'API server' at 120% — $120.00 of $100.00"]
    covered = Alert.objects.get(threshold=80)
    assert covered.data["superseded_by"] == 100
    assert not covered.deliveries.exists()


@pytest.mark.parametrize("bad", [[], "90", [90, "100"], [0], [1001], [True], [90.5]])
def test_thresholds_edited_as_json_in_the_admin_are_validated(team_a, bad):
    budget = make_budget(team_a, "100")
    budget.thresholds = bad
    with pytest.raises(ValidationError):
        budget.full_clean()


def test_evaluation_skips_threshold_values_that_slipped_past_validation(team_a, member):
    budget = make_budget(team_a, "100", forecast_alerts=False)
    Budget.objects.filter(pk=budget.pk).update(thresholds=[90, "oops", None])
    budget.refresh_from_db()
    spend(machine_for(member), date(2026, 11, 18), "95")
    assert [a.threshold for a in evaluate.evaluate_budget(budget, NOV_20)] == [90]
