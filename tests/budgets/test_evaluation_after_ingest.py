"""Checks after ingest are debounced per team and scoped to what the ingests changed; none is
lost: a change inside a window is checked at its end, and the periodic pass checks the rest."""

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from celery.signals import task_prerun

from budgets.evaluate import changes_since
from budgets.models import Alert, AlertKind, ScopeKind
from budgets.tasks import evaluate_all_teams
from tests.budgets.conftest import spend
from tests.factories import machine_for, make_budget, project_for
from tests.usage.ccusage_runs import envelope
from tests.usage.ingest.helpers import PIPELINE_MACHINE, ingest_reports
from usage.ingest.pipeline import archive, process_batch
from usage.models import DailyUsage, IngestBatch

pytestmark = pytest.mark.django_db

NOV_20 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PROJECT = "-home-dev-src-webapp"


def daily(cost: float) -> dict:
    """`claude daily --instances` with one row on 19 November costing `cost` USD."""
    breakdown = {
        "modelName": "claude-sonnet-4-5-20250929",
        "inputTokens": 10,
        "outputTokens": 20,
        "cacheCreationTokens": 0,
        "cacheReadTokens": 0,
        "cost": cost,
    }
    row = {
        "date": "2026-11-19",
        **{k: v for k, v in breakdown.items() if k.endswith("Tokens")},
        "totalCost": cost,
        "modelBreakdowns": [breakdown],
    }
    return {"claude_daily_instances": {"projects": {PROJECT: [row]}, "totals": {}}}


@pytest.fixture
def evaluations():
    """The budgets.tasks.evaluate_team runs (their keyword arguments), in order."""
    runs: list[dict] = []

    def record(sender=None, kwargs=None, **_):
        if sender.name == "budgets.tasks.evaluate_team":
            runs.append(dict(kwargs or {}))

    task_prerun.connect(record)
    yield runs
    task_prerun.disconnect(record)


@pytest.fixture
def window(settings):
    settings.BUDGET_EVALUATION_DEBOUNCE_SECONDS = 60
    with time_machine.travel(NOV_20, tick=False):
        yield


def sync(member, cost: float):
    """One sync; its derived work runs after commit (call inside captured on-commit)."""
    return ingest_reports(member, daily(cost))


def test_a_burst_of_syncs_is_checked_at_once_then_at_the_windows_end_and_alerts_once(
    team_a, member, window, evaluations, django_capture_on_commit_callbacks
):
    budget = make_budget(team_a, "1", scope=ScopeKind.MEMBER, member=member, forecast_alerts=False)
    for cost in (0.5, 1.5, 2.0):
        # Each sync derived before the next arrives (together, they are derived as one).
        with django_capture_on_commit_callbacks(execute=True):
            sync(member, cost)

    # The first sync is checked at once for its own scope; the two after it fall in its
    # window and are each read back from the batches processed since it opened (Celery runs
    # eagerly here, so "the window's end" is at once).
    assert evaluations[0]["member_ids"] == [member.pk] and "since" not in evaluations[0]
    assert [set(run) for run in evaluations[1:]] == [{"since"}, {"since"}]
    assert evaluations[1]["since"] == NOV_20.isoformat()
    # Crossed by the second sync, recorded once, though the third is checked too.
    alerts = Alert.objects.filter(budget=budget, kind=AlertKind.THRESHOLD)
    assert set(alerts.values_list("threshold", flat=True)) == set(budget.sorted_thresholds)
    assert alerts.count() == len(budget.sorted_thresholds)


def test_the_check_after_a_sync_leaves_other_members_budgets_to_the_periodic_pass(
    team_a, member, admin, window, django_capture_on_commit_callbacks
):
    theirs = make_budget(team_a, "1", scope=ScopeKind.MEMBER, member=admin, forecast_alerts=False)
    spend(machine_for(admin), date(2026, 11, 18), "5")

    with django_capture_on_commit_callbacks(execute=True):
        sync(member, 0.25)

    # The sync moved only the member's figures: the admin's budget was not checked.
    assert not Alert.objects.filter(budget=theirs).exists()
    with django_capture_on_commit_callbacks(execute=True):
        evaluate_all_teams.delay()
    assert Alert.objects.filter(budget=theirs, kind=AlertKind.THRESHOLD).exists()


