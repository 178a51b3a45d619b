"""Ingest at a 50-member team (issue 13): what an upload costs against PostgreSQL's own upsert.

Builds its own team (`ingest-bench`, 50 members x 2 machines, 90 days by default) in the
benchmark database and measures, on PostgreSQL:

- full-history uploads (archive, parse, store: rows per second) against PostgreSQL's own
  `INSERT … SELECT FROM unnest … ON CONFLICT DO UPDATE` of the same rows into copies of the fact
  tables (same indexes and foreign keys), in the same run (the anchor), without and with the
  derived work (blocks, copied sessions, lost history, budget checks) run inline;
- an identical re-send (answered as a duplicate), the same rows in a new body (nothing may be
  rewritten), and an incremental 3-day sync with its derived work, through the ingest view;
- N machines syncing at once through a real gunicorn and a real Celery worker, until every
  batch is stored and derived.

`make bench-scale` calls `run(database_url, report)` after the read path; alone:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python -m benchmarks.scale_ingest --output docs/benchmarks.md

Alone, it uses the database `bench_ingest` on that server (created when missing) and writes
its figures between the `scale-ingest` markers of `--output`. The concurrent run needs
REDIS_URL (broker and cache shared by the web and worker processes); that Redis database is
emptied first, so give it one of its own.
"""

# SQL here is built from model metadata and this module's constants; values are parameters.
# ruff: noqa: S608

import argparse
import gzip
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import sections  # noqa: E402

TEAM_SLUG = "ingest-bench"
DOMAIN = "ingest-bench.example"
# The fact tables, their natural keys, and the anchor copy each one gets.
FACT_TABLES = {
    "usage_dailyusage": ("machine_id", "source", "day", "project_id", "model"),
    "usage_hourlyusage": ("machine_id", "hour"),
    "usage_sessionusage": ("machine_id", "session_id"),
}

# What one team's syncs grow: the facts, the rows about them and the rollups.
ANALYZED_TABLES = (
    *FACT_TABLES,
    "usage_machine",
    "usage_project",
    "usage_ingestbatch",
    "usage_requestkey",
    "usage_block",
    "usage_usagerollup",
    "usage_usagerollupdelta",
)


@dataclass
class Options:
    members: int = 50
    machines: int = 2
    days: int = 90
    projects: int = 6
    seed: int = 13
    concurrent: int = 50
    rounds: int = 3
    # Rounds first run and shown apart: a web server's and worker's first requests load code
    # and open connections, once after each start.
    warmup_rounds: int = 1
    web_workers: int = 4
    worker_concurrency: int = 2


@dataclass
class Machine:
    user_id: int
    token: str
    uuid: str
    name: str
    history: list[date] = field(default_factory=list)


def run(database_url: str, report, options: Options | None = None) -> None:
    """Measure ingest at a 50-member team and add the figures to `report` (benchmarks.scale's
    Report: section(title, text) and table(headers, rows)). Django must be set up on
    `database_url` (a PostgreSQL database the benchmark may write to)."""
    from django.db import connection

    options = options or Options()
    if connection.vendor != "postgresql":
        raise SystemExit("scale_ingest measures PostgreSQL: set DATABASE_URL to one")
    rng = random.Random(options.seed)
    machines = _build_team(options, rng)
    full = _measure_full_uploads(machines, options, rng)
    later = _measure_resends(machines, options, rng)
    concurrent = _measure_concurrent(database_url, machines, options, rng)
    _report(report, options, full, later, concurrent)


