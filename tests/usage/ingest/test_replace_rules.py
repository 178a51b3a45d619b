"""Replace, never add: overlaps, replays and late old reports never count twice or win."""

import copy
import shutil
import uuid
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.utils import timezone

from accounts.models import Membership, Role
from tests.usage.ingest.helpers import (
    API_SERVER,
    OUTPUT,
    WEBAPP,
    cents,
    daily_report,
    encode,
    envelope,
    expected_totals,
    fixture_reports,
    hourly_report,
    load,
    need_ccusage,
    post,
    run_ccusage,
)
from usage.ingest.pipeline import IngestError, archive, process_batch
from usage.models import BatchStatus, DailyUsage, IngestBatch, Machine, SessionUsage

pytestmark = pytest.mark.django_db

# The sessions ccusage reports for the fixture machine.
SESSIONS = len(
    {
        s["sessionId"]
        for s in load(OUTPUT / "claude-session.json")["sessions"]
        if "/" not in s["projectPath"]
    }
)


def window(reports: dict, first: str, last: str) -> dict:
    """The reports as ccusage --since/--until would cut them (daily kinds by day)."""
    reports = copy.deepcopy(reports)
    instances = reports["claude_daily_instances"]["projects"]
    for key in list(instances):
        instances[key] = [r for r in instances[key] if first <= r["date"] <= last]
        if not instances[key]:
            del instances[key]
    daily = reports["daily_by_agent"]["daily"]
    reports["daily_by_agent"]["daily"] = [r for r in daily if first <= r["period"] <= last]
    reports.pop("claude_session", None)
    return reports


def machine_totals(machine_uuid) -> tuple[int, Decimal]:
    totals = DailyUsage.objects.filter(machine__uuid=machine_uuid).aggregate(
        tokens=Sum("total_tokens"), cost=Sum("cost_usd")
    )
    return totals["tokens"] or 0, totals["cost"] or Decimal(0)


def full_totals() -> tuple[int, Decimal]:
    expected = expected_totals(OUTPUT)
    return expected["total_tokens"], cents(expected["cost_usd"])


def test_overlapping_windows_count_each_day_once(fixtures_dir, owner_client):
    reports = fixture_reports()
    machine = envelope({})["machine"]
    first = post(
        owner_client, {**envelope(window(reports, "2026-11-16", "2026-11-20")), "machine": machine}
    )
    second = post(
        owner_client, {**envelope(window(reports, "2026-11-18", "2026-11-24")), "machine": machine}
    )
    assert (first.status_code, second.status_code) == (201, 201)
    counts = second.json()["counts"]["claude_daily_instances"]
    overlap = DailyUsage.objects.filter(
        source="claude-code", day__range=("2026-11-18", "2026-11-20")
    ).count()
    assert counts["unchanged"] == overlap and counts["updated"] == 0
    tokens, cost = machine_totals(machine["uuid"])
    assert (tokens, cents(cost)) == full_totals()


def test_days_absent_from_a_report_are_kept(fixtures_dir, owner_client):
    reports = fixture_reports()
    machine = envelope({})["machine"]
    post(owner_client, {**envelope(reports), "machine": machine})
    # Claude Code deleted its old logs: the next full report only has the last two days.
    post(
        owner_client, {**envelope(window(reports, "2026-11-23", "2026-11-24")), "machine": machine}
    )
    tokens, cost = machine_totals(machine["uuid"])
    assert (tokens, cents(cost)) == full_totals()
    assert SessionUsage.objects.count() == SESSIONS


def test_a_grown_day_replaces_the_old_figures_instead_of_adding(fixtures_dir, owner_client):
    reports = fixture_reports()
    machine = envelope({})["machine"]
    early = copy.deepcopy(reports)
    breakdown = early["claude_daily_instances"]["projects"][WEBAPP][-1]["modelBreakdowns"][0]
    breakdown["outputTokens"] -= 1000
    breakdown["cost"] -= 0.05
    post(owner_client, {**envelope(early), "machine": machine})
    later = post(owner_client, {**envelope(reports), "machine": machine})
    assert later.json()["counts"]["claude_daily_instances"]["updated"] == 1
    tokens, cost = machine_totals(machine["uuid"])
    assert (tokens, cents(cost)) == full_totals()


