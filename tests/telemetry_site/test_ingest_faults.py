"""Ingest under real faults, with real processes on PostgreSQL: the server's database
connection killed in the middle of a report, and a 150,000-row first sync under gunicorn's
default 30-second timeout. The agent's own HTTP client sends, the read API judges."""

import gzip
import json
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
import pytest
import time_machine
from claude_telemetry.client import Client
from django.utils import timezone

from tests.conftest import token_for
from tests.telemetry_site.processes import (
    CeleryWorker,
    Gunicorn,
    database_url,
    production_env,
    require_postgresql,
)
from tests.usage.ingest.helpers import (
    OUTPUT,
    SONNET,
    cents,
    envelope,
    expected_totals,
    fixture_reports,
    hourly_report,
)
from usage import tasks
from usage.models import BatchStatus, DailyUsage, HourlyUsage, IngestBatch, SessionUsage

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HOURS = [f"2026-11-2{d}T{h:02d}:00:00Z" for d in (2, 3) for h in (9, 10, 11)]


@pytest.fixture
def postgresql():
    require_postgresql()


def gz(body: dict) -> bytes:
    return gzip.compress(json.dumps(body).encode())


def usage_totals(server: Gunicorn, raw_token: str) -> dict:
    response = httpx.get(
        f"{server.url}/api/v1/usage/",
        params={"group_by": "source", "since": "2020-01-01", "until": "2026-12-31"},
        headers={"Authorization": f"Bearer {raw_token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()["totals"]


def backend_waiting_on_a_lock(watcher, locker_pid: int) -> int | None:
    row = watcher.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND pid <> %s",
        [locker_pid],
    ).fetchone()
    return row[0] if row else None


# --- the server's database connection dropped mid-report -----------------------------------------
def test_a_database_connection_dropped_mid_report_fails_cleanly_and_the_retry_is_exact(
    postgresql, member, tmp_path
):
    raw = token_for(member)
    server = Gunicorn(production_env(tmp_path), tmp_path / "gunicorn.log")
    machine = str(uuid.uuid4())
    try:
        with Client(server.url, raw) as agent:
            # The machine's hours are stored once, so the report below updates those rows.
            first = envelope(hourly_report(*HOURS), machine_uuid=machine)
            assert agent.ingest(gz(first)).status == 201
        more = hourly_report(*HOURS)["blocks_hourly"]
        for block in more["blocks"]:
            block["tokenCounts"]["outputTokens"] += 1
        report = envelope(fixture_reports(hourly=more), machine_uuid=machine)

        # Another session holds the machine's hour rows: the server's transaction writes the
        # daily facts, then waits on those rows, and its connection is killed right there.
        locker = psycopg.connect(database_url())
        watcher = psycopg.connect(database_url(), autocommit=True)
        answer: dict = {}

        def send() -> None:
            answer["response"] = httpx.post(
                f"{server.url}/api/v1/ingest/",
                content=gz(report),
                headers={
                    "Authorization": f"Bearer {raw}",
                    "Content-Type": "application/json",
                    "Content-Encoding": "gzip",
                },
                timeout=60,
            )

        try:
            locker.execute(
                "SELECT h.id FROM usage_hourlyusage h JOIN usage_machine m ON m.id = h.machine_id "
                "WHERE m.uuid = %s FOR UPDATE",
                [machine],
            )
            sender = threading.Thread(target=send)
            sender.start()
            deadline = time.monotonic() + 30
            pid = None
            while pid is None and time.monotonic() < deadline:
                pid = backend_waiting_on_a_lock(watcher, locker.info.backend_pid)
                time.sleep(0.05)
            assert pid is not None, server.output()
            watcher.execute("SELECT pg_terminate_backend(%s)", [pid])
            sender.join(timeout=60)
        finally:
            locker.rollback()
            locker.close()
            watcher.close()

        response = answer["response"]
        assert response.status_code == 503
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Retry-After"] == "30"
        assert "database was unavailable" in response.json()["detail"]
        # Nothing of the killed transaction was kept: the day facts it had written are gone.
        assert not DailyUsage.objects.exists() and not SessionUsage.objects.exists()
        assert set(HourlyUsage.objects.values_list("output_tokens", flat=True)) == {900}
        left = IngestBatch.objects.get(public_id=response.json()["batch_id"])
        assert left.status == BatchStatus.RECEIVED  # its archive is safe for the sweep

        # The agent keeps the report and sends it again: stored exactly once.
        with Client(server.url, raw) as agent:
            assert agent.ingest(gz(report)).status == 201
        expected = expected_totals(OUTPUT)
        totals = usage_totals(server, raw)
        assert totals["total_tokens"] == expected["total_tokens"]
        assert cents(totals["cost_usd"]) == cents(expected["cost_usd"])
        assert set(HourlyUsage.objects.values_list("output_tokens", flat=True)) == {901}

        # The interrupted batch is processed later by the sweep, and changes no total.
        with time_machine.travel(timezone.now() + timedelta(minutes=11)):
            assert tasks.sweep_ingest_backlog() == 1
        left.refresh_from_db()
        assert left.status == BatchStatus.PROCESSED
        assert usage_totals(server, raw) == totals
    finally:
        server.stop()


# --- a 150,000-row first sync under gunicorn's defaults ----------------------------------------
ROWS_PER_KIND_DAYS = 730
PROJECTS = 90


def big_history() -> tuple[dict, dict]:
    """Two years of 90 projects, every day: 65,700 daily rows, as many sessions, and 17,520
    hourly buckets (148,920 rows), with their totals summed here, independently of the server."""
    start = date(2024, 11, 1)
    projects: dict[str, list] = {}
    sessions, hours = [], []
    tokens = dict.fromkeys(("input", "output", "cache_creation", "cache_read"), 0)
    cost = Decimal(0)
    n = 0
    for offset in range(ROWS_PER_KIND_DAYS):
        day = start + timedelta(days=offset)
        for p in range(PROJECTS):
            n += 1
            counts = {
                "inputTokens": 100 + n % 50,
                "outputTokens": 1000 + n % 300,
                "cacheCreationTokens": 2000 + n % 70,
                "cacheReadTokens": 30000 + n % 900,
            }
            row_cost = Decimal(n % 100) / 100
            for key, field in zip(counts, tokens, strict=True):
                tokens[field] += counts[key]
            cost += row_cost
            breakdown = {"modelName": SONNET, **counts, "cost": float(row_cost)}
            key = f"-home-dev-src-project{p}"
            row = {
                "date": day.isoformat(),
                **counts,
                "totalTokens": sum(counts.values()),
                "totalCost": float(row_cost),
                "modelsUsed": [SONNET],
                "modelBreakdowns": [breakdown],
            }
            projects.setdefault(key, []).append(row)
            first = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
            sessions.append(
                {
                    **row,
                    "sessionId": str(uuid.UUID(int=n)),
                    "projectPath": key,
                    "firstActivity": first.isoformat(),
                    "lastActivity": (first + timedelta(hours=2)).isoformat(),
                }
            )
        for hour in range(24):
            begin = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
            hours.append(begin.strftime("%Y-%m-%dT%H:%M:%SZ"))
    reports = {
        "claude_daily_instances": {"projects": projects, "totals": {}},
        "claude_session": {"sessions": sessions, "totals": {}},
        "blocks_hourly": hourly_report(*hours)["blocks_hourly"],
    }
    rows = sum(len(r) for r in projects.values()) + len(sessions) + len(hours)
    assert rows == 148_920
    expected = {f"{k}_tokens": v for k, v in tokens.items()}
    expected["total_tokens"] = sum(tokens.values())
    expected["cost_usd"] = cost
    return reports, expected


def test_a_150k_row_first_sync_succeeds_under_gunicorns_default_timeout(
    postgresql, member, tmp_path
):
    reports, expected = big_history()
    body = gz(envelope(reports, name="big"))
    raw = token_for(member)
    env = production_env(tmp_path)
    server = Gunicorn(env, tmp_path / "gunicorn.log")
    worker = CeleryWorker(env, tmp_path / "worker.log")
    try:
        # gunicorn kills a request still running after 30 s: an answer at all proves it.
        with Client(server.url, raw, follow_seconds=0) as agent:
            ack = agent.ingest(body)
        assert ack.status == 202, ack.data
        batch_id = ack.data["batch_id"]

        worker.wait_for(
            lambda: IngestBatch.objects.filter(
                public_id=batch_id, status=BatchStatus.PROCESSED
            ).exists(),
            "the worker to process the big report",
            seconds=280,
        )
        totals = usage_totals(server, raw)
        for field in ("input", "output", "cache_creation", "cache_read", "total"):
            assert totals[f"{field}_tokens"] == expected[f"{field}_tokens"], field
        assert Decimal(totals["cost_usd"]) == expected["cost_usd"]
        assert DailyUsage.objects.count() == 65_700
        assert SessionUsage.objects.count() == 65_700
        assert HourlyUsage.objects.count() == 17_520
        state = httpx.get(
            f"{server.url}/api/v1/ingest/batches/{batch_id}/",
            headers={"Authorization": f"Bearer {raw}"},
            timeout=30,
        ).json()
        assert state["status"] == "processed"
        assert state["counts"]["claude_daily_instances"]["created"] == 65_700
    finally:
        worker.stop()
        server.stop()
    assert "WORKER TIMEOUT" not in server.output()