# --- the team ------------------------------------------------------------------------------------
def _build_team(options: Options, rng: random.Random) -> list[Machine]:
    from accounts.models import AllowedEmail, ApiToken, Membership, Role, Team, User
    from budgets.models import Budget, ScopeKind
    from usage.models import Machine as MachineRow

    print(f"== ingest: building the {options.members}-member team", flush=True)
    MachineRow.objects.filter(team__slug=TEAM_SLUG).delete()
    Team.objects.filter(slug=TEAM_SLUG).delete()
    User.objects.filter(email__endswith=f"@{DOMAIN}").delete()
    team = Team.objects.create(name="Ingest bench", slug=TEAM_SLUG, timezone="UTC")
    AllowedEmail.objects.create(pattern=f"@{DOMAIN}", team=team, role=Role.MEMBER)
    owner = User.objects.create_user(f"owner@{DOMAIN}")
    Membership.objects.create(user=owner, team=team, role=Role.OWNER)
    # Budgets as a team keeps them: the team's, one per member, checked after every ingest.
    Budget.objects.create(team=team, name="Team", amount_usd=100_000)
    today = datetime.now(UTC).date()
    history = [today - timedelta(days=i) for i in range(options.days, 0, -1)]
    machines = []
    for m in range(options.members):
        user = User.objects.create_user(f"member{m}@{DOMAIN}")
        Membership.objects.create(user=user, team=team, role=Role.MEMBER)
        Budget.objects.create(
            team=team, name=f"member {m}", scope=ScopeKind.MEMBER, member=user, amount_usd=2000
        )
        _, raw = ApiToken.issue(user, "bench", ["ingest", "read"])
        for k in range(options.machines):
            machines.append(
                Machine(
                    user.pk, raw, str(uuid.UUID(int=rng.getrandbits(128))), f"m{m}-{k}", history
                )
            )
    analyze_if_no_autovacuum()
    return machines


