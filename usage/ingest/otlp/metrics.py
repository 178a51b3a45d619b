"""Claude Code's OTLP metrics: kept in the archive for later use, not yet mapped to facts."""

from django.utils import timezone
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from usage.models import BatchStatus, IngestBatch

PREFIX = "claude_code."
POINT_FIELDS = ("sum", "gauge", "histogram", "exponential_histogram", "summary")


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


def mark_archived(batch: IngestBatch, points: int) -> None:
    """The batch is stored as received; nothing is derived from metrics yet."""
    IngestBatch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.PROCESSED,
        processed_at=timezone.now(),
        counts={"otlp_metrics": {"data_points": points}},
    )
