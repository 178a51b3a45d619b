"""A real Celery worker on Redis computes blocks after ingest, and survives being killed.

These start `celery -A telemetry_site worker` processes against the test database, so they
need PostgreSQL (`DATABASE_URL`, which a second process can reach) and Redis (`REDIS_URL`).
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from telemetry_site.celery import app
from tests.conftest import ROOT
from tests.factories import utc
from tests.usage.ccusage_runs import envelope, hourly_report
from usage.analytics.blocks import Bucket, blocks_for_buckets
from usage.ingest.pipeline import archive, process_batch
from usage.models import Block, BlockContribution, HourlyUsage, IngestBatch

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MACHINE = uuid.UUID("6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b")
WAIT_SECONDS = 60


def _database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def broker(monkeypatch):
    """The test's Redis database, emptied, with tasks really sent instead of run inline."""
    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is unset: the worker tests need a real Redis broker")
    if connection.vendor != "postgresql":
        pytest.skip("DATABASE_URL is not PostgreSQL: a worker process cannot see this database")
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    # Left-overs of an earlier run (queued or unacknowledged messages) must not leak in.
    client.delete("celery", "unacked", "unacked_index", "unacked_mutex")
    monkeypatch.setattr(app.conf, "task_always_eager", False)
    yield client
    client.delete("celery", "unacked", "unacked_index", "unacked_mutex")


class Worker:
    """One `celery worker` process (solo pool: the task runs in the process we kill)."""

    def __init__(self, log_dir: Path, name: str, visibility_timeout: int = 3600):
        self.log = log_dir / f"{name}.log"
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "TESTING": "0",
            "CELERY_VISIBILITY_TIMEOUT": str(visibility_timeout),
            "LOG_FORMAT": "text",
        }
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "telemetry_site",
                    "worker",
                    "--pool",
                    "solo",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel",
                    "INFO",
                    "--hostname",
                    f"{name}-{uuid.uuid4().hex[:8]}@test",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_for(lambda: "ready." in self.output(), "the worker to start")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, condition, what: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited while waiting for {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.output()}")
            time.sleep(0.2)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers(tmp_path):
    started: list[Worker] = []

    def start(name: str, **kwargs) -> Worker:
        worker = Worker(tmp_path, name, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def ingest(user, hours: list[str], *, full: bool = True) -> IngestBatch:
    body = envelope("laptop", MACHINE, {"blocks_hourly": hourly_report(hours)}, full=full)
    result = process_batch(archive(user, None, body), body=body)
    return result.batch


def derived(batch: IngestBatch) -> bool:
    return IngestBatch.objects.filter(pk=batch.pk, derived_at__isnull=False).exists()


def expected_blocks() -> list[tuple]:
    buckets = [Bucket.from_row(row) for row in HourlyUsage.objects.all()]
    return [(s.start_time, s.total_tokens, s.entries) for s in blocks_for_buckets(buckets)]


def stored_blocks() -> list[tuple]:
    return list(
        Block.objects.order_by("start_time").values_list("start_time", "total_tokens", "entries")
    )


def test_a_worker_computes_blocks_after_ingest(member, broker, workers):
    worker = workers("derive")
    batch = ingest(member, ["2026-11-20T10", "2026-11-20T12", "2026-11-20T16"])
    worker.wait_for(lambda: derived(batch), "the derived work of the batch")

    assert stored_blocks() == [
        (utc(2026, 11, 20, 10), 200, 4),
        (utc(2026, 11, 20, 16), 100, 2),
    ]
    assert "usage.tasks.derive_after_ingest" in worker.output()


def test_a_worker_killed_mid_task_leaves_consistent_data_and_the_task_is_redelivered(
    member, broker, workers
):
    first = ingest(member, ["2026-11-20T10", "2026-11-20T20"])
    worker = workers("doomed")
    worker.wait_for(lambda: derived(first), "the first batch's blocks")
    before = stored_blocks()
    assert [b[0] for b in before] == [utc(2026, 11, 20, 10), utc(2026, 11, 20, 20)]
    second_block = Block.objects.get(start_time=utc(2026, 11, 20, 20))

    # Another session holds the second block's row, so the worker updates the first block
    # and then waits on the second: it dies mid-transaction, with a partial write pending.
    locker = psycopg.connect(_database_url())
    # A session caches pg_stat_activity per transaction: poll from an autocommit one.
    watcher = psycopg.connect(_database_url(), autocommit=True)
    try:
        locker.execute("SELECT id FROM usage_block WHERE id = %s FOR UPDATE", [second_block.pk])
        late = ingest(member, ["2026-11-20T11", "2026-11-20T21"], full=False)
        worker.wait_for(lambda: _waiting_on_a_lock(watcher), "the worker to block on the row")
        worker.kill()
    finally:
        locker.rollback()
        locker.close()
        watcher.close()

    # Nothing of the killed transaction survived, and the batch is not marked done.
    assert stored_blocks() == before
    assert not derived(late)

    # A new worker gets the unacknowledged task once the visibility timeout passes.
    rescuer = workers("rescuer", visibility_timeout=2)
    rescuer.wait_for(lambda: derived(late), "the redelivered task to finish")
    assert "usage.tasks.derive_after_ingest" in rescuer.output()
    assert stored_blocks() == expected_blocks()
    assert [b[1:] for b in stored_blocks()] == [(200, 4), (200, 4)]
    for block in Block.objects.all():
        parts = BlockContribution.objects.filter(block=block)
        assert sum(p.total_tokens for p in parts) == block.total_tokens


def _waiting_on_a_lock(watcher) -> bool:
    row = watcher.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchone()
    return row[0] > 0