def analyze_if_no_autovacuum() -> None:
    """ANALYZE the usage tables, outside the timed parts, when a PostgreSQL server runs without
    autovacuum: its auto-analyze would have noticed the tables growing from nothing, and
    without statistics the planner picks plans for empty tables (a nested loop over every
    machine of the team in the copied-session trigger, for one)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cur:
        cur.execute("SHOW autovacuum")
        if cur.fetchone()[0] == "on":
            return
        for table in ANALYZED_TABLES:
            cur.execute(f"ANALYZE {table}")


def _body(machine: Machine, days: list[date], options: Options, rng, *, full: bool) -> bytes:
    from benchmarks.run import build_envelope

    envelope = build_envelope(machine.uuid, machine.name, days, options.projects, rng, full=full)
    return gzip.compress(json.dumps(envelope).encode())


# --- full uploads against the anchor -----------------------------------------------------------
def _measure_full_uploads(machines: list[Machine], options: Options, rng) -> dict:
    from django.db import connection, transaction

    from accounts.models import User
    from telemetry_site.celery import app as celery_app
    from usage import signals
    from usage.ingest import pipeline
    from usage.ingest.derive import derive_for_batch
    from usage.ingest.parsers import decode_json, parse_envelope
    from usage.models import Project

    _create_anchor_tables()
    celery_app.conf.task_always_eager = True
    store, derived, anchor, rows, sizes = [], [], [], [], []
    receivers = signals.batch_stored.receivers[:]
    print(f"== ingest: {len(machines)} full-history uploads", flush=True)
    for n, machine in enumerate(machines, start=1):
        raw = _body(machine, machine.history, options, rng, full=True)
        body = gzip.decompress(raw)
        user = User.objects.get(pk=machine.user_id)
        # Derived work is measured on its own below: the batch_stored receivers are detached
        # while storing, so nothing is queued.
        signals.batch_stored.receivers = []
        try:
            t0 = time.perf_counter()
            batch = pipeline.archive(user, None, body, raw)
            pipeline.process_batch(batch, body=body)
            store.append(time.perf_counter() - t0)
        finally:
            signals.batch_stored.receivers = receivers
        t0 = time.perf_counter()
        derive_for_batch(batch.pk)
        derived.append(time.perf_counter() - t0)
        envelope = parse_envelope(decode_json(body), now=batch.received_at)
        projects = dict(Project.objects.filter(team__slug=TEAM_SLUG).values_list("key", "pk"))
        arrays = _anchor_arrays(batch, envelope, projects)
        rows.append(sum(len(a[0]) for a in arrays.values()))
        t0 = time.perf_counter()
        with transaction.atomic():
            _anchor_upsert(arrays)
        anchor.append(time.perf_counter() - t0)
        sizes.append(len(raw))
        if n % max(1, len(machines) // 10) == 0:
            print(f"   {n}/{len(machines)} uploads", flush=True)
            analyze_if_no_autovacuum()
    _drop_anchor_tables()
    connection.close()
    return {"store": store, "derived": derived, "anchor": anchor, "rows": rows, "sizes": sizes}


def _create_anchor_tables() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        for table in FACT_TABLES:
            cur.execute(f"DROP TABLE IF EXISTS bench_anchor_{table}")
            # Same columns, defaults and indexes (the natural key's unique index among them)...
            cur.execute(f"CREATE TABLE bench_anchor_{table} (LIKE {table} INCLUDING ALL)")
            # ... and the same foreign keys (LIKE copies none), checked as ours are.
            cur.execute(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = %s::regclass AND contype = 'f'",
                [table],
            )
            for (definition,) in cur.fetchall():
                cur.execute(f"ALTER TABLE bench_anchor_{table} ADD {definition}")


def _drop_anchor_tables() -> None:
    from django.db import connection

    with connection.cursor() as cur:
        for table in FACT_TABLES:
            cur.execute(f"DROP TABLE IF EXISTS bench_anchor_{table}")


def _anchor_arrays(batch, envelope, projects: dict) -> dict[str, tuple[list, ...]]:
    """Per fact table, one list per column of the rows the upload stored (values as parsed)."""
    from usage.ingest.parsers import DAILY_KINDS

    machine, now = batch.machine_id, batch.received_at

    def figures(t):
        return [
            t.input_tokens,
            t.output_tokens,
            t.cache_creation_tokens,
            t.cache_read_tokens,
            t.total_tokens,
            t.cost_usd,
        ]

    daily = [
        [
            machine,
            r.source,
            r.day,
            projects[r.project_key],
            r.model,
            *figures(r.tokens),
            "UTC",
            "folder",
            False,
            batch.pk,
            now,
            now,
        ]
        for kind in DAILY_KINDS
        for r in envelope.reports.get(kind, ())
    ]
    hourly = [
        [
            machine,
            r.hour,
            *figures(r.tokens),
            r.entries,
            r.last_activity,
            json.dumps(r.models),
            r.limit_reset_at,
            r.first_activity,
            batch.pk,
            now,
            now,
        ]
        for r in envelope.reports.get("blocks_hourly", ())
    ]
    sessions = [
        [
            machine,
            r.session_id,
            r.source,
            projects[r.project_key],
            *figures(r.tokens),
            r.first_activity,
            r.last_activity,
            json.dumps(r.models),
            batch.pk,
            now,
            now,
        ]
        for r in envelope.reports.get("claude_session", ())
    ]
    return {
        "usage_dailyusage": tuple(map(list, zip(*daily, strict=True))),
        "usage_hourlyusage": tuple(map(list, zip(*hourly, strict=True))),
        "usage_sessionusage": tuple(map(list, zip(*sessions, strict=True))),
    }


FIGURES = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
ANCHOR_COLUMNS = {
    "usage_dailyusage": [
        ("machine_id", "bigint"),
        ("source", "text"),
        ("day", "date"),
        ("project_id", "bigint"),
        ("model", "text"),
        *[(f, "bigint") for f in (*FIGURES, "total_tokens")],
        ("cost_usd", "numeric"),
        ("report_timezone", "text"),
        ("project_key_mode", "text"),
        ("priced_by_server", "boolean"),
        ("batch_id", "bigint"),
        ("reported_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ],
    "usage_hourlyusage": [
        ("machine_id", "bigint"),
        ("hour", "timestamptz"),
        *[(f, "bigint") for f in (*FIGURES, "total_tokens")],
        ("cost_usd", "numeric"),
        ("entries", "integer"),
        ("last_activity", "timestamptz"),
        ("models_used", "jsonb"),
        ("limit_reset_at", "timestamptz"),
        ("first_activity", "timestamptz"),
        ("batch_id", "bigint"),
        ("reported_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ],
    "usage_sessionusage": [
        ("machine_id", "bigint"),
        ("session_id", "text"),
        ("source", "text"),
        ("project_id", "bigint"),
        *[(f, "bigint") for f in (*FIGURES, "total_tokens")],
        ("cost_usd", "numeric"),
        ("first_activity", "timestamptz"),
        ("last_activity", "timestamptz"),
        ("models_used", "jsonb"),
        ("batch_id", "bigint"),
        ("reported_at", "timestamptz"),
        ("updated_at", "timestamptz"),
    ],
}


def _anchor_upsert(arrays: dict) -> None:
    """PostgreSQL's own upsert of the rows: one INSERT … SELECT FROM unnest … ON CONFLICT DO
    UPDATE per table, the values already in arrays (no Python per row)."""
    from django.db import connection

    with connection.cursor() as cur:
        for table, columns in ANCHOR_COLUMNS.items():
            if not arrays[table]:
                continue
            names = [name for name, _ in columns]
            casts = ["%s::text[]" if kind == "jsonb" else f"%s::{kind}[]" for _, kind in columns]
            select = [
                f"u.c{i}::jsonb" if kind == "jsonb" else f"u.c{i}"
                for i, (_, kind) in enumerate(columns)
            ]
            keys = FACT_TABLES[table]
            updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n not in keys)
            cur.execute(
                f"INSERT INTO bench_anchor_{table} ({', '.join(names)}) "
                f"SELECT {', '.join(select)} FROM unnest({', '.join(casts)}) "
                f"AS u({', '.join(f'c{i}' for i in range(len(names)))}) "
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}",
                list(arrays[table]),
            )


# --- re-sends and incremental syncs through the view -----------------------------------------
def _measure_resends(machines: list[Machine], options: Options, rng) -> dict:
    from django.test import Client

    from telemetry_site.celery import app as celery_app
    from usage.models import IngestBatch

    celery_app.conf.task_always_eager = True
    client = Client()
    duplicate, same_rows, incremental, rewritten = [], [], [], []
    print(f"== ingest: re-sends and incremental syncs of {len(machines)} machines", flush=True)
    for machine in machines:
        headers = {
            "HTTP_AUTHORIZATION": f"Bearer {machine.token}",
            "HTTP_CONTENT_ENCODING": "gzip",
        }

        def post(body, headers=headers):
            t0 = time.perf_counter()
            response = client.post(
                "/api/v1/ingest/", body, content_type="application/json", **headers
            )
            assert response.status_code in (200, 201), response.content[:300]
            return time.perf_counter() - t0, response.json()

        last = (
            IngestBatch.objects.filter(machine__uuid=machine.uuid).order_by("-received_at").first()
        )
        assert last is not None
        raw = bytes(last.body_gzip)
        seconds, answer = post(raw)
        assert answer["duplicate"] is True
        duplicate.append(seconds)
        # The same rows in a body that is not identical (another agent version).
        envelope = json.loads(gzip.decompress(raw))
        envelope["machine"]["agent_version"] = "bench-again"
        seconds, answer = post(gzip.compress(json.dumps(envelope).encode()))
        same_rows.append(seconds)
        rewritten.append(
            sum(c.get("created", 0) + c.get("updated", 0) for c in answer["counts"].values())
        )
        # An incremental sync: the last three days (and today) with grown figures.
        today = datetime.now(UTC).date()
        window = [*machine.history[-2:], today]
        seconds, _ = post(_body(machine, window, options, rng, full=False))
        incremental.append(seconds)
    return {
        "duplicate": duplicate,
        "same_rows": same_rows,
        "rewritten": rewritten,
        "incremental": incremental,
    }


# --- machines syncing at once through gunicorn and a Celery worker ----------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _measure_concurrent(database_url: str, machines, options: Options, rng) -> dict:
    from django.db import connection

    from usage.models import IngestBatch

    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        print("== ingest: REDIS_URL not set, concurrent syncs not measured", flush=True)
        return {}
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-" + "x" * 50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "INGEST_THROTTLE_RATE": "1000000/minute",
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": str(ROOT / "var" / "bench-ingest-prometheus"),
    }
    Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    logs = ROOT / "var" / "bench-ingest"
    logs.mkdir(parents=True, exist_ok=True)
    bin_dir = Path(sys.executable).parent
    web = subprocess.Popen(
        [
            str(bin_dir / "gunicorn"),
            "telemetry_site.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(options.web_workers),
        ],
        cwd=ROOT,
        env=env,
        stdout=open(logs / "gunicorn.log", "w"),  # noqa: SIM115 (lives as long as the process)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = subprocess.Popen(
        [
            str(bin_dir / "celery"),
            "-A",
            "telemetry_site",
            "worker",
            "--loglevel=WARNING",
            f"--concurrency={options.worker_concurrency}",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(logs / "worker.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    results = []
    # A SIGTERM (timeout, kill) ends the run through the finally below, which stops the web
    # server and the worker: a worker left behind would take the next run's tasks.
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", web)
        time.sleep(3)  # the worker connects to the broker
        # One machine per member: N members' machines at once.
        chosen = machines[:: options.machines][: options.concurrent]
        for round_ in range(options.warmup_rounds + options.rounds):
            warmup = round_ < options.warmup_rounds
            bodies = [
                _body(m, [*m.history[-2:], datetime.now(UTC).date()], options, rng, full=False)
                for m in chosen
            ]
            start_mark = datetime.now(UTC)
            barrier = threading.Barrier(len(chosen))
            statuses: list = []

            def send(pair, port=port, barrier=barrier, statuses=statuses):
                machine, body = pair
                barrier.wait()
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/ingest/",
                    data=body,
                    method="POST",
                    headers={
                        "Authorization": f"Bearer {machine.token}",
                        "Content-Type": "application/json",
                        "Content-Encoding": "gzip",
                        # As the TLS proxy in front of gunicorn says (SECURE_SSL_REDIRECT).
                        "X-Forwarded-Proto": "https",
                    },
                )
                try:
                    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                        statuses.append(response.status)
                except OSError as exc:
                    statuses.append(exc)

            threads = [
                threading.Thread(target=send, args=(pair,))
                for pair in zip(chosen, bodies, strict=True)
            ]
            cpu_before = _cpu_by_role(web.pid, worker.pid)
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            answered = time.perf_counter() - t0
            if statuses.count(201) != len(chosen):
                raise RuntimeError(f"not every sync was stored: {statuses[:5]}")
            uuids = [m.uuid for m in chosen]
            while True:
                batches = IngestBatch.objects.filter(
                    machine__uuid__in=uuids, received_at__gte=start_mark
                )
                if batches.filter(derived_at__isnull=False).count() >= len(chosen):
                    break
                if time.perf_counter() - t0 > 300:
                    raise RuntimeError("derived work did not finish within 5 minutes")
                time.sleep(0.02)
            done = time.perf_counter() - t0
            cpu_after = _cpu_by_role(web.pid, worker.pid)
            cpu = {role: cpu_after[role] - cpu_before.get(role, 0.0) for role in cpu_after}
            results.append({"answered": answered, "derived": done, "cpu": cpu, "warmup": warmup})
            print(
                f"   {'warm-up' if warmup else 'round'} {round_ + 1}: {len(chosen)} syncs "
                f"answered in {answered:.2f} s, "
                f"derived in {done:.2f} s ({len(chosen) / done:.1f} syncs/s)",
                flush=True,
            )
            connection.close()
            time.sleep(2)
    finally:
        for process in (web, worker):
            os.killpg(process.pid, signal.SIGTERM)
        for process in (web, worker):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        signal.signal(signal.SIGTERM, previous)
    return {"n": len(chosen), "rounds": results}


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)


def _cpu_by_role(web_group: int, worker_group: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the web server's processes, the worker's,
    PostgreSQL's and this benchmark (the 50 clients and the polling), read from /proc: the
    split of where a sync's CPU goes on the shared 2 cores. Processes that ended are missed,
    so call it around a round with the same processes alive."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = {"web": 0.0, "worker": 0.0, "postgres": 0.0, "benchmark": 0.0}
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # After the name: state, ppid, pgrp, …; utime and stime are fields 14 and 15 of stat.
        group, used = int(fields[2]), (int(fields[11]) + int(fields[12])) / tick
        if int(entry.name) == me:
            totals["benchmark"] += used
        elif group == web_group:
            totals["web"] += used
        elif group == worker_group:
            totals["worker"] += used
        elif name == "postgres" or name.startswith("postgres:"):
            totals["postgres"] += used
    return totals


def _wait_for(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn stopped; see var/bench-ingest/gunicorn.log")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 60 s")


# --- the report ----------------------------------------------------------------------------------
def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:,.0f}"


def _p95(samples: list[float]) -> str:
    ordered = sorted(samples)
    return f"{ordered[max(0, round(0.95 * len(ordered)) - 1)] * 1000:,.0f}"


def _report(report, options: Options, full: dict, later: dict, concurrent: dict) -> None:
    rows = sum(full["rows"])
    ours = rows / sum(full["store"])
    ours_derived = rows / (sum(full["store"]) + sum(full["derived"]))
    anchor = rows / sum(full["anchor"])
    report.section(
        f"Ingest at a {options.members}-member team (`benchmarks/scale_ingest.py`)",
        f"{options.members} members x {options.machines} machines, {options.days} days, up to "
        f"{options.projects} projects; {len(full['rows'])} full-history uploads of "
        f"{statistics.median(full['rows']):,.0f} rows each "
        f"({statistics.median(full['sizes']) / 1024:,.0f} KiB gzip). The anchor is "
        "PostgreSQL's own `INSERT … SELECT FROM unnest … ON CONFLICT DO UPDATE` of the same "
        "rows into copies of the fact tables (same indexes and foreign keys), timed in the same "
        "run. On a server without autovacuum the usage tables are analyzed after the team is "
        "made and after every tenth of the uploads, outside the timings, as its auto-analyze "
        "would.",
    )
    report.table(
        ["full-history upload", "rows/s", "x anchor", "median ms", "p95 ms"],
        [
            [
                "PostgreSQL's own upsert (anchor)",
                f"{anchor:,.0f}",
                "1.00",
                _ms(full["anchor"]),
                _p95(full["anchor"]),
            ],
            [
                "ours, without derived work",
                f"{ours:,.0f}",
                f"{ours / anchor:.2f}",
                _ms(full["store"]),
                _p95(full["store"]),
            ],
            [
                "ours, with derived work",
                f"{ours_derived:,.0f}",
                f"{ours_derived / anchor:.2f}",
                _ms([a + b for a, b in zip(full["store"], full["derived"], strict=True)]),
                _p95([a + b for a, b in zip(full["store"], full["derived"], strict=True)]),
            ],
        ],
    )
    report.table(
        ["sync through the ingest view (derived work inline)", "median ms", "p95 ms"],
        [
            ["identical re-send (duplicate)", _ms(later["duplicate"]), _p95(later["duplicate"])],
            [
                f"same rows, new body ({max(later['rewritten'])} rows rewritten)",
                _ms(later["same_rows"]),
                _p95(later["same_rows"]),
            ],
            ["incremental 3-day sync", _ms(later["incremental"]), _p95(later["incremental"])],
        ],
    )
    load = os.getloadavg()[0]
    report.parts.append(
        f"Load average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores; other jobs "
        "share the machine, so wall times grow with it (the ratios to the anchor, timed "
        "alongside, much less).\n"
    )
    if concurrent:
        n = concurrent["n"]
        measured = [r for r in concurrent["rounds"] if not r["warmup"]]
        report.table(
            [
                f"{n} machines syncing at once (gunicorn {options.web_workers} workers, "
                f"Celery {options.worker_concurrency})",
                "all answered s",
                "all derived s",
                "syncs/s",
            ],
            [
                [
                    "warm-up (first requests after start)"
                    if r["warmup"]
                    else f"round {i + 1 - options.warmup_rounds}",
                    f"{r['answered']:.2f}",
                    f"{r['derived']:.2f}",
                    f"{n / r['derived']:.1f}",
                ]
                for i, r in enumerate(concurrent["rounds"])
            ],
        )
        roles = ("web", "worker", "postgres", "benchmark")
        per_sync = {
            role: statistics.median(r["cpu"][role] for r in measured) / n * 1000 for role in roles
        }
        total = sum(per_sync[role] for role in roles[:3])
        cores = os.cpu_count() or 1
        report.section(
            "Where a sync's CPU goes (median of the rounds, from /proc)",
            f"Per sync: web server {per_sync['web']:.0f} ms, worker {per_sync['worker']:.0f} ms,"
            f" PostgreSQL {per_sync['postgres']:.0f} ms: {total:.0f} ms of CPU in all, so"
            f" {cores} cores can process at most {cores * 1000 / total:.0f} syncs/s while"
            f" nothing else runs; the {n} clients and the polling of this benchmark, on the"
            f" same cores, took {per_sync['benchmark']:.0f} ms per sync more.",
        )


# --- alone ---------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Options()
    for name, value in vars(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=value)
    parser.add_argument("--database", default="bench_ingest")
    parser.add_argument("--output", help="markdown file whose scale-ingest section gets them")
    args = parser.parse_args()
    from benchmarks.scale import Report, bench_database_url, ensure_database

    url = bench_database_url(os.environ.get("DATABASE_URL", ""), args.database)
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetry_site.settings")
    os.environ.setdefault("INGEST_THROTTLE_RATE", "1000000/minute")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("VAR_DIR", str(ROOT / "var" / "bench-ingest"))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    options = Options(**{k: getattr(args, k) for k in vars(defaults)})
    report = Report(context={"database_url": url})
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0].split()[0]
    report.parts.append(
        f"_Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, PostgreSQL {version}, "
        f"{os.cpu_count()} cores._\n"
    )
    run(url, report, options)
    if args.output:
        sections.replace_section(Path(args.output), "scale-ingest", report.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
