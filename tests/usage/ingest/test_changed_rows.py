"""Ingest writes only what changed: a re-send rewrites no row, a changed figure rewrites only
its own row, and after any mix of re-sends, changes and absences the stored figures are the
last ones sent for each key (checked against sums over the sent rows, not against our code).

Rows rewritten are counted by the database itself: PostgreSQL's `xmin` (a row's version,
new on every UPDATE), on SQLite the `updated_at` and batch every write sets.
"""

import random
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from tests.usage import ccusage_runs
from tests.usage.ingest.helpers import PIPELINE_MACHINE, ingest_reports
from usage.ingest.derive import earliest_changed_hour
from usage.ingest.pipeline import archive, process_batch
from usage.models import DailyUsage, HourlyUsage, SessionUsage

pytestmark = pytest.mark.django_db

MODELS = ["claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"]
PROJECTS = ["-home-dev-src-webapp", "-home-dev-src-api", "-home-dev-src-infra"]
FIRST_DAY = date(2026, 10, 1)


def versions(model) -> dict[int, object]:
    """Each row's version: changes whenever the row is written, and only then."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, xmin::text FROM {model._meta.db_table}")
            return dict(cursor.fetchall())
    return {
        pk: (updated_at, batch_id, reported_at)
        for pk, updated_at, batch_id, reported_at in model.objects.values_list(
            "pk", "updated_at", "batch_id", "reported_at"
        )
    }


def rewritten(before: dict, after: dict) -> set[int]:
    return {pk for pk, version in before.items() if after.get(pk) != version}


# --- reports from plain rows ----------------------------------------------------------------
# daily: {(day, project, model): (input, output, cost)}; hourly: {hour: (input, output, cost)};
# sessions: {session id: (project, input, output, cost)}. Costs are in cents (exact).


def reports(daily: dict, hourly: dict, sessions: dict) -> dict:
    """ccusage 20 JSON (`claude daily --instances`, `blocks`, `claude session`) of the rows."""
    projects: dict[str, dict[date, list]] = {}
    for (day, project, model), (inp, out, cents) in daily.items():
        projects.setdefault(project, {}).setdefault(day, []).append(
            {
                "modelName": model,
                "inputTokens": inp,
                "outputTokens": out,
                "cacheCreationTokens": 0,
                "cacheReadTokens": 0,
                "cost": cents / 100,
            }
        )
    instances = {
        project: [
            {
                "date": day.isoformat(),
                "inputTokens": sum(b["inputTokens"] for b in parts),
                "outputTokens": sum(b["outputTokens"] for b in parts),
                "cacheCreationTokens": 0,
                "cacheReadTokens": 0,
                "totalTokens": sum(b["inputTokens"] + b["outputTokens"] for b in parts),
                "totalCost": sum(b["cost"] for b in parts),
                "modelsUsed": [b["modelName"] for b in parts],
                "modelBreakdowns": parts,
            }
            for day, parts in sorted(days.items())
        ]
        for project, days in projects.items()
    }
    blocks = [
        {
            "startTime": hour.isoformat(),
            "endTime": (hour + timedelta(hours=1)).isoformat(),
            "actualEndTime": (hour + timedelta(minutes=30)).isoformat(),
            "isGap": False,
            "entries": 3,
            "tokenCounts": {"inputTokens": inp, "outputTokens": out},
            "costUSD": cents / 100,
            "models": [MODELS[1]],
        }
        for hour, (inp, out, cents) in sorted(hourly.items())
    ]
    session_rows = [
        {
            "sessionId": session_id,
            "projectPath": project,
            "inputTokens": inp,
            "outputTokens": out,
            "cacheCreationTokens": 0,
            "cacheReadTokens": 0,
            "totalTokens": inp + out,
            "totalCost": cents / 100,
            "lastActivity": "2026-10-20T12:00:00Z",
            "modelsUsed": [MODELS[0]],
        }
        for session_id, (project, inp, out, cents) in sorted(sessions.items())
    ]
    return {
        "claude_daily_instances": {"projects": instances, "totals": {}},
        "blocks_hourly": {"blocks": blocks},
        "claude_session": {"sessions": session_rows, "totals": {}},
    }


def history(rng: random.Random, days: int = 20) -> tuple[dict, dict, dict]:
    daily, hourly, sessions = {}, {}, {}
    for n in range(days):
        day = FIRST_DAY + timedelta(days=n)
        for project in rng.sample(PROJECTS, 2):
            for model in rng.sample(MODELS, 2):
                daily[(day, project, model)] = figures(rng)
            sessions[f"s-{n}-{project}"] = (project, *figures(rng))
        for h in rng.sample(range(8, 20), 3):
            hourly[datetime(day.year, day.month, day.day, h, tzinfo=UTC)] = figures(rng)
    return daily, hourly, sessions


def figures(rng: random.Random) -> tuple[int, int, int]:
    return rng.randint(1, 5000), rng.randint(1, 50_000), rng.randint(0, 900)


def send(member, daily, hourly, sessions, *, full=True, tick=True):
    if tick:
        # Each batch is received after the one before (reported_at decides who wins).
        time.sleep(0.002)
    return ingest_reports(member, reports(daily, hourly, sessions), full=full)


# --- a re-send writes nothing ---------------------------------------------------------------


def test_a_resent_report_rewrites_no_row_and_stamps_no_hour(member):
    rng = random.Random(1)
    daily, hourly, sessions = history(rng)
    first = send(member, daily, hourly, sessions)
    assert first.counts["claude_daily_instances"]["created"] == len(daily)
    before = {m: versions(m) for m in (DailyUsage, HourlyUsage, SessionUsage)}

    again = send(member, daily, hourly, sessions)

    for model in (DailyUsage, HourlyUsage, SessionUsage):
        assert rewritten(before[model], versions(model)) == set(), model.__name__
    counts = again.counts
    assert counts["claude_daily_instances"] == {
        "created": 0,
        "updated": 0,
        "unchanged": len(daily),
        "removed": 0,
        "kept": 0,
    }
    assert counts["blocks_hourly"]["unchanged"] == len(hourly)
    assert counts["claude_session"]["unchanged"] == len(sessions)
    # Nothing carries the re-send, so its derived work recomputes no block.
    assert earliest_changed_hour(again.pk) is None
    assert not DailyUsage.objects.filter(batch=again).exists()


def test_a_resent_report_does_not_even_lock_the_stored_rows(member):
    """PostgreSQL's ON CONFLICT DO UPDATE locks (and so writes) every row it meets, even one
    its WHERE leaves alone; ingest compares first, so an unchanged row is never touched. A
    lock shows in the row's `xmax`."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite writes one transaction at a time)")
    rng = random.Random(2)
    daily, hourly, sessions = history(rng)
    send(member, daily, hourly, sessions)

    def lockers(model) -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT DISTINCT xmax::text FROM {model._meta.db_table}")
            return {row[0] for row in cursor.fetchall()}

    before = {model: lockers(model) for model in (DailyUsage, HourlyUsage, SessionUsage)}
    assert all(found == {"0"} for found in before.values())

    send(member, daily, hourly, sessions)

    assert {model: lockers(model) for model in before} == before


