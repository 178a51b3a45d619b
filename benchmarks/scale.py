"""`make bench-scale`: the read path at a 1,000-member team, on PostgreSQL.

Builds a synthetic team (by default 1,000 members x 3 machines x 2 years: ~7.7M daily facts,
~900k hourly facts over 60 days, ~2.2M sessions with some copied between machines, ~120k
blocks, quota readings, budgets) directly in PostgreSQL with set-based SQL, in a database of
its own (`bench_scale` next to the one DATABASE_URL names, created when missing), and reuses
it on the next run unless `--rebuild` is given or the shape asked for differs. Then it times
every page and read API call of issue 13 as the team's owner and as a member: p50/p95 over
`--repeat` runs after one warm-up, and the SQL queries of the warm-up.

    make bench-scale                                  # the 1,000-member team
    make bench-scale BENCH_ARGS="--members 100"       # small and quick
    .venv/bin/python -m benchmarks.scale --rebuild --repeat 10 --output docs/benchmarks.md

The figures replace the section between the `scale` markers of docs/benchmarks.md when
`--output` is given (`make bench` keeps that section).

Ingest measurements hook in here: when a module `benchmarks/scale_ingest.py` exists, its
`run(database_url: str, report: Report) -> None` is called after the read path (skip it with
`--skip-ingest`). `database_url` is the benchmark database's URL (Django is already set up on
it), `report.context` describes the dataset (team slug, counts, members, machines) and the
function adds its own figures with `report.section(title, text)` and
`report.table(headers, rows)`; they land in the same output.
"""

# SQL here is built from this module's constants; values always go in as parameters.
# ruff: noqa: S608

import argparse
import gc
import importlib
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import sections  # noqa: E402

TEAM_SLUG = "scale"
# The advisory lock a build holds (session level, released when the run ends).
BUILD_LOCK = 4_813_001
DOMAIN = "scale.example"


# --- the database ------------------------------------------------------------------------------
def bench_database_url(base_url: str, name: str) -> str:
    """The URL of database `name` on the server `base_url` names; SystemExit unless PostgreSQL."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise SystemExit(
            "bench-scale needs PostgreSQL: set DATABASE_URL, e.g. "
            "DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make bench-scale "
            f"(got {parts.scheme or 'nothing'!r}). It creates and uses a database named {name!r}."
        )
    return urlunsplit(parts._replace(path="/" + name))


def ensure_database(url: str) -> None:
    """Create the benchmark database when it does not exist yet."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        print(f"== creating database {name}", flush=True)
        conn.execute(f'CREATE DATABASE "{name}"')


# --- the dataset -------------------------------------------------------------------------------
MODELS = (
    ("claude-opus-4-5-20251101", 5, 25),
    ("claude-sonnet-4-5-20250929", 3, 15),
    ("claude-haiku-4-5-20251001", 1, 5),
)


