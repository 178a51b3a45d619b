"""Claude Code's OTLP metrics: delta points stored once each, then summed into the OTLP
machine's usage facts (where no event covers them) and its productivity figures.

Names, units and attributes as Claude Code's monitoring documentation gives them: every metric
is a counter (an OTLP monotonic sum) exported with delta temporality by default.
"""

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

from usage.ingest.otlp import productivity
from usage.ingest.otlp import rebuild as otlp_rebuild
from usage.ingest.otlp.decode import attributes
from usage.ingest.otlp.logs import Group, lock_machine
from usage.models import BatchStatus, IngestBatch, OtlpMetricPoint

PREFIX = "claude_code."
POINT_FIELDS = ("sum", "gauge", "histogram", "exponential_histogram", "summary")
# The metrics that become figures; other claude_code.* metrics (session.count) are archived.
USED = frozenset({otlp_rebuild.COST, otlp_rebuild.TOKENS, *productivity.METRICS})
CUMULATIVE_REFUSED = (
    "cumulative temporality is not accepted: set "
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta (Claude Code's default)"
)


@dataclass
class Point:
    """One delta data point: the interval's end (UTC), its value in the metric's unit."""

    metric: str
    key: str
    start_at: datetime | None
    end_at: datetime
    value: Decimal
    session_id: str = ""
    model: str = ""
    kind: str = ""
    tool_name: str = ""
    decision: str = ""
    project_name: str = ""


@dataclass
class MetricGroup:
    """The used points of one resource (one Claude Code install)."""

    identity: str
    os: str
    points: list[Point] = field(default_factory=list)


@dataclass
class DecodedMetrics:
    groups: list[MetricGroup]
    rejected: int
    errors: list[str]
    # The export with only claude_code.* metrics: what is archived.
    kept: ExportMetricsServiceRequest
    # Data points of claude_code.* metrics, used or not.
    points: int


def keep_claude_code(
    export: ExportMetricsServiceRequest,
) -> tuple[ExportMetricsServiceRequest, int]:
    """(the export with only `claude_code.*` metrics, their number of data points); metrics of
    other names are ignored, as OTLP allows a receiver to."""
    kept = ExportMetricsServiceRequest()
    points = 0
    for resource_metrics in export.resource_metrics:
        out = None
        for scope_metrics in resource_metrics.scope_metrics:
            ours = [m for m in scope_metrics.metrics if m.name.startswith(PREFIX)]
            if not ours:
                continue
            if out is None:
                out = kept.resource_metrics.add()
                out.resource.CopyFrom(resource_metrics.resource)
            scope = out.scope_metrics.add()
            scope.scope.CopyFrom(scope_metrics.scope)
            for metric in ours:
                scope.metrics.add().CopyFrom(metric)
                kind = metric.WhichOneof("data")
                if kind in POINT_FIELDS:
                    points += len(getattr(metric, kind).data_points)
    return kept, points


def decode_metrics(export: ExportMetricsServiceRequest) -> DecodedMetrics:
    """The used metrics' delta points by resource. A point that cannot be counted (cumulative
    or unspecified temporality, not a sum, no time, a negative or non-finite value, no
    host.name nor service.instance.id) is rejected with a reason; it stores nothing."""
    kept, count = keep_claude_code(export)
    groups: list[MetricGroup] = []
    rejected, errors = 0, []
    for resource_metrics in kept.resource_metrics:
        resource = attributes(resource_metrics.resource.attributes)
        identity = str(resource.get("host.name") or resource.get("service.instance.id") or "")
        group = MetricGroup(identity=identity[:255], os=str(resource.get("os.type") or "")[:100])
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name not in USED:
                    continue
                kind = metric.WhichOneof("data")
                data_points = list(getattr(metric, kind).data_points) if kind else []
                if not data_points:
                    continue
                reason = None
                if not identity:
                    reason = "a resource has neither host.name nor service.instance.id"
                elif kind != "sum":
                    reason = f"{metric.name} is a {kind}, not the counter (sum) Claude Code sends"
                elif metric.sum.aggregation_temporality != (
                    AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
                ):
                    reason = f"{metric.name}: {CUMULATIVE_REFUSED}"
                if reason:
                    rejected += len(data_points)
                    errors.append(reason)
                    continue
                for data_point in data_points:
                    try:
                        group.points.append(_point(metric.name, data_point, resource))
                    except ValueError as exc:
                        rejected += 1
                        errors.append(str(exc))
        if group.points:
            groups.append(group)
    return DecodedMetrics(groups=groups, rejected=rejected, errors=errors, kept=kept, points=count)


# Sanity bounds of one delta point of usage: one export interval (60 s by default) of one
# Claude Code process cannot spend more; they refuse what would swamp every figure.
POINT_MAXIMUM = {
    otlp_rebuild.COST: Decimal(100_000),
    otlp_rebuild.TOKENS: Decimal(10_000_000_000),
}


def _point(name: str, data_point, resource: dict) -> Point:
    if not data_point.time_unix_nano:
        raise ValueError(f"a {name} point has no time")
    which = data_point.WhichOneof("value")
    raw = data_point.as_int if which == "as_int" else data_point.as_double
    if isinstance(raw, float) and not math.isfinite(raw):
        raise ValueError(f"a {name} point is not a finite number")
    try:
        value = Decimal(str(raw)).quantize(Decimal("1e-10"))
    except InvalidOperation:
        raise ValueError(f"a {name} point is out of range") from None
    if value < 0 or value >= Decimal("1e19"):
        raise ValueError(f"a {name} point is negative or out of range")
    if value > POINT_MAXIMUM.get(name, value):
        raise ValueError(
            f"a {name} point is above {POINT_MAXIMUM[name]:,}, more than one export holds"
        )
    attrs = attributes(data_point.attributes)
    digest = hashlib.sha256(
        repr(
            (
                name,
                sorted((k, repr(v)) for k, v in attrs.items()),
                data_point.start_time_unix_nano,
                data_point.time_unix_nano,
            )
        ).encode()
    ).hexdigest()
    start = data_point.start_time_unix_nano

    def text(key: str, limit: int) -> str:
        return str(attrs.get(key) or "")[:limit]

    return Point(
        metric=name,
        key=digest,
        start_at=datetime.fromtimestamp(start / 1e9, tz=UTC) if start else None,
        end_at=datetime.fromtimestamp(data_point.time_unix_nano / 1e9, tz=UTC),
        value=value,
        session_id=text("session.id", 200),
        model=text("model", 200),
        kind=text("type", 40),
        tool_name=text("tool_name", 100),
        decision=text("decision", 20),
        project_name=str(attrs.get("project.name") or resource.get("project.name") or "")[:200],
    )


def store(batch: IngestBatch, team, decoded: DecodedMetrics) -> dict[str, int]:
    """Store the new points and rebuild the facts and productivity days they touch, in one
    transaction. Returns counts: `data_points` received, `new`, `duplicates` (already stored:
    a resend never counts twice), `superseded` (usage keys withheld for the agent)."""
    counts = {"data_points": decoded.points, "new": 0, "duplicates": 0, "superseded": 0}
    zone = team.zone
    with transaction.atomic():
        first = None
        for group in decoded.groups:
            machine = lock_machine(batch.user, team, Group(identity=group.identity, os=group.os))
            first = first or machine
            unique = {p.key: p for p in group.points}
            known = set(
                OtlpMetricPoint.objects.filter(machine=machine, key__in=list(unique)).values_list(
                    "key", flat=True
                )
            )
            new = [p for key, p in unique.items() if key not in known]
            OtlpMetricPoint.objects.bulk_create(
                [OtlpMetricPoint(machine=machine, batch=batch, **vars(p)) for p in new],
                ignore_conflicts=True,
            )
            counts["new"] += len(new)
            counts["duplicates"] += len(group.points) - len(new)
            usage = [p for p in new if p.metric in (otlp_rebuild.COST, otlp_rebuild.TOKENS)]
            if usage:
                counts["superseded"] += otlp_rebuild.rebuild(
                    machine,
                    batch,
                    team,
                    days={p.end_at.astimezone(zone).date() for p in usage},
                    hours={otlp_rebuild.hour_of(p.end_at) for p in usage},
                    sessions={p.session_id for p in usage if p.session_id},
                )
            work_days: set[date] = {
                p.end_at.astimezone(zone).date() for p in new if p.metric in productivity.METRICS
            }
            productivity.rebuild(machine, batch, team, work_days)
        batch.status = BatchStatus.PROCESSED
        batch.counts = {"otlp_metrics": counts}
        batch.processed_at = timezone.now()
        batch.machine = first
        batch.save(update_fields=["status", "counts", "processed_at", "machine"])
    return counts


def mark_archived(batch: IngestBatch, points: int) -> None:
    """The batch is stored as received; none of its points is one that becomes a figure."""
    IngestBatch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.PROCESSED,
        processed_at=timezone.now(),
        counts={"otlp_metrics": {"data_points": points}},
    )
