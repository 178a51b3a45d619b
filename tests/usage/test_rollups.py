"""The rollups (usage.rollups) always equal the daily facts they sum, whatever wrote the facts:
random ingests through the real endpoint, re-sends in another timezone that remove rows,
incremental windows, machines retired, moved or deleted, projects grouped. Each check
recomputes every rollup row from the raw facts in Python and compares; then the read API
answers the same from the rollups as from the facts."""

import io
import random
import threading
import uuid
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from accounts.access import Viewer
from tests.conftest import api_client, token_for
from tests.factories import MachineFactory, ProjectFactory, SubscriptionFactory
from tests.usage.ingest.helpers import envelope, post
from usage import exports, pricing, queries, rollups
from usage.analytics import pace
from usage.analytics.blocks import move_machine
from usage.models import (
    DailyUsage,
    IngestBatch,
    Machine,
    ModelPrice,
    Project,
    UsageRollup,
    UsageRollupDelta,
)

FIGURES = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
SUMMED = (*FIGURES, "total_tokens", "cost_usd", "facts")
MODELS = ("claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001")
PROJECTS = ("-home-dev-src-api", "-home-dev-src-web", "-home-dev-src-cli", "-home-dev-src-docs")
TODAY = date(2026, 11, 20)
PLACES = Decimal("0.000001")


def _cost(value) -> Decimal:
    # SQLite keeps costs as doubles: sums in another order differ in the last places.
    value = Decimal(str(value))
    return value if connection.vendor == "postgresql" else value.quantize(PLACES)


def expected_rows() -> dict[tuple, dict]:
    """Every rollup row, recomputed from the facts: (team, period, day, dimension, key_id,
    key_text) → sums."""
    out: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys(SUMMED, 0))
    facts = DailyUsage.objects.select_related("machine").values_list(
        "machine__team_id",
        "machine__owner_id",
        "machine_id",
        "project_id",
        "model",
        "source",
        "day",
        *FIGURES,
        "total_tokens",
        "cost_usd",
    )
    for team, owner, machine, project, model, source, day, *figures in facts:
        keys = {
            "team": (0, ""),
            "member": (owner, source),
            "machine": (machine, source),
            "project": (project, ""),
            "model": (0, model),
            "source": (0, source),
            "member_project": (owner, str(project)),
        }
        periods = (("day", day), ("month", day.replace(day=1)), ("all", date(1, 1, 1)))
        for period, start in periods:
            for dimension, (key_id, key_text) in keys.items():
                row = out[(team, period, start, dimension, key_id, key_text)]
                for name, value in zip(
                    (*FIGURES, "total_tokens", "cost_usd"), figures, strict=True
                ):
                    row[name] += value
                row["facts"] += 1
    return {key: {**row, "cost_usd": _cost(row["cost_usd"])} for key, row in out.items()}


def stored_rows(*, with_deltas: bool = True) -> dict[tuple, dict]:
    """The rollup rows as readers see them: UsageRollup plus pending deltas, empty ones left out."""
    out: dict[tuple, dict] = defaultdict(lambda: dict.fromkeys(SUMMED, 0))
    models = (UsageRollup, UsageRollupDelta) if with_deltas else (UsageRollup,)
    for model in models:
        for row in model.objects.values():
            key = (
                row["team_id"],
                row["period"],
                row["day"],
                row["dimension"],
                row["key_id"],
                row["key_text"],
            )
            for name in SUMMED:
                out[key][name] += row[name]
    return {
        key: {**row, "cost_usd": _cost(row["cost_usd"])}
        for key, row in out.items()
        if row["facts"] or any(row[name] for name in SUMMED)
    }


def assert_rollups_match_facts():
    assert stored_rows() == expected_rows()
    if connection.vendor == "postgresql":
        rollups.fold_deltas()
        assert not UsageRollupDelta.objects.exists()
        assert stored_rows(with_deltas=False) == expected_rows()


def daily_envelope(rng: random.Random, machine_uuid, name: str, days: list[date], **extra):
    projects: dict[str, list] = {}
    for day in days:
        for key in rng.sample(PROJECTS, rng.randint(1, 3)):
            breakdowns = []
            for model in rng.sample(MODELS, rng.randint(1, 2)):
                counts = {
                    "inputTokens": rng.randint(1, 5000),
                    "outputTokens": rng.randint(1, 50000),
                    "cacheCreationTokens": rng.randint(0, 9000),
                    "cacheReadTokens": rng.randint(0, 90000),
                }
                breakdowns.append({"modelName": model, **counts, "cost": rng.randint(1, 900) / 97})
            row = {
                "date": day.isoformat(),
                **{k: sum(b[k] for b in breakdowns) for k in breakdowns[0] if k.endswith("Tokens")},
                "totalCost": sum(b["cost"] for b in breakdowns),
                "modelBreakdowns": breakdowns,
            }
            projects.setdefault(key, []).append(row)
    reports = {"claude_daily_instances": {"projects": projects, "totals": {}}}
    return envelope(reports, machine_uuid=machine_uuid, name=name, **extra)


