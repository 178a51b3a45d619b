"""`make bench`: ingest and read-path figures on a synthetic team, written to docs/benchmarks.md.

It builds a team of members with several machines each, sends every machine's history through
the real ingest endpoint (full, then an identical re-send, then an incremental window), then
times the read API and the dashboard pages as an admin of the whole team. Uses its own
database (var/bench/ by default, or DATABASE_URL) so it never touches development data.
"""

import argparse
import gzip
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("VAR_DIR", str(ROOT / "var" / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetry_site.settings")
os.environ.setdefault("INGEST_THROTTLE_RATE", "1000000/minute")
os.environ.setdefault("READ_THROTTLE_RATE", "1000000/minute")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Derived work runs inline so the figures include blocks and budget checks after each ingest.
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from accounts.models import AllowedEmail, ApiToken, Membership, Role, Team, User  # noqa: E402
from benchmarks import otlp, sections  # noqa: E402
from benchmarks.scale_ingest import analyze_if_no_autovacuum  # noqa: E402

MODELS = ["claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"]
PRICE_PER_TOKEN = {MODELS[0]: 6e-6, MODELS[1]: 2e-6, MODELS[2]: 5e-7}
TEAM_SLUG = "bench"


def _tokens(rng: random.Random) -> dict:
    inp, out = rng.randint(50, 2000), rng.randint(500, 40000)
    cc, cr = rng.randint(1000, 80000), rng.randint(10000, 900000)
    return {
        "inputTokens": inp,
        "outputTokens": out,
        "cacheCreationTokens": cc,
        "cacheReadTokens": cr,
    }


def _cost(model: str, t: dict) -> float:
    return sum(t.values()) * PRICE_PER_TOKEN[model]


def build_envelope(
    machine_uuid: str, name: str, days: list[date], projects: int, rng: random.Random, *, full: bool
) -> dict:
    """A ccusage-shaped envelope: daily per project and model, hourly buckets, sessions."""
    per_project: dict[str, list] = {}
    hourly, sessions = [], []
    for day in days:
        for p in range(projects):
            if rng.random() < 0.3:
                continue
            key = f"-home-dev-src-project{p}"
            breakdowns = []
            for model in rng.sample(MODELS, 2):
                t = _tokens(rng)
                breakdowns.append({**t, "modelName": model, "cost": _cost(model, t)})
            row = {
                k: sum(b[k] for b in breakdowns)
                for k in ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens")
            }
            row.update(
                date=day.isoformat(),
                project=key,
                modelBreakdowns=breakdowns,
                modelsUsed=[b["modelName"] for b in breakdowns],
                totalCost=sum(b["cost"] for b in breakdowns),
                totalTokens=sum(row.values()),
            )
            per_project.setdefault(key, []).append(row)
            start = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
            sessions.append(
                {
                    **row,
                    "sessionId": str(uuid.UUID(int=rng.getrandbits(128))),
                    "projectPath": key,
                    "firstActivity": start.isoformat(),
                    "lastActivity": (start + timedelta(hours=2)).isoformat(),
                }
            )
        for h in sorted(rng.sample(range(8, 20), 5)):
            start = datetime(day.year, day.month, day.day, h, tzinfo=UTC)
            t = _tokens(rng)
            model = rng.choice(MODELS)
            hourly.append(
                {
                    "id": start.isoformat(),
                    "startTime": start.isoformat(),
                    "endTime": (start + timedelta(hours=1)).isoformat(),
                    "actualEndTime": (start + timedelta(minutes=40)).isoformat(),
                    "isActive": False,
                    "isGap": False,
                    "entries": rng.randint(5, 60),
                    "tokenCounts": {
                        "inputTokens": t["inputTokens"],
                        "outputTokens": t["outputTokens"],
                        "cacheCreationInputTokens": t["cacheCreationTokens"],
                        "cacheReadInputTokens": t["cacheReadTokens"],
                    },
                    "totalTokens": sum(t.values()),
                    "costUSD": _cost(model, t),
                    "models": [model],
                    "burnRate": None,
                    "projection": None,
                }
            )
    totals = {
        "inputTokens": 0,
        "outputTokens": 0,
        "cacheCreationTokens": 0,
        "cacheReadTokens": 0,
        "totalCost": 0.0,
        "totalTokens": 0,
    }
    for rows in per_project.values():
        for row in rows:
            for k in totals:
                totals[k] += row[k]
    return {
        "schema": 1,
        "machine": {
            "uuid": machine_uuid,
            "name": name,
            "hostname": name,
            "os": "Linux",
            "agent_version": "bench",
            "ccusage_version": "20.0.24",
            "timezone": "UTC",
        },
        "full": full,
        "since": None if full else days[0].isoformat(),
        "reports": {
            "claude_daily_instances": {"projects": per_project, "totals": totals},
            "claude_session": {"sessions": sessions, "totals": totals},
            "blocks_hourly": {"blocks": hourly},
        },
    }


def reset_team() -> Team:
    from usage.models import Machine

    # Facts protect their projects, so machines (and their facts) go before the team.
    Machine.objects.filter(team__slug=TEAM_SLUG).delete()
    User.objects.filter(email__endswith="@bench.example").delete()
    Team.objects.filter(slug=TEAM_SLUG).delete()
    team = Team.objects.create(name="Bench", slug=TEAM_SLUG, timezone="UTC")
    # Tokens work only for members still admitted by the allow-list.
    AllowedEmail.objects.create(pattern="@bench.example", team=team, role=Role.MEMBER)
    return team


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


# One full upload in this many is ingested under tracemalloc for the memory figures.
MEMORY_EVERY = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=40)
    parser.add_argument("--machines", type=int, default=2, help="machines per member")
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--projects", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument(
        "--otlp-events", type=int, default=10_000, help="api_request events for the OTLP section"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)

    print("== preparing database", flush=True)
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    team = reset_team()
    admin = User.objects.create_user("admin@bench.example")
    Membership.objects.create(user=admin, team=team, role=Role.OWNER)

    today = datetime.now(UTC).date()
    history = [today - timedelta(days=i) for i in range(args.days, 0, -1)]
    client = Client()
    full_times, resend_times, incr_times, sizes, peaks = [], [], [], [], []
    total = args.members * args.machines
    done = 0
    for m in range(args.members):
        user = User.objects.create_user(f"member{m}@bench.example")
        Membership.objects.create(user=user, team=team, role=Role.MEMBER)
        _, raw = ApiToken.issue(user, "bench", ["ingest", "read"])
        headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}", "HTTP_CONTENT_ENCODING": "gzip"}
        for k in range(args.machines):
            machine_uuid = str(uuid.UUID(int=rng.getrandbits(128)))
            env = build_envelope(machine_uuid, f"m{m}-{k}", history, args.projects, rng, full=True)
            body = gzip.compress(json.dumps(env).encode())
            sizes.append(len(body))

            def post(payload=body, headers=headers):
                response = client.post(
                    "/api/v1/ingest/", payload, content_type="application/json", **headers
                )
                assert response.status_code in (200, 201), response.content[:300]
                return response

            if done % MEMORY_EVERY == MEMORY_EVERY - 1:
                # Memory is sampled on some uploads and their times left out: tracemalloc
                # slows every allocation two to three times.
                tracemalloc.start()
                post()
                peaks.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
            else:
                full_times.append(timed(post)[0])
            resend_times.append(timed(post)[0])
            window = build_envelope(
                machine_uuid, f"m{m}-{k}", history[-3:], args.projects, rng, full=False
            )
            incr_times.append(
                timed(lambda w=window: post(gzip.compress(json.dumps(w).encode())))[0]
            )
            done += 1
            if done % max(1, total // 10) == 0 or done == total:
                print(f"   ingested {done}/{total} machines", flush=True)
                # Outside the timings, as a server's auto-analyze would.
                analyze_if_no_autovacuum()

    from usage.models import DailyUsage, HourlyUsage, SessionUsage

    rows = {
        "daily facts": DailyUsage.objects.filter(machine__team=team).count(),
        "hourly facts": HourlyUsage.objects.filter(machine__team=team).count(),
        "sessions": SessionUsage.objects.filter(machine__team=team).count(),
    }
    print("== read path as the team's owner", flush=True)
    client.force_login(admin)
    since = (today - timedelta(days=30)).isoformat()
    reads = {
        "GET /api/v1/usage/ team by day, 30 days": (
            f"/api/v1/usage/?scope=team&group_by=day&since={since}"
        ),
        "GET /api/v1/usage/ team by member, all time": "/api/v1/usage/?scope=team&group_by=member",
        "GET /api/v1/usage/ team by project, 30 days": (
            f"/api/v1/usage/?scope=team&group_by=project&since={since}"
        ),
        "GET /api/v1/blocks/ (owner's subscriptions)": "/api/v1/blocks/",
        "GET / (overview page)": "/",
        "GET /team/ (team page)": "/team/",
        "GET /usage/ (explorer page)": "/usage/",
        "GET /machines/": "/machines/",
    }
    read_rows = []
    for label, url in reads.items():
        # The query log is a bounded deque, full after ingest: empty it or nothing is counted.
        reset_queries()
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        seconds, response = timed(lambda u=url: client.get(u), repeat=5)
        read_rows.append((label, response.status_code, seconds * 1000, len(queries)))

    print("== OTLP receivers", flush=True)
    otlp_lines = otlp.run(
        team, rng, events=args.otlp_events, progress=lambda m: print(m, flush=True)
    )

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    db = connection.vendor
    lines = [
        f"## A {args.members}-member team (`make bench`, `benchmarks/run.py`)",
        "",
        "Wall times are the best of the runs noted, on one process with the Django test client",
        "(no network), so they measure our code and the database, not a proxy.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; database: {db}; Python "
        f"{platform.python_version()}; {os.cpu_count()} cores.",
        f"- Team: {args.members} members x {args.machines} machines, {args.days} days, up to "
        f"{args.projects} projects, 2 models a project-day, 5 active hours a day.",
        f"- Stored: {', '.join(f'{v:,} {k}' for k, v in rows.items())}.",
        "",
        "### Ingest (per machine upload)",
        "",
        "Each upload's time includes the derived work it triggers (blocks, data-quality checks,",
        "budget evaluation), run inline here instead of on a worker.",
        "",
        "| upload | median ms | max ms |",
        "|---|---:|---:|",
        f"| full history ({statistics.median(sizes) / 1024:,.0f} KiB gzip) | "
        f"{statistics.median(full_times) * 1000:,.0f} | {max(full_times) * 1000:,.0f} |",
        f"| identical re-send (duplicate) | {statistics.median(resend_times) * 1000:,.0f} | "
        f"{max(resend_times) * 1000:,.0f} |",
        f"| incremental 3-day window | {statistics.median(incr_times) * 1000:,.0f} | "
        f"{max(incr_times) * 1000:,.0f} |",
        "",
        (
            f"Peak Python memory while ingesting one full history (one upload in {MEMORY_EVERY}, "
            "under tracemalloc and left out of the times above): "
            f"{statistics.median(peaks) / 2**20:,.1f} MiB median, "
            f"{max(peaks) / 2**20:,.1f} MiB max; "
            if peaks
            else f"Peak Python memory: not sampled (fewer than {MEMORY_EVERY} uploads); "
        )
        + f"process peak RSS over the whole run: {rss_mb:,.0f} MiB.",
        "",
        "### Read path (team owner, best of 5)",
        "",
        "| request | status | ms | SQL queries |",
        "|---|---:|---:|---:|",
        *[f"| {label} | {status} | {ms:,.1f} | {q} |" for label, status, ms, q in read_rows],
    ]
    report = "\n".join(lines)
    print(report)
    print("\n".join(otlp_lines))
    if args.output:
        output = Path(args.output)
        sections.replace_section(output, "bench", report)
        sections.replace_section(output, "otlp", "\n".join(otlp_lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
