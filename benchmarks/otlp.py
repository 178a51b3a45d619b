"""The OTLP section of `make bench`: Claude Code's own export through /otlp/v1/logs and
/otlp/v1/metrics, as protobuf bodies built with the OpenTelemetry project's messages.

- Throughput: `claude_code.api_request` events per second in one process (one core), sent in
  exports of 512 records (the SDK's largest batch) over several machines and sessions.
- One 5-second batch from one busy Claude Code process (its logs export interval): 3 API
  requests, 12 tool results and 1 prompt; and one 60-second metrics export (its metrics
  interval) of that process. Both on a machine that already has a day of history.

Times include the derived work each batch queues (blocks, budget checks), run inline as in the
rest of `make bench`.
"""

import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from django.test import Client
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from accounts.models import ApiToken, Membership, Role, Team, User

MODELS = ["claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929"]
PROTOBUF = "application/x-protobuf"
EXPORT_SIZE = 512  # the OpenTelemetry SDK's default largest logs export


def _kv(values: dict) -> list[KeyValue]:
    pairs = []
    for key, value in values.items():
        pair = KeyValue(key=key)
        pair.value.string_value = str(value)
        pairs.append(pair)
    return pairs


def _nanos(at: datetime) -> int:
    return int(at.timestamp() * 1e9)


def logs_export(host: str, records: list[tuple[str, datetime, dict]]) -> bytes:
    """An ExportLogsServiceRequest of one Claude Code resource: (event name, time, attributes)."""
    export = ExportLogsServiceRequest()
    resource_logs = export.resource_logs.add()
    resource_logs.resource.attributes.extend(
        _kv({"service.name": "claude-code", "os.type": "linux", "host.name": host})
    )
    scope = resource_logs.scope_logs.add()
    scope.scope.name = "com.anthropic.claude_code.events"
    for name, at, attrs in records:
        record = scope.log_records.add(time_unix_nano=_nanos(at))
        record.body.string_value = f"claude_code.{name}"
        record.attributes.extend(_kv({"event.name": name, **attrs}))
    return export.SerializeToString()


def api_request(rng: random.Random, at: datetime, session: str, request_id: str):
    model = rng.choice(MODELS)
    inp, out = rng.randint(5, 4000), rng.randint(50, 3000)
    cached = rng.randint(10_000, 120_000)
    cost = inp * 3e-6 + out * 15e-6 + cached * 3e-7
    return (
        "api_request",
        at,
        {
            "session.id": session,
            "model": model,
            "request_id": request_id,
            "cost_usd": f"{cost:.6f}",
            "duration_ms": rng.randint(800, 30_000),
            "input_tokens": inp,
            "output_tokens": out,
            "cache_read_tokens": cached,
            "cache_creation_tokens": rng.randint(0, 3000),
        },
    )


def metrics_export(host: str, end: datetime, session: str, rng: random.Random) -> bytes:
    """One minute's delta export of one Claude Code process: cost and tokens of two models,
    lines, a commit, a pull request, active time and edit decisions (22 data points)."""
    export = ExportMetricsServiceRequest()
    resource_metrics = export.resource_metrics.add()
    resource_metrics.resource.attributes.extend(
        _kv({"service.name": "claude-code", "os.type": "linux", "host.name": host})
    )
    scope = resource_metrics.scope_metrics.add()
    points: dict[str, list[tuple[dict, float]]] = {
        "claude_code.cost.usage": [({"model": m}, rng.random()) for m in MODELS],
        "claude_code.token.usage": [
            ({"model": m, "type": kind}, float(rng.randint(10, 50_000)))
            for m in MODELS
            for kind in ("input", "output", "cacheRead", "cacheCreation")
        ],
        "claude_code.lines_of_code.count": [({"type": "added"}, 40.0), ({"type": "removed"}, 9.0)],
        "claude_code.commit.count": [({}, 1.0)],
        "claude_code.pull_request.count": [({}, 1.0)],
        "claude_code.active_time.total": [({"type": "user"}, 21.5), ({"type": "cli"}, 30.25)],
        "claude_code.code_edit_tool.decision": [
            ({"tool_name": tool, "decision": decision}, 1.0)
            for tool in ("Edit", "Write", "NotebookEdit")
            for decision in ("accept", "reject")
        ],
    }
    for name, series in points.items():
        metric = scope.metrics.add(name=name)
        metric.sum.is_monotonic = True
        metric.sum.aggregation_temporality = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
        for attrs, value in series:
            point = metric.sum.data_points.add(
                start_time_unix_nano=_nanos(end - timedelta(minutes=1)),
                time_unix_nano=_nanos(end),
                as_double=value,
            )
            point.attributes.extend(_kv({"session.id": session, **attrs}))
    return export.SerializeToString()