@pytest.mark.django_db(transaction=True)
def test_rollups_equal_the_facts_after_random_ingests_and_changes(cast, team_a):
    rng = random.Random(13)
    people = [cast["owner"], cast["admin"], cast["member"], cast["outsider"]]
    clients = {p.pk: api_client(token_for(p)) for p in people}
    machines = [(p, uuid.uuid4(), f"pc{i}") for p in people for i in range(2)]
    history = [TODAY - timedelta(days=i) for i in range(70, -1, -1)]

    removed = 0
    for step in range(14):
        person, machine_uuid, name = rng.choice(machines)
        if step % 5 == 4:
            # Another reporting timezone: the machine's rows are regrouped, old days removed.
            body = daily_envelope(rng, machine_uuid, name, history[-20:])
            body["machine"]["timezone"] = "Asia/Tokyo"
        elif step % 3 == 2:
            since = history[-3]
            body = daily_envelope(
                rng, machine_uuid, name, history[-3:], full=False, since=since.isoformat()
            )
        else:
            body = daily_envelope(rng, machine_uuid, name, rng.sample(history, 25))
        response = post(clients[person.pk], body)
        assert response.status_code in (200, 201), response.content
        removed += response.json()["counts"]["claude_daily_instances"]["removed"]
        if step == 6:
            # A re-send of the same report changes nothing.
            assert post(clients[person.pk], body).status_code in (200, 201, 202)
        if step == 7:
            laptop = Machine.objects.filter(owner=cast["member"]).first()
            laptop.retired_at = timezone.now()
            laptop.save(update_fields=["retired_at"])
            move_machine(laptop, SubscriptionFactory(owner=cast["member"], label="Second"))
        if step == 9:
            api, web = (Project.objects.get(team=team_a, key=k) for k in PROJECTS[:2])
            web.set_alias(api)
        if step == 11:
            Machine.objects.filter(owner=cast["admin"]).first().delete()
        if step == 13:
            # The owner moves to team B: the receiver moves their machines along (an UPDATE).
            membership = cast["owner"].membership
            membership.team = cast["outsider"].team
            membership.save()
            assert Machine.objects.filter(owner=cast["owner"], team=membership.team).exists()
            assert_rollups_match_facts()
            # And back, so the read side below asks as the owner of team A.
            membership.team = team_a
            membership.save()
        if step % 4 == 3:
            assert_rollups_match_facts()

    assert DailyUsage.objects.exists()
    assert removed > 0, "no re-send removed rows"
    assert UsageRollup.objects.exists() or UsageRollupDelta.objects.exists()
    assert_rollups_match_facts()

    # Rebuilding from scratch gives the same rows.
    rollups.rebuild()
    assert stored_rows() == expected_rows()

    # The read side gives the same answers from rollups as from the facts.
    owner, member = cast["owner"], cast["member"]
    ranges = [(None, None), (TODAY - timedelta(days=40), TODAY), (date(2026, 10, 3), None)]
    ranges += [(date(2026, 10, 1), date(2026, 10, 31)), (TODAY, TODAY)]
    ranges += [(date(2026, 9, 29), date(2026, 11, 18)), (None, date(2026, 10, 30))]
    asks = [
        {"viewer": owner, "scope": "team", "group_by": g}
        for g in ("day", "week", "month", "project", "model", "machine", "member", "source")
    ]
    asks += [
        {"viewer": member, "group_by": "day"},
        {"viewer": member, "scope": "team", "group_by": "month"},
        {"viewer": owner, "scope": "team", "group_by": "day", "project": PROJECTS[0]},
        {"viewer": owner, "scope": "team", "group_by": "project", "project": PROJECTS[0]},
        {"viewer": owner, "scope": "team", "group_by": "week", "model": MODELS[1]},
        {"viewer": owner, "group_by": "month", "member": member.email},
        {"viewer": owner, "group_by": "model", "scope": "team", "model": MODELS[0]},
        {"viewer": owner, "group_by": "member", "scope": "team", "source": "claude-code"},
        {"viewer": owner, "group_by": "machine", "scope": "team", "source": "codex"},
        {"viewer": member, "group_by": "week", "source": "claude-code"},
    ]
    for since, until in ranges:
        for ask in asks:
            params = {k: v for k, v in ask.items() if k != "viewer"}
            from_rollups = queries.aggregate_usage(
                ask["viewer"], since=since, until=until, **params
            )
            assert from_rollups["results"] or not from_rollups["totals"]["total_tokens"]
            original = queries._rollup_slice
            queries._rollup_slice = lambda *a: None
            try:
                from_facts = queries.aggregate_usage(
                    ask["viewer"], since=since, until=until, **params
                )
            finally:
                queries._rollup_slice = original
            assert _rounded(from_rollups) == _rounded(from_facts), (ask, since, until)

    # The chargeback from rollups is the chargeback of the same facts.
    charges = [
        {"viewer": owner, "scope": "team", "period": p} for p in ("month", "week", "day", "total")
    ]
    charges += [
        {"viewer": member, "period": "month"},
        {"viewer": member, "scope": "team", "period": "week"},
        {"viewer": owner, "member": member.email, "period": "day"},
        {"viewer": owner, "scope": "team", "project": PROJECTS[0], "period": "month"},
        {"viewer": member, "project": PROJECTS[1], "period": "total"},
    ]
    for since, until in ranges:
        if since is None or until is None:
            continue
        for ask in charges:
            params = {k: v for k, v in ask.items() if k != "viewer"}
            from_rollups = exports.chargeback_rows(
                ask["viewer"], since=since, until=until, **params
            )
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(exports, "_grouped_rollups", _from_facts(ask["viewer"], params))
                from_facts = exports.chargeback_rows(
                    ask["viewer"], since=since, until=until, **params
                )
            assert from_rollups == from_facts, (ask, since, until)
            if since <= TODAY - timedelta(days=5):
                assert from_rollups, (ask, since, until)

    # Pace from rollups is the pace of the same facts.
    team = Viewer.of(owner).team
    assert pace.pace_for_team(team, TODAY) == pace.pace_of(
        DailyUsage.objects.filter(machine__team=team), TODAY
    )
    assert pace.pace_for_member(member, TODAY) == pace.pace_of(
        DailyUsage.objects.filter(machine__owner=member), TODAY
    )