def archived(user, body) -> IngestBatch:
    return archive(user, None, encode(body))


def test_an_older_batch_processed_after_a_newer_one_changes_nothing_it_shares(fixtures_dir, owner):
    reports = fixture_reports()
    machine = envelope({})["machine"]
    old = copy.deepcopy(reports)
    day = old["claude_daily_instances"]["projects"][WEBAPP][-1]
    day["modelBreakdowns"][0]["outputTokens"] -= 1000
    with time_machine.travel("2026-11-24 23:00:00Z", tick=False):
        older = archived(owner, {**envelope(old), "machine": machine})
    with time_machine.travel("2026-11-24 23:30:00Z", tick=False):
        newer = archived(
            owner, {**envelope(window(reports, "2026-11-20", "2026-11-24")), "machine": machine}
        )
    # Two requests raced: the newer one committed first.
    process_batch(newer)
    result = process_batch(older)
    counts = result.counts["claude_daily_instances"]
    assert counts["updated"] == 0
    # What only the older report knew (the days before the newer window) is still new to us.
    assert (
        counts["created"]
        == DailyUsage.objects.filter(source="claude-code", day__lt="2026-11-20").count()
    )
    tokens, cost = machine_totals(machine["uuid"])
    assert (tokens, cents(cost)) == full_totals()


def test_a_retried_old_body_after_a_newer_report_is_a_duplicate(fixtures_dir, owner_client):
    reports = fixture_reports()
    machine = envelope({})["machine"]
    old = copy.deepcopy(reports)
    old["claude_daily_instances"]["projects"][WEBAPP][-1]["modelBreakdowns"][0]["outputTokens"] -= 1
    old_body = {**envelope(old), "machine": machine}
    post(owner_client, old_body)
    post(owner_client, {**envelope(reports), "machine": machine})
    retry = post(owner_client, old_body)
    assert retry.json()["duplicate"] is True
    tokens, cost = machine_totals(machine["uuid"])
    assert (tokens, cents(cost)) == full_totals()


# --- reprocess_batches ---------------------------------------------------------------------------
def reprocess(*args) -> str:
    out = StringIO()
    call_command("reprocess_batches", *args, stdout=out)
    return out.getvalue()


def test_reprocessing_every_batch_is_idempotent_and_reports_progress(fixtures_dir, owner_client):
    reports = fixture_reports()
    machine = envelope({})["machine"]
    post(
        owner_client, {**envelope(window(reports, "2026-11-16", "2026-11-20")), "machine": machine}
    )
    post(owner_client, {**envelope(reports), "machine": machine})
    before = list(
        DailyUsage.objects.order_by("pk").values("pk", "total_tokens", "cost_usd", "batch")
    )
    output = reprocess()
    assert "Reprocessing 2 batches, oldest first." in output
    assert "[1/2] batch " in output and "[2/2] batch " in output
    assert "Done: 2 processed, 0 failed." in output
    assert "0 created, 0 updated" in output
    after = list(
        DailyUsage.objects.order_by("pk").values("pk", "total_tokens", "cost_usd", "batch")
    )
    assert after == before


def test_a_failed_batch_is_reprocessed_once_its_cause_is_fixed(fixtures_dir, owner, team_a):
    membership = Membership.objects.get(user=owner)
    membership.delete()
    batch = archived(owner, envelope(fixture_reports()))
    with pytest.raises(IngestError):
        process_batch(batch)
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED and "no team" in batch.error
    assert not Machine.objects.exists()

    Membership.objects.create(user=owner, team=team_a, role=Role.OWNER)
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        output = reprocess("--failed")
    assert "Done: 1 processed, 0 failed." in output
    batch.refresh_from_db()
    assert batch.status == BatchStatus.PROCESSED and batch.error == ""
    tokens, cost = machine_totals(Machine.objects.get().uuid)
    assert (tokens, cents(cost)) == full_totals()
    # Nothing left to do for --failed; replaying it again changes nothing.
    assert reprocess("--failed") == "No batches to reprocess.\n"
    assert "0 created, 0 updated" in reprocess("--batch", str(batch.public_id))