def run(team: Team, rng: random.Random, *, events: int = 10_000, progress=print) -> list[str]:
    """Measure, and return the markdown lines of the OTLP section."""
    user = User.objects.create_user("otlp@bench.example")
    Membership.objects.create(user=user, team=team, role=Role.MEMBER)
    _, raw = ApiToken.issue(user, "bench-otlp", ["ingest"])
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}

    def post(url: str, body: bytes) -> float:
        start = time.perf_counter()
        response = client.post(url, body, content_type=PROTOBUF, **headers)
        seconds = time.perf_counter() - start
        assert response.status_code == 200, response.content[:300]
        return seconds

    # Throughput: a day of requests of 8 machines, 5 sessions each, 512 records an export.
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=1)
    step = timedelta(days=1) / events
    bodies = []
    for first in range(0, events, EXPORT_SIZE):
        host = f"otlp-{(first // EXPORT_SIZE) % 8}"
        records = [
            api_request(rng, start + step * n, f"{host}-s{n % 5}", f"req_{n:08d}")
            for n in range(first, min(first + EXPORT_SIZE, events))
        ]
        bodies.append(logs_export(host, records))
    wall = cpu = 0.0
    for n, body in enumerate(bodies, 1):
        cpu_start = time.process_time()
        wall += post("/otlp/v1/logs", body)
        cpu += time.process_time() - cpu_start
        if n % max(1, len(bodies) // 5) == 0 or n == len(bodies):
            progress(f"   OTLP throughput: {min(n * EXPORT_SIZE, events):,}/{events:,} events")

    # One 5-second batch of a busy Claude Code process, twenty times, on otlp-0.
    batch_times, metric_times = [], []
    moment = now - timedelta(minutes=30)
    for round_ in range(20):
        moment += timedelta(seconds=5)
        session = "otlp-0-live"
        records = [
            api_request(rng, moment + timedelta(seconds=n), session, f"live_{round_}_{n}")
            for n in range(3)
        ]
        records += [
            ("tool_result", moment, {"session.id": session, "tool_name": "Bash", "success": "true"})
            for _ in range(12)
        ]
        records.append(("user_prompt", moment, {"session.id": session, "prompt_length": 80}))
        batch_times.append(post("/otlp/v1/logs", logs_export("otlp-0", records)))
        metric_times.append(
            post(
                "/otlp/v1/metrics",
                metrics_export("otlp-0", moment + timedelta(minutes=round_), session, rng),
            )
        )
    progress("   OTLP: 20 five-second batches and 20 metric exports sent")
    # Wall times suffer when other work shares the cores; say how busy the machine was.
    load = os.getloadavg()[0]
    return [
        "## OTLP (Claude Code's own export)",
        "",
        "Protobuf bodies to `/otlp/v1/logs` and `/otlp/v1/metrics` (`benchmarks/otlp.py`), each",
        "time including the derived work the batch queues (blocks, budget checks), run inline.",
        "",
        f"- Throughput: {events:,} `claude_code.api_request` events in exports of {EXPORT_SIZE}"
        f" (8 machines, 40 sessions, one day): {events / wall:,.0f} events/s in one process"
        f" (one core of the web server); {events / cpu:,.0f} events per CPU-second of that"
        " process.",
        f"- Load average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores; wall times"
        " grow with it, the CPU figure much less.",
        "",
        "| one export from one busy Claude Code process | median ms | max ms |",
        "|---|---:|---:|",
        "| 5-second logs batch (3 API requests, 12 tool results, 1 prompt) | "
        f"{statistics.median(batch_times) * 1000:,.1f} | {max(batch_times) * 1000:,.1f} |",
        "| 60-second metrics export (22 delta points: usage and productivity) | "
        f"{statistics.median(metric_times) * 1000:,.1f} | {max(metric_times) * 1000:,.1f} |",
        "",
    ]