def _group_of(project) -> list:
    return [project, *project.aliases.all()]


def _from_facts(viewer, params: dict):
    """exports._grouped_rollups' rows grouped from the raw facts of the same ask instead."""

    def grouped(whose, canonical, since, until, period, per_member):
        facts = DailyUsage.objects.filter(
            queries.machine_scope(
                viewer, scope=params.get("scope", "team"), member=params.get("member")
            ),
            day__gte=since,
            day__lte=until,
        )
        if canonical is not None:
            facts = facts.filter(project__in=_group_of(canonical))
        return exports._grouped_facts(facts, period, per_member)

    return grouped


def _rounded(data: dict) -> dict:
    def fix(row: dict) -> dict:
        return {**row, "cost_usd": _cost(row["cost_usd"])}

    return {"results": [fix(r) for r in data["results"]], "totals": fix(data["totals"])}


@pytest.mark.django_db(transaction=True)
def test_a_reprice_and_a_member_moving_team_at_once_leave_the_rollups_equal_to_the_facts(cast):
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite runs one write transaction at a time, so the two cannot race there; set "
            "DATABASE_URL to a PostgreSQL database to run this test"
        )
    member = cast["member"]
    machine = MachineFactory(owner=member)
    DailyUsage.objects.create(
        machine=machine,
        day=TODAY,
        project=ProjectFactory(team=machine.team, key="-src-race"),
        model="claude-race",
        input_tokens=1_000_000,
        total_tokens=1_000_000,
        cost_usd=Decimal(0),
    )
    # Saved without its signal: the reprice below is the one that races.
    ModelPrice.objects.bulk_create(
        [
            ModelPrice(
                model="claude-race",
                input_usd_per_mtok=Decimal(3),
                output_usd_per_mtok=Decimal(15),
                cache_creation_usd_per_mtok=Decimal("3.75"),
                cache_read_usd_per_mtok=Decimal("0.3"),
            )
        ]
    )
    moved = threading.Event()

    def move_member() -> None:
        try:
            membership = member.membership
            membership.team = cast["outsider"].team
            membership.save()  # usage.receivers moves the machine along
        finally:
            moved.set()
            connection.close()

    with transaction.atomic():
        assert pricing.reprice("claude-race") == 1
        mover = threading.Thread(target=move_member)
        mover.start()
        # The move waits for the machine, which the reprice holds until it commits.
        assert not moved.wait(0.5)
    mover.join(timeout=30)
    assert moved.is_set()
    assert Machine.objects.get(pk=machine.pk).team == cast["outsider"].team
    assert_rollups_match_facts()