def test_a_changed_row_rewrites_only_itself(member):
    rng = random.Random(2)
    daily, hourly, sessions = history(rng)
    send(member, daily, hourly, sessions)
    before = {m: versions(m) for m in (DailyUsage, HourlyUsage, SessionUsage)}
    day_key = sorted(daily)[7]
    hour_key = sorted(hourly)[-5]
    session_key = sorted(sessions)[3]
    inp, out, cents = daily[day_key]
    daily[day_key] = (inp, out + 1000, cents + 3)
    hourly[hour_key] = (hourly[hour_key][0] + 1, *hourly[hour_key][1:])
    project, s_in, s_out, s_cents = sessions[session_key]
    sessions[session_key] = (project, s_in, s_out, s_cents + 1)

    later = send(member, daily, hourly, sessions)

    day, project_key, model = day_key
    changed_day = DailyUsage.objects.get(day=day, project__key=project_key, model=model)
    assert rewritten(before[DailyUsage], versions(DailyUsage)) == {changed_day.pk}
    assert (changed_day.output_tokens, changed_day.batch_id) == (out + 1000, later.pk)
    assert changed_day.cost_usd == Decimal(cents + 3) / 100
    changed_hour = HourlyUsage.objects.get(hour=hour_key)
    assert rewritten(before[HourlyUsage], versions(HourlyUsage)) == {changed_hour.pk}
    changed_session = SessionUsage.objects.get(session_id=session_key)
    assert rewritten(before[SessionUsage], versions(SessionUsage)) == {changed_session.pk}
    assert later.counts["claude_daily_instances"]["updated"] == 1
    assert later.counts["claude_daily_instances"]["unchanged"] == len(daily) - 1
    assert later.counts["blocks_hourly"]["updated"] == 1
    # Blocks are recomputed from the changed hour on, not from the start of the history.
    assert earliest_changed_hour(later.pk) == hour_key