def test_reprocess_replays_in_received_order_so_the_newest_report_wins(fixtures_dir, owner):
    reports = fixture_reports()
    machine = envelope({})["machine"]
    old = copy.deepcopy(reports)
    old["claude_daily_instances"]["projects"][WEBAPP][-1]["modelBreakdowns"][0]["outputTokens"] -= (
        1000
    )
    with time_machine.travel("2026-11-24 23:00:00Z", tick=False):
        older = archived(owner, {**envelope(old), "machine": machine})
    with time_machine.travel("2026-11-24 23:30:00Z", tick=False):
        newer = archived(owner, {**envelope(reports), "machine": machine})
    output = reprocess("--since", "2026-11-24")
    assert output.index(str(older.public_id)) < output.index(str(newer.public_id))
    tokens, cost = machine_totals(machine["uuid"])
    assert (tokens, cents(cost)) == full_totals()
    # Replaying only the older one later still does not win.
    reprocess("--batch", str(older.pk))
    assert machine_totals(machine["uuid"])[0] == full_totals()[0]


def test_reprocess_names_a_bad_option_in_one_line(db):
    with pytest.raises(CommandError, match="--since 'yesterday' is not a date"):
        reprocess("--since", "yesterday")
    with pytest.raises(CommandError, match="neither a batch number nor a UUID"):
        reprocess("--batch", "nope")
    with pytest.raises(CommandError, match="No batch 12345"):
        reprocess("--batch", "12345")


def test_reprocess_fails_loudly_when_a_batch_still_fails(owner):
    batch = archived(owner, {"schema": 1})
    with pytest.raises(CommandError, match="1 of 1 batches failed"):
        reprocess("--batch", str(batch.pk))
    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED and batch.error == "machine: required"


def test_stored_costs_are_the_reported_decimals(fixtures_dir, owner_client):
    reports = {"claude_daily_instances": fixture_reports()["claude_daily_instances"]}
    post(owner_client, envelope(reports))
    # ccusage: one model that day, "cost": 0.21341174999999998, "totalTokens": 155391.
    row = DailyUsage.objects.get(day="2026-11-22", project__key=API_SERVER)
    assert row.cost_usd.quantize(Decimal("1e-8")) == Decimal("0.21341175")
    assert row.total_tokens == 155_391


def _team_totals():
    return DailyUsage.objects.aggregate(tokens=Sum("total_tokens"), cost=Sum("cost_usd"))


def test_a_full_report_in_a_new_timezone_replaces_the_days_instead_of_adding_them(
    owner_client, tmp_path, fixtures_dir
):
    need_ccusage()
    home = tmp_path / "home"
    shutil.copytree(fixtures_dir / "input" / "home", home)
    machine = uuid.uuid4()
    utc = {
        "claude_daily_instances": run_ccusage(home, "claude", "daily", "--instances"),
        "daily_by_agent": run_ccusage(home, "daily", "--by-agent"),
    }
    tokyo = {
        "claude_daily_instances": run_ccusage(
            home, "claude", "daily", "--instances", "--timezone", "Asia/Tokyo"
        ),
        "daily_by_agent": run_ccusage(home, "daily", "--by-agent", "--timezone", "Asia/Tokyo"),
    }
    assert post(owner_client, envelope(utc, machine_uuid=machine)).status_code in (200, 201)
    before = _team_totals()

    # The agent says which timezone it passed to ccusage, as it always does.
    body = envelope(tokyo, machine_uuid=machine)
    body["machine"]["timezone"] = "Asia/Tokyo"
    response = post(owner_client, body)

    assert response.status_code in (200, 201), response.content
    # The same usage regrouped by Tokyo days: totals unchanged, no UTC day left behind.
    assert _team_totals()["tokens"] == before["tokens"]
    assert cents(_team_totals()["cost"]) == cents(before["cost"])
    assert response.json()["counts"]["claude_daily_instances"]["removed"] > 0
    tokyo_days = {
        row["date"] for rows in tokyo["claude_daily_instances"]["projects"].values() for row in rows
    }
    stored = {d.isoformat() for d in DailyUsage.objects.values_list("day", flat=True)}
    assert stored <= tokyo_days | {r["period"] for r in tokyo["daily_by_agent"]["daily"]}