@pytest.mark.django_db
def test_an_exact_half_cent_rounds_the_same_from_the_rollups_as_from_the_facts(cast):
    # A month less a day: on SQLite the rollups hold doubles, 0.105 - 0.1 is a hair off 0.005.
    machine = MachineFactory(owner=cast["member"])
    project = ProjectFactory(team=machine.team, key="-src-cents")
    for day, cost in ((date(2026, 1, 1), "0.10"), (date(2026, 1, 2), "0.005")):
        DailyUsage.objects.create(
            machine=machine,
            day=day,
            project=project,
            model=MODELS[0],
            input_tokens=1,
            total_tokens=1,
            cost_usd=Decimal(cost),
        )
    ask = {"scope": "me", "since": date(2026, 1, 2), "until": date(2026, 1, 31)}
    from_rollups = exports.chargeback_rows(cast["member"], **ask)
    from_facts = exports.chargeback_rows(cast["member"], source="claude-code", **ask)
    exact = Decimal("0.005").quantize(Decimal("0.01"))
    assert [r["cost_usd"] for r in from_rollups] == [r["cost_usd"] for r in from_facts] == [exact]


def test_a_plan_covers_each_day_of_the_range_exactly_once():
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(0, 430, 7)]
    for since in [None, *days[::5]]:
        for until in [None, *days[1::4]]:
            if since and until and since > until:
                continue
            covered: dict[date, int] = defaultdict(int)
            low, high = date(2025, 12, 1), date(2027, 3, 31)
            for part in rollups.plan(since, until, days=False):
                first = part.first or low
                last = part.last or high
                day = first
                while day <= last:
                    if part.period == "day" or day.day == 1:
                        span = (
                            [day]
                            if part.period == "day"
                            else [
                                day + timedelta(days=i)
                                for i in range((rollups.month_last(day) - day).days + 1)
                            ]
                        )
                        for d in span:
                            covered[d] += part.sign
                    day += timedelta(days=1)
            want = {
                low + timedelta(days=i)
                for i in range((high - low).days + 1)
                if (since is None or low + timedelta(days=i) >= since)
                and (until is None or low + timedelta(days=i) <= until)
            }
            assert {d for d, n in covered.items() if n} == want, (since, until)
            assert all(n in (0, 1) for n in covered.values()), (since, until)


def test_the_beat_schedule_folds_pending_rollup_changes_every_minute():
    from django.conf import settings

    from telemetry_site.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["fold-usage-rollups"]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
    assert entry["schedule"].total_seconds() <= 60


@pytest.mark.django_db
def test_derived_work_queues_a_fold_of_the_changes_its_batches_appended(member):
    """After a sync's derived work, a fold is queued (at most one per few seconds), so
    readers add up seconds of pending changes, not a minute's; the figures stay the facts'."""
    from django.core.cache import cache

    from usage.tasks import derive_after_ingest

    cache.delete("usage:rollup-fold-queued")
    rng = random.Random(7)
    body = daily_envelope(rng, uuid.uuid4(), "laptop", [TODAY - timedelta(days=1), TODAY])
    token = token_for(member, scopes=("ingest",))
    # Its derived work waits for a commit this test never makes: the test runs it as the
    # worker would.
    response = post(api_client(token), body)
    assert response.status_code == 201, response.content
    pk = IngestBatch.objects.get(public_id=response.json()["batch_id"]).pk
    if connection.vendor == "postgresql":
        assert UsageRollupDelta.objects.exists()
    assert derive_after_ingest.delay(pk).get() is True
    # Celery runs eagerly here: the queued fold ran at once.
    assert not UsageRollupDelta.objects.exists()
    assert cache.get("usage:rollup-fold-queued") is not None
    assert_rollups_match_facts()


@pytest.mark.django_db(transaction=True)
def test_the_rebuild_command_repairs_rollups_that_drifted_from_the_facts(cast, team_a):
    rng = random.Random(7)
    for person in (cast["owner"], cast["outsider"]):
        days = [TODAY - timedelta(days=i) for i in range(9)]
        body = daily_envelope(rng, uuid.uuid4(), "pc", days)
        assert post(api_client(token_for(person)), body).status_code == 201
    rollups.fold_deltas()
    # Something that bypassed the triggers: team A's sums are wrong, a row is gone.
    UsageRollup.objects.filter(team=team_a, dimension="team").update(cost_usd=Decimal(1))
    UsageRollup.objects.filter(team=team_a, dimension="member_project").first().delete()
    other = cast["outsider"].team
    before = {k: v for k, v in stored_rows().items() if k[0] == other.pk}
    out = io.StringIO()

    call_command("rebuild_rollups", "--team", team_a.slug, stdout=out)

    assert stored_rows() == expected_rows()
    assert {k: v for k, v in stored_rows().items() if k[0] == other.pk} == before
    assert f"1/1 {team_a.slug}" in out.getvalue()
    with pytest.raises(CommandError, match="no-such-team"):
        call_command("rebuild_rollups", "--team", "no-such-team", stdout=io.StringIO())