def _steps(shape: dict) -> list[tuple[str, list[str]]]:
    """(label, SQL statements) in order; %(name)s placeholders come from `shape`."""
    # Five (project slot, model) pairs a machine can use on a day: distinct, so the natural
    # key never collides; slot 4 is Codex on every fifth machine.
    slots = (
        "(VALUES (0, 0, 'claude-opus-4-5-20251101', 5.0, 25.0, 'claude-code'),"
        " (1, 0, 'claude-sonnet-4-5-20250929', 3.0, 15.0, 'claude-code'),"
        " (2, 1, 'claude-sonnet-4-5-20250929', 3.0, 15.0, 'claude-code'),"
        " (3, 1, 'claude-haiku-4-5-20251001', 1.0, 5.0, 'claude-code'),"
        " (4, 2, 'claude-opus-4-5-20251101', 5.0, 25.0, 'claude-code'))"
        " AS slot(n, proj, model, in_price, out_price, source)"
    )
    numbered = (
        "(SELECT mc.id, mc.owner_id, mc.subscription_id,"
        " row_number() OVER (ORDER BY mc.id) - 1 AS idx,"
        " dense_rank() OVER (ORDER BY mc.owner_id) - 1 AS member_idx"
        " FROM usage_machine mc WHERE mc.team_id = %(team)s)"
    )
    projects = (
        "(SELECT p.id, row_number() OVER (ORDER BY p.id) - 1 AS idx"
        " FROM usage_project p WHERE p.team_id = %(team)s)"
    )
    daily = []
    for chunk in range(shape["chunks"]):
        daily.append(
            f"""
            INSERT INTO usage_dailyusage (input_tokens, output_tokens, cache_creation_tokens,
              cache_read_tokens, total_tokens, cost_usd, source, day, model, updated_at,
              machine_id, project_id, reported_at, project_key_mode, report_timezone,
              priced_by_server)
            SELECT t.i, t.o, t.cc, t.cr, t.i + t.o + t.cc + t.cr,
              round((t.i * slot.in_price + t.o * slot.out_price + t.cc * slot.in_price * 1.25
                     + t.cr * slot.in_price * 0.1) / 1e6, 10),
              CASE WHEN slot.n = 4 AND m.idx %% 5 = 0 THEN 'codex' ELSE slot.source END,
              d.day, CASE WHEN slot.n = 4 AND m.idx %% 5 = 0 THEN 'gpt-5-codex'
                          ELSE slot.model END,
              now(), m.id, p.id, now(), '', 'UTC', false
            FROM {numbered} m
            CROSS JOIN (SELECT day::date, row_number() OVER (ORDER BY day) AS n
                        FROM generate_series(%(first_day)s::date, %(today)s::date,
                                             interval '1 day') day) d
            CROSS JOIN {slots}
            JOIN {projects} p
              ON p.idx = (m.member_idx * 7 + slot.proj + d.n / 14) %% %(projects)s
            CROSS JOIN LATERAL (SELECT (random() * 2000 + 50 + m.idx * 0)::bigint AS i,
                (random() * 40000 + 500 + d.n * 0)::bigint AS o,
                (random() * 80000 + 1000)::bigint AS cc,
                (random() * 900000 + 10000 + slot.n * 0)::bigint AS cr) t
            WHERE m.idx %% %(chunks)s = {chunk} AND random() < 0.7
            """
        )
    unpriced = f"""
        INSERT INTO usage_dailyusage (input_tokens, output_tokens, cache_creation_tokens,
          cache_read_tokens, total_tokens, cost_usd, source, day, model, updated_at, machine_id,
          project_id, reported_at, project_key_mode, report_timezone, priced_by_server)
        SELECT 100, 2000, 0, 5000, 7100, 0, 'opencode', d.day, 'glm-4.6', now(), m.id, p.id,
          now(), '', 'UTC', false
        FROM {numbered} m
        CROSS JOIN generate_series(%(first_day)s::date, %(today)s::date, interval '1 day') d(day)
        JOIN {projects} p ON p.idx = m.member_idx %% %(projects)s
        WHERE random() < 0.01
    """
    hourly = f"""
        INSERT INTO usage_hourlyusage (input_tokens, output_tokens, cache_creation_tokens,
          cache_read_tokens, total_tokens, cost_usd, hour, entries, last_activity, models_used,
          updated_at, machine_id, reported_at, first_activity)
        SELECT t.i, t.o, t.cc, t.cr, t.i + t.o + t.cc + t.cr,
          round((t.i * 3 + t.o * 15 + t.cc * 3.75 + t.cr * 0.3) / 1e6, 10),
          h.hour, 20, h.hour + interval '40 minutes', '["claude-sonnet-4-5-20250929"]',
          now(), m.id, now(), h.hour + interval '3 minutes'
        FROM {numbered} m
        CROSS JOIN generate_series(date_trunc('day', now()) - %(hourly_days)s * interval '1 day'
                                   + interval '8 hours',
                                   date_trunc('hour', now()) - interval '1 hour',
                                   interval '1 hour') h(hour)
        CROSS JOIN LATERAL (SELECT (random() * 2000 + 50 + m.idx * 0)::bigint AS i,
            (random() * 40000 + 500)::bigint AS o, (random() * 80000 + 1000)::bigint AS cc,
            (random() * 900000 + 10000 + extract(epoch FROM h.hour) * 0)::bigint AS cr) t
        WHERE extract(hour FROM h.hour) BETWEEN 8 AND 19 AND random() < 0.42
    """
    sessions = f"""
        INSERT INTO usage_sessionusage (input_tokens, output_tokens, cache_creation_tokens,
          cache_read_tokens, total_tokens, cost_usd, session_id, source, first_activity,
          last_activity, models_used, updated_at, machine_id, project_id, reported_at)
        SELECT t.i, t.o, t.cc, t.cr, t.i + t.o + t.cc + t.cr,
          round((t.i * 3 + t.o * 15 + t.cc * 3.75 + t.cr * 0.3) / 1e6, 10),
          gen_random_uuid()::text, 'claude-code', d.day + interval '9 hours',
          d.day + interval '11 hours', '["claude-sonnet-4-5-20250929"]', now(), m.id, p.id,
          now()
        FROM {numbered} m
        CROSS JOIN (SELECT day::date, row_number() OVER (ORDER BY day) AS n
                    FROM generate_series(%(first_day)s::date, %(today)s::date,
                                         interval '1 day') day) d
        JOIN {projects} p ON p.idx = (m.member_idx * 7 + d.n / 14) %% %(projects)s
        CROSS JOIN LATERAL (SELECT (random() * 2000 + 50 + m.idx * 0)::bigint AS i,
            (random() * 40000 + 500 + d.n * 0)::bigint AS o,
            (random() * 80000 + 1000)::bigint AS cc, (random() * 900000 + 10000)::bigint AS cr) t
        WHERE %(today)s::date - d.day < %(days)s
    """
    # A copied ~/.claude: a few sessions of each member's first machine again on the second.
    copies = """
        INSERT INTO usage_sessionusage (input_tokens, output_tokens, cache_creation_tokens,
          cache_read_tokens, total_tokens, cost_usd, session_id, source, first_activity,
          last_activity, models_used, updated_at, machine_id, project_id, reported_at)
        SELECT s.input_tokens, s.output_tokens, s.cache_creation_tokens, s.cache_read_tokens,
          s.total_tokens, s.cost_usd, s.session_id, s.source, s.first_activity, s.last_activity,
          s.models_used, now(), other.id, s.project_id, now()
        FROM usage_sessionusage s
        JOIN usage_machine own ON own.id = s.machine_id AND own.team_id = %(team)s
        JOIN LATERAL (SELECT o.id FROM usage_machine o WHERE o.owner_id = own.owner_id
                      AND o.id > own.id ORDER BY o.id LIMIT 1) other ON true
        WHERE random() < 0.003
    """
    blocks = """
        INSERT INTO usage_block (input_tokens, output_tokens, cache_creation_tokens,
          cache_read_tokens, total_tokens, cost_usd, start_time, end_time, last_activity,
          entries, models_used, machine_count, overlap, computed_at, subscription_id, is_active,
          first_activity)
        SELECT 1000, 20000, 40000, 400000, 461000, 4.2, b.start, b.start + interval '5 hours',
          b.start + interval '4 hours', 80, '["claude-sonnet-4-5-20250929"]', 1, false, now(),
          s.id, false, b.start + interval '2 minutes'
        FROM usage_subscription s
        JOIN accounts_membership ms ON ms.user_id = s.owner_id AND ms.team_id = %(team)s
        CROSS JOIN generate_series(date_trunc('day', now()) - %(hourly_days)s * interval '1 day',
                                   date_trunc('day', now()) - interval '1 day',
                                   interval '1 day') d(day)
        CROSS JOIN (VALUES (interval '9 hours'), (interval '14 hours')) o(off)
        CROSS JOIN LATERAL (SELECT d.day + o.off AS start) b
    """
    running = """
        INSERT INTO usage_block (input_tokens, output_tokens, cache_creation_tokens,
          cache_read_tokens, total_tokens, cost_usd, start_time, end_time, last_activity,
          entries, models_used, machine_count, overlap, computed_at, subscription_id, is_active,
          first_activity)
        SELECT 500, 9000, 20000, 200000, 229500, 2.1, date_trunc('hour', now()) - interval '1 hour',
          date_trunc('hour', now()) + interval '4 hours', now() - interval '10 minutes', 30,
          '["claude-opus-4-5-20251101"]', 1, false, now(), s.id, true,
          date_trunc('hour', now()) - interval '1 hour'
        FROM usage_subscription s
        JOIN accounts_membership ms ON ms.user_id = s.owner_id AND ms.team_id = %(team)s
        WHERE s.owner_id %% 10 = 0 OR ms.role = 'owner'
    """
    contributions = """
        INSERT INTO usage_blockcontribution (input_tokens, output_tokens, cache_creation_tokens,
          cache_read_tokens, total_tokens, cost_usd, entries, last_activity, block_id, machine_id)
        SELECT b.input_tokens, b.output_tokens, b.cache_creation_tokens, b.cache_read_tokens,
          b.total_tokens, b.cost_usd, b.entries, b.last_activity, b.id, m.id
        FROM usage_block b
        JOIN LATERAL (SELECT mc.id FROM usage_machine mc WHERE mc.subscription_id
                      = b.subscription_id ORDER BY mc.id LIMIT 1) m ON true
        JOIN usage_subscription s ON s.id = b.subscription_id
        JOIN accounts_membership ms ON ms.user_id = s.owner_id AND ms.team_id = %(team)s
    """
    quotas = """
        INSERT INTO usage_ratelimitsnapshot (captured_at, five_hour_used_pct,
          five_hour_resets_at, seven_day_used_pct, seven_day_resets_at, extra_windows,
          machine_id, subscription_id, reported_at)
        SELECT now() - g * interval '8 hours', round((random() * 90)::numeric, 2),
          now() - g * interval '8 hours' + interval '3 hours', round((random() * 80)::numeric, 2),
          now() + interval '3 days', '{}', m.id, m.subscription_id, now()
        FROM usage_machine m CROSS JOIN generate_series(0, 19) g
        WHERE m.team_id = %(team)s
          AND m.id = (SELECT min(o.id) FROM usage_machine o WHERE o.owner_id = m.owner_id)
    """
    budgets = """
        INSERT INTO budgets_budget (public_id, name, scope, period, amount_usd, thresholds,
          forecast_alerts, active, created_at, updated_at, member_id, project_id, team_id,
          enforcement)
        SELECT gen_random_uuid(), 'Team month', 'team', 'month', 500000, '[90, 100]'::jsonb,
          true, true, now(), now(), NULL::bigint, NULL::bigint, %(team)s, 'notify'
        UNION ALL
        SELECT gen_random_uuid(), 'Project ' || p.id, 'project', 'month', 20000, '[90, 100]'::jsonb,
          true, true, now(), now(), NULL::bigint, p.id, %(team)s, 'notify'
        FROM (SELECT id FROM usage_project WHERE team_id = %(team)s AND alias_of_id IS NULL
              ORDER BY id LIMIT 5) p
        UNION ALL
        SELECT gen_random_uuid(), 'Member ' || ms.user_id, 'member', 'week', 300,
          '[90, 100]'::jsonb, true, true, now(), now(), ms.user_id, NULL::bigint, %(team)s, 'warn'
        FROM (SELECT user_id FROM accounts_membership WHERE team_id = %(team)s
              ORDER BY user_id LIMIT 5) ms
    """
    return [
        (
            "members, subscriptions, machines, projects",
            [
                """INSERT INTO accounts_user (password, is_superuser, public_id, email, name,
                     timezone, is_active, is_staff, date_joined)
                   SELECT '!', false, gen_random_uuid(),
                     CASE WHEN g = 1 THEN 'owner@scale.example'
                          ELSE 'member' || g || '@scale.example' END,
                     CASE WHEN g = 1 THEN 'Owner' ELSE 'Member ' || g END, 'UTC', true, false,
                     now()
                   FROM generate_series(1, %(members)s) g""",
                # Only people the allow-list admits may stay logged in.
                """INSERT INTO accounts_allowedemail (pattern, role, created_at, team_id, public_id)
                   VALUES ('@scale.example', 'member', now(), %(team)s, gen_random_uuid())""",
                """INSERT INTO accounts_membership (role, created_at, user_id, team_id)
                   SELECT CASE WHEN email = 'owner@scale.example' THEN 'owner' ELSE 'member' END,
                     now(), id, %(team)s FROM accounts_user WHERE email LIKE '%%@scale.example'""",
                """INSERT INTO usage_subscription (public_id, label, plan, is_default,
                     created_at, owner_id)
                   SELECT gen_random_uuid(), 'Claude account', 'max5x', true, now(), user_id
                   FROM accounts_membership WHERE team_id = %(team)s""",
                """INSERT INTO usage_machine (uuid, name, hostname, os, agent_version,
                     ccusage_version, timezone, first_seen_at, last_seen_at, last_sync_status,
                     last_sync_error, last_sync_counts, lost_history_days, owner_id, team_id,
                     subscription_id, fingerprint, os_user, ingest_path, reported_name,
                     retired_at)
                   SELECT gen_random_uuid(), 'pc' || k, 'pc' || k, 'Linux', 'bench', '20.0.24',
                     'UTC', now() - %(days)s * interval '1 day',
                     now() - random() * interval '2 days', 'ok', '', '{}', '[]', s.owner_id,
                     %(team)s, s.id, '', '', 'agent', 'pc' || k,
                     CASE WHEN k = 3 AND s.owner_id %% 50 = 0 THEN now() END
                   FROM usage_subscription s
                   JOIN accounts_membership ms ON ms.user_id = s.owner_id
                   CROSS JOIN generate_series(1, %(machines)s) k
                   WHERE ms.team_id = %(team)s""",
                """INSERT INTO usage_project (public_id, key, display_name, cwd, git_remote,
                     created_at, team_id, keep_apart, remote_key)
                   SELECT gen_random_uuid(), '-home-dev-src-project' || g, 'project' || g, '',
                     '', now(), %(team)s, false, ''
                   FROM generate_series(1, %(projects)s) g""",
                # Every 25th project is a second clone grouped under the one before it.
                """UPDATE usage_project p SET alias_of_id = p.id - 1
                   WHERE p.team_id = %(team)s AND p.id %% 25 = 0
                     AND EXISTS (SELECT 1 FROM usage_project q WHERE q.id = p.id - 1
                                 AND q.team_id = %(team)s)""",
            ],
        ),
        *[(f"daily facts, part {i + 1}/{len(daily)}", [sql]) for i, sql in enumerate(daily)],
        ("daily facts nobody priced", [unpriced]),
        ("hourly facts", [hourly]),
        ("sessions", [sessions]),
        ("copied sessions", [copies]),
        ("blocks", [blocks, running, contributions]),
        ("quota readings and budgets", [quotas, budgets]),
    ]