def test_an_incremental_window_never_removes_days_before_it(owner_client):
    machine = uuid.uuid4()
    reports = fixture_reports()
    assert post(owner_client, envelope(reports, machine_uuid=machine)).status_code in (200, 201)
    before = DailyUsage.objects.count()
    early = DailyUsage.objects.filter(day__lt="2026-11-22").count()

    recent = window(reports, "2026-11-22", "2026-11-24")
    response = post(
        owner_client,
        envelope(recent, machine_uuid=machine, full=False, since="2026-11-22"),
    )

    assert response.status_code in (200, 201), response.content
    assert DailyUsage.objects.filter(day__lt="2026-11-22").count() == early
    assert DailyUsage.objects.count() == before
    assert response.json()["counts"]["claude_daily_instances"]["removed"] == 0


def test_a_report_from_a_later_batch_is_never_removed_by_an_older_one(owner, owner_client):
    machine = uuid.uuid4()
    reports = fixture_reports()
    older_body = encode(envelope(window(reports, "2026-11-16", "2026-11-20"), machine_uuid=machine))
    older = archive(owner, None, older_body)
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        assert post(owner_client, envelope(reports, machine_uuid=machine)).status_code in (
            200,
            201,
        )
    count = DailyUsage.objects.count()

    process_batch(older, live=False)

    assert DailyUsage.objects.count() == count


# --- absence never deletes; a report replaces only what it regroups -------------------------------
def claude_days(machine_uuid) -> dict[str, int]:
    rows = DailyUsage.objects.filter(machine__uuid=machine_uuid, source="claude-code")
    return {d.isoformat(): t for d, t in rows.values_list("day", "total_tokens").order_by("day")}


def test_a_full_report_that_lost_days_in_the_middle_keeps_them_and_says_so(owner_client):
    machine = uuid.uuid4()
    oct_20 = (WEBAPP, "2026-10-20", 100, 1000)
    three_days = daily_report(WEBAPP, "2026-10-19", 50, 250, oct_20, (WEBAPP, "2026-11-20", 1, 1))
    post(owner_client, envelope(three_days, machine_uuid=machine))

    later = daily_report(WEBAPP, "2026-10-19", 50, 250, (WEBAPP, "2026-11-20", 1, 1))
    response = post(owner_client, envelope(later, machine_uuid=machine))

    counts = response.json()["counts"]["claude_daily_instances"]
    assert (counts["removed"], counts["kept"]) == (0, 1)
    assert claude_days(machine) == {"2026-10-19": 300, "2026-10-20": 1100, "2026-11-20": 2}


def test_a_new_timezone_replaces_a_day_only_where_the_hours_show_its_logs_still_exist(
    owner_client,
):
    machine = uuid.uuid4()
    utc = daily_report(WEBAPP, "2026-11-20", 100, 1000, (WEBAPP, "2026-11-21", 100, 900))
    post(
        owner_client,
        envelope({**utc, **hourly_report("2026-11-21T03:00:00Z")}, machine_uuid=machine),
    )
    # The logs of UTC 11-20 are gone; 11-21 03:00 UTC is noon of 11-21 in Tokyo, a day that
    # overlaps UTC 11-20 too, but no hour of UTC 11-20 is left to regroup.
    tokyo = {
        **daily_report(WEBAPP, "2026-11-21", 100, 900),
        **hourly_report("2026-11-21T03:00:00Z"),
    }
    body = envelope(tokyo, machine_uuid=machine)
    body["machine"]["timezone"] = "Asia/Tokyo"

    response = post(owner_client, body)

    counts = response.json()["counts"]["claude_daily_instances"]
    # Tokyo's 11-21 has the key of the UTC 11-21 row, so it replaces it in place.
    assert (counts["updated"], counts["removed"]) == (1, 0)
    stored = DailyUsage.objects.filter(machine__uuid=machine).order_by("day")
    assert [(d.day.isoformat(), d.report_timezone, d.total_tokens) for d in stored] == [
        ("2026-11-20", "UTC", 1100),
        ("2026-11-21", "Asia/Tokyo", 1000),
    ]