# --- totals after any mix of sends ------------------------------------------------------------


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_totals_are_the_last_figures_sent_after_random_resends_changes_and_absences(member, seed):
    rng = random.Random(seed)
    daily, hourly, sessions = history(rng, days=15)
    last_daily, last_hourly, last_sessions = {}, {}, {}
    for round_ in range(8):
        # Some rows change, and each report leaves some out (logs cleaned up, an incremental
        # window): absence never deletes, so an absent row keeps its last figures.
        for table in (daily, hourly):
            for key in rng.sample(sorted(table), len(table) // 8):
                table[key] = figures(rng)
        for key in rng.sample(sorted(sessions), len(sessions) // 8):
            sessions[key] = (sessions[key][0], *figures(rng))
        sent_daily = {k: v for k, v in daily.items() if rng.random() < 0.8}
        sent_hourly = {k: v for k, v in hourly.items() if rng.random() < 0.8}
        sent_sessions = {k: v for k, v in sessions.items() if rng.random() < 0.8}
        batch = send(member, sent_daily, sent_hourly, sent_sessions, full=round_ % 3 != 2)
        if rng.random() < 0.3:
            # The same report again: nothing moves.
            before = versions(DailyUsage)
            send(member, sent_daily, sent_hourly, sent_sessions)
            assert rewritten(before, versions(DailyUsage)) == set()
        last_daily.update(sent_daily)
        last_hourly.update(sent_hourly)
        last_sessions.update(sent_sessions)
        assert batch.counts["claude_daily_instances"]["created"] + batch.counts[
            "claude_daily_instances"
        ]["updated"] + batch.counts["claude_daily_instances"]["unchanged"] == len(sent_daily)

    stored = {
        (row.day, row.project.key, row.model): (row.input_tokens, row.output_tokens, row.cost_usd)
        for row in DailyUsage.objects.select_related("project")
    }
    assert stored == {k: (i, o, Decimal(c) / 100) for k, (i, o, c) in last_daily.items()}
    totals = DailyUsage.objects.aggregate(tokens=Sum("total_tokens"), cost=Sum("cost_usd"))
    assert totals["tokens"] == sum(i + o for i, o, _ in last_daily.values())
    assert totals["cost"] == Decimal(sum(c for _, _, c in last_daily.values())) / 100
    hours = {row.hour: (row.input_tokens, row.output_tokens) for row in HourlyUsage.objects.all()}
    assert hours == {k: (i, o) for k, (i, o, _) in last_hourly.items()}
    session_totals = SessionUsage.objects.aggregate(tokens=Sum("total_tokens"))
    assert session_totals["tokens"] == sum(i + o for _, i, o, _ in last_sessions.values())


# --- a batch received earlier but stored later ------------------------------------------------


def test_an_older_batch_stored_after_a_newer_one_keeps_what_the_newer_one_confirmed(member):
    """The newer report repeats a stored row unchanged (so it does not rewrite it); the older
    one, stored after it, carries another value for that row and must not win."""
    day = (FIRST_DAY, PROJECTS[0], MODELS[0])
    other = (FIRST_DAY + timedelta(days=1), PROJECTS[0], MODELS[0])
    hour = datetime(2026, 10, 1, 9, tzinfo=UTC)
    now = timezone.now()

    def archived(daily, hourly, at):
        body = ccusage_runs.envelope("laptop", PIPELINE_MACHINE, reports(daily, hourly, {}))
        with time_machine.travel(at, tick=False):
            return archive(member, None, body), body

    first, first_body = archived({day: (10, 20, 5)}, {hour: (1, 2, 3)}, now - timedelta(hours=3))
    process_batch(first, body=first_body)
    older, older_body = archived(
        {day: (99, 99, 99), other: (7, 8, 9)}, {hour: (9, 9, 9)}, now - timedelta(hours=2)
    )
    newer, newer_body = archived({day: (10, 20, 5)}, {hour: (1, 2, 3)}, now - timedelta(hours=1))
    process_batch(newer, body=newer_body)  # confirms the first figures, rewriting nothing

    result = process_batch(older, body=older_body)

    row = DailyUsage.objects.get(day=day[0], model=day[2])
    assert (row.input_tokens, row.output_tokens, row.cost_usd) == (10, 20, Decimal("0.05"))
    assert HourlyUsage.objects.get(hour=hour).input_tokens == 1
    # What only the older report knew is still stored.
    assert DailyUsage.objects.get(day=other[0]).input_tokens == 7
    counts = result.counts["claude_daily_instances"]
    assert (counts["created"], counts["updated"], counts["unchanged"]) == (1, 0, 1)
