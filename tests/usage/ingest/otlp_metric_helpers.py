"""Claude Code's OTLP metrics as export requests built with the OpenTelemetry project's own
messages, per the OTLP specification: counters are monotonic sums, delta temporality unless
a test says otherwise; one data point per (metric, attributes, interval)."""

from datetime import datetime, timedelta

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from tests.conftest import api_client, token_for
from tests.usage.ingest.otlp_helpers import METRICS_URL, PROTOBUF

DELTA = AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
UNITS = {
    "claude_code.cost.usage": "USD",
    "claude_code.token.usage": "tokens",
    "claude_code.active_time.total": "s",
}


def point(metric: str, end: datetime, value, **attrs) -> dict:
    """One data point of `metric` over the minute before `end` (Claude Code exports every 60 s)."""
    return {"metric": metric, "end": end, "value": value, "attrs": attrs}


def cost(end, usd, session="session-1", model="claude-sonnet-4-5") -> dict:
    return point("claude_code.cost.usage", end, float(usd), model=model, **{"session.id": session})


def tokens(end, kind, count, session="session-1", model="claude-sonnet-4-5") -> dict:
    return point(
        "claude_code.token.usage",
        end,
        float(count),
        type=kind,
        model=model,
        **{"session.id": session},
    )


def request_points(end, usd, counts: dict, session="session-1", model="claude-sonnet-4-5"):
    """What one API request adds to the usage metrics: its cost and each token type's count."""
    return [cost(end, usd, session, model)] + [
        tokens(end, kind, n, session, model) for kind, n in counts.items()
    ]


def metrics_export(
    points: list[dict],
    host: str | None = "laptop",
    temporality=DELTA,
    resource_extra: dict | None = None,
) -> ExportMetricsServiceRequest:
    export = ExportMetricsServiceRequest()
    resource_metrics = export.resource_metrics.add()
    resource = {"service.name": "claude-code", "os.type": "linux", **(resource_extra or {})}
    if host:
        resource["host.name"] = host
    resource_metrics.resource.attributes.extend(_kv(resource))
    scope = resource_metrics.scope_metrics.add()
    scope.scope.name = "com.anthropic.claude_code"
    scope.scope.version = "2.1.0"
    by_name: dict[str, list[dict]] = {}
    for p in points:
        by_name.setdefault(p["metric"], []).append(p)
    for name, group in by_name.items():
        metric = scope.metrics.add()
        metric.name = name
        metric.unit = UNITS.get(name, "count")
        metric.sum.is_monotonic = True
        metric.sum.aggregation_temporality = temporality
        for p in group:
            data_point = metric.sum.data_points.add()
            end_ns = int(p["end"].timestamp() * 1e9)
            data_point.time_unix_nano = end_ns
            data_point.start_time_unix_nano = end_ns - int(
                timedelta(minutes=1).total_seconds() * 1e9
            )
            if isinstance(p["value"], int):
                data_point.as_int = p["value"]
            else:
                data_point.as_double = p["value"]
            data_point.attributes.extend(_kv(p["attrs"]))
    return export


def post_metrics(user, points, **kwargs):
    client = api_client(token_for(user, ["ingest"]))
    body = metrics_export(points, **kwargs).SerializeToString()
    return client.post(METRICS_URL, data=body, content_type=PROTOBUF)


def _kv(values: dict) -> list[KeyValue]:
    pairs = []
    for key, value in values.items():
        pair = KeyValue(key=key)
        pair.value.string_value = str(value)
        pairs.append(pair)
    return pairs