def test_a_new_timezone_replaces_an_old_day_its_hours_still_show(owner_client):
    machine = uuid.uuid4()
    utc = daily_report(WEBAPP, "2026-11-20", 100, 1000)
    post(
        owner_client,
        envelope({**utc, **hourly_report("2026-11-20T20:00:00Z")}, machine_uuid=machine),
    )
    # 20:00 UTC on 11-20 is 05:00 on 11-21 in Tokyo.
    tokyo = {
        **daily_report(WEBAPP, "2026-11-21", 100, 1000),
        **hourly_report("2026-11-20T20:00:00Z"),
    }
    body = envelope(tokyo, machine_uuid=machine)
    body["machine"]["timezone"] = "Asia/Tokyo"

    response = post(owner_client, body)

    assert response.json()["counts"]["claude_daily_instances"]["removed"] == 1
    assert claude_days(machine) == {"2026-11-21": 1100}


def test_a_day_two_days_away_in_the_farthest_timezone_still_replaces_its_old_day(owner_client):
    """UTC-12 and UTC+14 are 26 hours apart: 11-20 in the first overlaps 11-21 and 11-22 in
    the second, so a report of 11-22 alone covers it (the regrouping looks two days around
    the listed ones)."""
    machine = uuid.uuid4()
    # 10:00 UTC on 11-21 is still 11-20 at UTC-12 (Etc/GMT+12), and 00:00 on 11-22 at UTC+14.
    hour = hourly_report("2026-11-21T10:00:00Z")
    old = envelope({**daily_report(WEBAPP, "2026-11-20", 100, 1000), **hour}, machine_uuid=machine)
    old["machine"]["timezone"] = "Etc/GMT+12"
    post(owner_client, old)
    new = envelope({**daily_report(WEBAPP, "2026-11-22", 100, 1000), **hour}, machine_uuid=machine)
    new["machine"]["timezone"] = "Pacific/Kiritimati"

    response = post(owner_client, new)

    assert response.json()["counts"]["claude_daily_instances"]["removed"] == 1
    assert claude_days(machine) == {"2026-11-22": 1100}


def test_a_report_in_the_same_timezone_and_key_mode_never_deletes(owner_client):
    machine = uuid.uuid4()
    post(owner_client, envelope(daily_report(WEBAPP, "2026-11-20", 1, 1), machine_uuid=machine))
    other_project = daily_report(API_SERVER, "2026-11-20", 2, 2)
    response = post(owner_client, envelope(other_project, machine_uuid=machine))
    assert response.json()["counts"]["claude_daily_instances"]["removed"] == 0
    assert DailyUsage.objects.filter(machine__uuid=machine).count() == 2


def test_hashed_project_keys_replace_the_folder_keys_of_the_days_they_cover(owner_client):
    machine = uuid.uuid4()
    folders = daily_report(WEBAPP, "2026-10-20", 1, 1, (WEBAPP, "2026-11-20", 5, 5))
    post(owner_client, envelope(folders, machine_uuid=machine, project_keys="folder"))
    hashed = daily_report("0123456789abcdef", "2026-11-20", 5, 5)
    response = post(owner_client, envelope(hashed, machine_uuid=machine, project_keys="hashed"))

    assert response.json()["counts"]["claude_daily_instances"]["removed"] == 1
    stored = DailyUsage.objects.filter(machine__uuid=machine).order_by("day")
    assert [(d.day.isoformat(), d.project.key) for d in stored] == [
        ("2026-10-20", WEBAPP),
        ("2026-11-20", "0123456789abcdef"),
    ]


def test_an_unknown_project_key_mode_is_refused_with_its_path(owner_client):
    body = envelope(daily_report(WEBAPP, "2026-11-20", 1, 1), project_keys="plain")
    response = post(owner_client, body)
    assert response.status_code == 400
    assert "project_keys" in response.json()["errors"]
    assert not DailyUsage.objects.exists()