def build_dataset(args) -> dict:
    """Build (or reuse) the team; returns the dataset's description for the report."""
    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Team

    print("== migrating the benchmark database", flush=True)
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    shape = {
        "members": args.members,
        "machines": args.machines,
        "days": args.days,
        "hourly_days": args.hourly_days,
        "projects": max(12, args.members // 4),
    }
    with connection.cursor() as cur:
        # A second run started during a build waits for it, then reuses what it built.
        print("== waiting for any other build of this database", flush=True)
        cur.execute("SELECT pg_advisory_lock(%s)", [BUILD_LOCK])
        cur.execute(
            "CREATE TABLE IF NOT EXISTS bench_scale_shape (shape jsonb NOT NULL, "
            "built_at timestamptz NOT NULL)"
        )
        cur.execute("SELECT shape, built_at FROM bench_scale_shape")
        row = cur.fetchone()
    team = Team.objects.filter(slug=TEAM_SLUG).first()
    # Django hands jsonb over as text.
    built = json.loads(row[0]) if row and isinstance(row[0], str) else (row[0] if row else None)
    if row and team and built == shape and not args.rebuild:
        print(f"== reusing the dataset built {row[1]:%Y-%m-%d %H:%M} UTC ({shape})", flush=True)
        return describe(team, shape, reused=row[1])

    from usage import rollups
    from usage.analytics import ratelimits
    from usage.models import Subscription

    started = time.perf_counter()
    print(f"== building {shape}", flush=True)
    with connection.cursor() as cur:
        # Millions of rows go in set-based; the rollups are summed once at the end instead.
        cur.execute("ALTER TABLE usage_dailyusage DISABLE TRIGGER USER")
    try:
        team = _build(args, shape, today := datetime.now(UTC).date())
    finally:
        with connection.cursor() as cur:
            cur.execute("ALTER TABLE usage_dailyusage ENABLE TRIGGER USER")
    with connection.cursor() as cur:
        t0 = time.perf_counter()
        rollups.rebuild([team.pk])
        print(f"   rollups: {time.perf_counter() - t0:,.1f} s", flush=True)
        # The quota readings went in with SQL: store each account's latest ones as ingest does.
        ratelimits.store_latest_readings(
            Subscription.objects.filter(owner__membership__team=team).values_list("pk", flat=True)
        )
        t0 = time.perf_counter()
        cur.execute("ANALYZE")
        print(f"   analyze: {time.perf_counter() - t0:,.1f} s", flush=True)
        cur.execute("DELETE FROM bench_scale_shape")
        cur.execute("INSERT INTO bench_scale_shape VALUES (%s::jsonb, now())", [json.dumps(shape)])
    print(f"== built {today} in {time.perf_counter() - started:,.0f} s", flush=True)
    return describe(team, shape, reused=None)


def _build(args, shape: dict, today):
    from datetime import timedelta

    from django.db import connection, transaction

    from accounts.models import Team

    drop_team()
    team = Team.objects.create(name="Scale", slug=TEAM_SLUG, timezone="UTC")
    params = {
        **shape,
        "team": team.pk,
        "today": today,
        "first_day": today - timedelta(days=args.days - 1),
        "chunks": 10,
    }
    with connection.cursor() as cur:
        cur.execute("SELECT setseed(0.13)")
        for label, statements in _steps(params):
            t0 = time.perf_counter()
            rows = 0
            with transaction.atomic():
                for sql in statements:
                    cur.execute(sql, params)
                    rows += max(cur.rowcount, 0)
            print(f"   {label}: {rows:,} rows in {time.perf_counter() - t0:,.1f} s", flush=True)
    return team


def drop_team() -> None:
    """Remove an earlier build: set-based deletes (the ORM would load millions of rows)."""
    from django.db import connection

    statements = [
        # The stored latest quota readings point at the snapshots deleted below.
        "DELETE FROM usage_latestquotareading WHERE subscription_id IN (SELECT s.id FROM"
        " usage_subscription s JOIN accounts_user u ON u.id = s.owner_id"
        " WHERE u.email LIKE %(like)s)",
        "DELETE FROM usage_blockcontribution WHERE machine_id IN (SELECT id FROM usage_machine"
        " WHERE team_id IN (SELECT id FROM accounts_team WHERE slug = %(slug)s))",
        "DELETE FROM usage_block WHERE subscription_id IN (SELECT s.id FROM usage_subscription s"
        " JOIN accounts_user u ON u.id = s.owner_id WHERE u.email LIKE %(like)s)",
        *[
            f"DELETE FROM {table} WHERE machine_id IN (SELECT id FROM usage_machine WHERE"
            " team_id IN (SELECT id FROM accounts_team WHERE slug = %(slug)s))"
            for table in (
                "usage_dailyusage",
                "usage_hourlyusage",
                "usage_sessionusage",
                "usage_ratelimitsnapshot",
            )
        ],
        *[
            f"DELETE FROM {table} WHERE team_id IN (SELECT id FROM accounts_team"
            " WHERE slug = %(slug)s)"
            for table in ("usage_usagerollup", "usage_usagerollupdelta")
        ],
    ]
    with connection.cursor() as cur:
        for sql in statements:
            cur.execute(sql, {"slug": TEAM_SLUG, "like": f"%@{DOMAIN}"})
    from accounts.models import Team, User

    Team.objects.filter(slug=TEAM_SLUG).delete()
    User.objects.filter(email__endswith=f"@{DOMAIN}").delete()


def vacuum_without_autovacuum() -> str:
    """VACUUM (ANALYZE) the usage tables holding dead rows when the server runs without
    autovacuum (a CI-style configuration), so figures are those of a kept database: dead rows
    left by the build and by rollup folds would otherwise slow every read (and stop index-only
    scans). Returns the tables vacuumed, comma-separated ("" when none or autovacuum is on)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW autovacuum")
        if cur.fetchone()[0] == "on":
            return ""
        cur.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE n_dead_tup > 1000"
            " AND relname LIKE 'usage%%' ORDER BY relname"
        )
        tables = [row[0] for row in cur.fetchall()]
        for table in tables:
            print(f"== autovacuum is off: VACUUM (ANALYZE) {table}", flush=True)
            cur.execute(f'VACUUM (ANALYZE) "{table}"')
        if tables:
            # Write the pages the vacuum dirtied now, not during the timed requests.
            cur.execute("CHECKPOINT")
    return ", ".join(f"`{t}`" for t in tables)


# docs/production.md, "PostgreSQL settings": the ones a database can set for itself.
RECOMMENDED_SETTINGS = {"jit": "off", "random_page_cost": "1.1", "work_mem": "32MB"}


def apply_recommended_settings(database: str, *, defaults: bool) -> str:
    """Set (or with `defaults`, reset) RECOMMENDED_SETTINGS on the benchmark database, as an
    operator would with ALTER DATABASE, and reconnect so they apply. Returns a sentence
    for the report saying which settings the figures were measured with."""
    from django.db import connection

    with connection.cursor() as cur:
        for name, value in RECOMMENDED_SETTINGS.items():
            if defaults:
                cur.execute(f'ALTER DATABASE "{database}" RESET {name}')
            else:
                cur.execute(f'ALTER DATABASE "{database}" SET {name} = %s', [value])
    connection.close()  # a database's settings apply to the connections made after them
    with connection.cursor() as cur:
        shown = []
        for name in (*RECOMMENDED_SETTINGS, "shared_buffers", "effective_cache_size"):
            cur.execute(f"SHOW {name}")
            shown.append(f"`{name}` {cur.fetchone()[0]}")
    which = "the server's own" if defaults else "docs/production.md's per-database ones"
    return f"{which} ({', '.join(shown)})"


def describe(team, shape: dict, reused) -> dict:
    from django.db import connection

    counts = {}
    with connection.cursor() as cur:
        for label, sql in (
            ("daily facts", "usage_dailyusage f"),
            ("hourly facts", "usage_hourlyusage f"),
            ("sessions", "usage_sessionusage f"),
        ):
            cur.execute(
                f"SELECT count(*) FROM {sql} JOIN usage_machine m ON m.id = f.machine_id"
                " WHERE m.team_id = %s",
                [team.pk],
            )
            counts[label] = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM usage_block b JOIN usage_subscription s"
            " ON s.id = b.subscription_id JOIN accounts_membership ms ON ms.user_id = s.owner_id"
            " WHERE ms.team_id = %s",
            [team.pk],
        )
        counts["blocks"] = cur.fetchone()[0]
    return {
        "team": team.slug,
        "team_id": team.pk,
        "shape": shape,
        "counts": counts,
        "reused": reused,
    }


# --- the report --------------------------------------------------------------------------------
@dataclass
class Report:
    """Markdown sections of the run; the ingest hook adds its own with section() and table()."""

    context: dict = field(default_factory=dict)
    parts: list[str] = field(default_factory=list)

    def section(self, title: str, text: str = "") -> None:
        self.parts.append(f"### {title}\n\n{text}".rstrip() + "\n")
        print(f"\n== {title}", flush=True)

    def table(self, headers: list[str], rows: list[list]) -> None:
        aligns = ["---" if i == 0 else "---:" for i in range(len(headers))]
        lines = [
            "| " + " | ".join(headers) + " |",
            "|" + "|".join(aligns) + "|",
            *["| " + " | ".join(str(c) for c in row) + " |" for row in rows],
        ]
        text = "\n".join(lines)
        self.parts.append(text + "\n")
        print(text, flush=True)

    def markdown(self) -> str:
        return "\n".join(self.parts)


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile of `samples` (seconds or anything else): the smallest sample
    with at least `pct` % of the samples at or below it (the 19th of 20 for p95)."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


READS_AS_OWNER = [
    ("overview `/`", "/"),
    ("overview `/?scope=team`", "/?scope=team"),
    ("`/team/`", "/team/"),
    ("explorer `/usage/` (own)", "/usage/"),
    ("explorer `/usage/?scope=team`", "/usage/?scope=team"),
    ("`/machines/`", "/machines/"),
    ("`/blocks/?scope=team`", "/blocks/?scope=team"),
    ("`/api/v1/usage/` team by member, all time", "/api/v1/usage/?scope=team&group_by=member"),
    ("`/api/v1/usage/` team by project, all time", "/api/v1/usage/?scope=team&group_by=project"),
    ("`/api/v1/usage/` team by day, all time", "/api/v1/usage/?scope=team&group_by=day"),
    ("explorer `/usage/?scope=team&split=machine`", "/usage/?scope=team&split=machine"),
    ("`/sessions/?scope=team`", "/sessions/?scope=team"),
    ("`/projects/`", "/projects/"),
    ("`/settings/subscriptions/`", "/settings/subscriptions/"),
    ("`/budgets/`", "/budgets/"),
    ("`/budgets/channels/`", "/budgets/channels/"),
    ("`/settings/tokens/`", "/settings/tokens/"),
    ("`/settings/otlp/`", "/settings/otlp/"),
    ("`/api/v1/sessions/` team", "/api/v1/sessions/?scope=team"),
    ("`/api/v1/blocks/` team", "/api/v1/blocks/?scope=team"),
    ("`/api/v1/pace/` team", "/api/v1/pace/?scope=team"),
    ("`/api/v1/plan-value/` team", "/api/v1/plan-value/?scope=team"),
    ("`/api/v1/rate-limits/` team", "/api/v1/rate-limits/?scope=team"),
    ("`/api/v1/chargeback/`", "/api/v1/chargeback/"),
]
READS_AS_MEMBER = [
    ("overview `/`", "/"),
    ("`/team/`", "/team/"),
    ("explorer `/usage/?scope=team`", "/usage/?scope=team"),
    ("`/machines/`", "/machines/"),
    ("`/api/v1/usage/` own by day, all time", "/api/v1/usage/?group_by=day"),
    ("`/sessions/`", "/sessions/"),
    ("`/projects/`", "/projects/"),
    ("`/budgets/`", "/budgets/"),
    ("`/api/v1/sessions/` own", "/api/v1/sessions/"),
]


def measure_reads(report: Report, repeat: int, only: str | None) -> list[dict]:
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User

    # As telemetry_site.wsgi does after start-up: the set-up's objects are not walked again by
    # each full collection, whose pause would otherwise land on one timed request.
    gc.collect()
    gc.freeze()
    results = []
    for who, email, reads in (
        ("owner", f"owner@{DOMAIN}", READS_AS_OWNER),
        ("member", f"member2@{DOMAIN}", READS_AS_MEMBER),
    ):
        client = Client()
        client.force_login(User.objects.get(email=email))
        rows = []
        for label, url in reads:
            if only and only not in url:
                continue
            reset_queries()
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url)
            # What the warm-up built for good, as a web process after its first requests
            # (telemetry_site.wsgi.FreezeAfterWarmUp).
            gc.collect()
            gc.freeze()
            status = response.status_code
            if status != 200:
                raise SystemExit(f"{who} {url} answered {status}: the figures would be wrong")
            samples = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                client.get(url)
                samples.append((time.perf_counter() - t0) * 1000)
            p50, p95 = statistics.median(samples), percentile(samples, 95)
            rows.append([label, status, f"{p50:,.0f}", f"{p95:,.0f}", len(captured)])
            results.append(
                {
                    "who": who,
                    "label": label,
                    "url": url,
                    "status": status,
                    "p50": p50,
                    "p95": p95,
                    "queries": len(captured),
                }
            )
            print(
                f"   {who} {url}: {status}, p50 {p50:,.0f} ms, p95 {p95:,.0f} ms, "
                f"{len(captured)} queries",
                flush=True,
            )
        report.section(f"Read path as the team's {who} (ms over {repeat} runs after a warm-up)")
        report.table(["request", "status", "p50 ms", "p95 ms", "SQL queries"], rows)
    return results


def write_output(path: Path, text: str) -> None:
    """Replace the scale section of `path` (appended when the file has none yet)."""
    sections.replace_section(path, "scale", text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--machines", type=int, default=3, help="machines per member")
    parser.add_argument("--days", type=int, default=730, help="days of daily facts and sessions")
    parser.add_argument("--hourly-days", type=int, default=60, help="days of hourly facts")
    parser.add_argument("--database", default="bench_scale", help="database to build in")
    parser.add_argument("--rebuild", action="store_true", help="drop and build the team again")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per request")
    parser.add_argument("--only", help="time only the requests whose URL contains this")
    parser.add_argument("--skip-read", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--output", help="markdown file whose scale section gets the figures")
    parser.add_argument(
        "--server-defaults",
        action="store_true",
        help="measure with the server's settings instead of docs/production.md's per-database ones",
    )
    args = parser.parse_args()

    url = bench_database_url(os.environ.get("DATABASE_URL", ""), args.database)
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetry_site.settings")
    os.environ.setdefault("READ_THROTTLE_RATE", "1000000/minute")
    os.environ.setdefault("INGEST_THROTTLE_RATE", "1000000/minute")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("VAR_DIR", str(ROOT / "var" / "bench-scale"))
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]

    dataset = build_dataset(args)
    vacuumed = vacuum_without_autovacuum()
    tuned = apply_recommended_settings(args.database, defaults=args.server_defaults)
    report = Report(context={**dataset, "database_url": url})
    counts = ", ".join(f"{v:,} {k}" for k, v in dataset["counts"].items())
    shape = dataset["shape"]
    report.parts.append(
        "## At a 1,000-member team (`make bench-scale`)\n\n"
        "Made by `make bench-scale` (`benchmarks/scale.py`) on PostgreSQL; the dataset is built\n"
        "with set-based SQL in a database of its own and timed with the Django test client.\n\n"
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Python {platform.python_version()};"
        f" {os.cpu_count()} cores.\n"
        f"- Team: {shape['members']:,} members x {shape['machines']} machines,"
        f" {shape['days']} days of daily facts and sessions, {shape['hourly_days']} days of"
        f" hourly facts and blocks, {shape['projects']} projects.\n"
        f"- Stored: {counts}.\n"
        + f"- PostgreSQL settings: {tuned}.\n"
        + (
            f"- This PostgreSQL runs with `autovacuum = off`: the run vacuumed {vacuumed} first,"
            " as autovacuum would have (docs/production.md keeps it on).\n"
            if vacuumed
            else ""
        )
    )
    if not args.skip_read:
        measure_reads(report, args.repeat, args.only)
    if not args.skip_ingest:
        try:
            ingest = importlib.import_module("benchmarks.scale_ingest")
        except ModuleNotFoundError as exc:
            if exc.name != "benchmarks.scale_ingest":
                raise
            print("== no benchmarks/scale_ingest.py: ingest not measured", flush=True)
        else:
            ingest.run(url, report)
    if args.output:
        write_output(Path(args.output), report.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