def test_a_sync_checks_the_budget_of_the_group_its_project_belongs_to(
    team_a, member, window, django_capture_on_commit_callbacks
):
    group = project_for(team_a, "-home-dev-src-platform")
    project_for(team_a, PROJECT, alias_of=group)
    budget = make_budget(team_a, "1", scope=ScopeKind.PROJECT, project=group, forecast_alerts=False)
    with django_capture_on_commit_callbacks(execute=True):
        sync(member, 3.0)
    assert Alert.objects.filter(budget=budget, kind=AlertKind.THRESHOLD).exists()


def test_a_burst_derived_together_is_checked_once_for_all_its_batches_and_alerts_once(
    team_a, member, admin, window, evaluations, django_capture_on_commit_callbacks
):
    mine = make_budget(team_a, "1", scope=ScopeKind.MEMBER, member=member, forecast_alerts=False)
    theirs = make_budget(team_a, "1", scope=ScopeKind.MEMBER, member=admin, forecast_alerts=False)
    with django_capture_on_commit_callbacks(execute=True):
        sync(member, 0.5)
        sync(member, 1.5)
        body = envelope("desktop", uuid.UUID(int=7), daily(2.0))
        process_batch(archive(admin, None, body), body=body)

    # The first derived-work run took all three batches: one check, for both members.
    assert len(evaluations) == 1
    assert set(evaluations[0]["member_ids"]) == {member.pk, admin.pk}
    for budget in (mine, theirs):
        alerts = Alert.objects.filter(budget=budget, kind=AlertKind.THRESHOLD)
        assert sorted(alerts.values_list("threshold", flat=True)) == budget.sorted_thresholds
    assert not IngestBatch.objects.filter(derived_at__isnull=True).exists()


def test_the_windows_end_reads_batches_derived_in_it_even_if_processed_before_it(team_a, member):
    """A batch processed before the window opened, whose derived work ran (and announced it)
    only afterwards, is in the scope read at the window's end; one derived before is not."""
    opened = NOV_20
    late = ingest_reports(member, daily(1.0))
    IngestBatch.objects.filter(pk=late.pk).update(
        received_at=opened - timedelta(seconds=3),
        processed_at=opened - timedelta(seconds=2),
        derived_at=opened + timedelta(seconds=1),
    )
    scope = changes_since(team_a.pk, opened)
    assert scope.member_ids == {member.pk}
    daily_facts = DailyUsage.objects.filter(machine__uuid=PIPELINE_MACHINE)
    assert scope.project_ids == set(daily_facts.values_list("project_id", flat=True))

    IngestBatch.objects.filter(pk=late.pk).update(derived_at=opened - timedelta(seconds=1))
    assert changes_since(team_a.pk, opened).member_ids == frozenset()


def test_each_check_in_a_window_reads_only_what_came_after_the_previous_one(
    team_a, owner, member, admin, window, monkeypatch, django_capture_on_commit_callbacks
):
    """Checks at a window's end start reading where the previous one started, so a burst is
    not re-checked at every sync; every member's budget still alerts, once."""
    from budgets import evaluate

    scopes = []
    real = evaluate.changes_since

    def recording(team_id, since):
        scope = real(team_id, since)
        scopes.append(scope.member_ids)
        return scope

    monkeypatch.setattr(evaluate, "changes_since", recording)
    people = [member, admin, owner]
    budgets = [
        make_budget(team_a, "1", scope=ScopeKind.MEMBER, member=p, forecast_alerts=False)
        for p in people
    ]
    for n, person in enumerate(people):
        with (
            time_machine.travel(NOV_20 + timedelta(seconds=n + 1), tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            body = envelope(f"pc-{n}", uuid.UUID(int=100 + n), daily(2.0))
            process_batch(archive(person, None, body), body=body)

    # The first sync opened the window (checked for its own scope). The next check read from
    # the window's start; the last one from where that one started: its own sync and the one
    # before (set as derived just after its check), not the window's first.
    assert scopes == [{member.pk, admin.pk}, {admin.pk, owner.pk}]
    for budget in budgets:
        alerts = Alert.objects.filter(budget=budget, kind=AlertKind.THRESHOLD)
        assert sorted(alerts.values_list("threshold", flat=True)) == budget.sorted_thresholds
