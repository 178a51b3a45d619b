"""The server's own health for its operator: request durations measured in each process, and
ingest, derived work, alert deliveries and the task queue read from the database and the
broker at scrape time.

Request durations live in the process that served the request. Under several gunicorn
workers, set PROMETHEUS_MULTIPROC_DIR (an empty folder, cleared at each start) and every
worker writes them there, where any worker's scrape reads them all (prometheus_client's
multiprocess mode). Without it a scrape sees only the worker that answered.
"""

import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from amqp.exceptions import ChannelError
from django.db.models import Count, Min, Q
from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric

from budgets.models import Delivery
from telemetry_site.celery import app as celery_app
from usage.models import BatchStatus, IngestBatch

PREFIX = "claude_telemetry"
log = logging.getLogger(__name__)

# Methods kept as their own label value; anything else is "other", so a client cannot add
# series by inventing methods.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_DURATION = Histogram(
    f"{PREFIX}_http_request_duration_seconds",
    "Time from the request reaching Django to the response leaving it, by URL name "
    "(e.g. api-ingest), method and status code.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class RequestMetricsMiddleware:
    """Times every request; labels come from the URL conf, never from the raw path, so the
    number of series stays that of the routes (unknown paths are one "unmatched" route)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.view_name if match else "") or "unmatched"
        method = request.method if request.method in METHODS else "other"
        REQUEST_DURATION.labels(route, method, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


def process_registry() -> CollectorRegistry:
    """What the processes measured: every worker's (multiprocess mode) or this one's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def queue_lengths() -> dict[str, int] | None:
    """Messages waiting in the broker per task queue; None when the broker cannot be asked."""
    names = sorted({celery_app.conf.task_default_queue or "celery"})
    try:
        with celery_app.connection_for_read(connect_timeout=1) as connection:
            # One try: a scrape answers within its timeout whether or not the broker does.
            connection.ensure_connection(max_retries=1)
            channel = connection.default_channel
            return {name: _waiting(channel, name) for name in names}
    except Exception as error:  # any broker failure: the length is unknown, the scrape goes on
        log.warning("metrics: task queue length unavailable: %s", error)
        return None


def _waiting(channel, name: str) -> int:
    """Messages in one queue. Redis keeps no empty queue: a queue nothing was ever sent to (or
    that was emptied) is NOT_FOUND there, which is 0 waiting, not a broker failure."""
    try:
        return channel.queue_declare(queue=name, passive=True).message_count
    except ChannelError as error:
        # kombu's virtual transports give the AMQP reply code as text ("404").
        if str(getattr(error, "reply_code", "")) == "404" or "NOT_FOUND" in str(error):
            return 0
        raise


class ServerCollector:
    """The deployment-wide operational figures, read at `now` (the operator's scrape only)."""

    def __init__(self, now: datetime):
        self.now = now

    def collect(self) -> Iterator[Metric]:
        batches = GaugeMetricFamily(
            f"{PREFIX}_ingest_batches",
            "Archived ingest batches by status (failed ones wait for reprocess_batches).",
            labels=["status"],
        )
        counts = dict(IngestBatch.objects.order_by().values_list("status").annotate(n=Count("pk")))
        for status in BatchStatus.values:
            batches.add_metric([status], counts.get(status, 0))
        yield batches

        pending = IngestBatch.objects.filter(
            status=BatchStatus.PROCESSED, derived_at__isnull=True
        ).aggregate(n=Count("pk"), oldest=Min("processed_at"))
        yield GaugeMetricFamily(
            f"{PREFIX}_derived_work_pending_batches",
            "Processed batches whose blocks, pace and budget checks have not run yet.",
            value=pending["n"],
        )
        oldest = pending["oldest"]
        yield GaugeMetricFamily(
            f"{PREFIX}_derived_work_lag_seconds",
            "Age of the oldest processed batch still waiting for derived work (0 when none).",
            value=max(0.0, (self.now - oldest).total_seconds()) if oldest else 0.0,
        )

        deliveries = GaugeMetricFamily(
            f"{PREFIX}_alert_deliveries",
            "Alert deliveries by status (pending includes retries not yet due).",
            labels=["status"],
        )
        by_status = dict(Delivery.objects.order_by().values_list("status").annotate(n=Count("pk")))
        for status in Delivery.Status.values:
            deliveries.add_metric([status], by_status.get(status, 0))
        yield deliveries
        due = Delivery.objects.filter(
            Q(status=Delivery.Status.PENDING) & Q(next_attempt_at__lte=self.now)
        ).count()
        yield GaugeMetricFamily(
            f"{PREFIX}_alert_deliveries_due",
            "Pending alert deliveries whose next attempt is due now.",
            value=due,
        )

        lengths = queue_lengths()
        yield GaugeMetricFamily(
            f"{PREFIX}_task_broker_up",
            "1 when the task broker answered this scrape.",
            value=1 if lengths is not None else 0,
        )
        queue = GaugeMetricFamily(
            f"{PREFIX}_task_queue_length", "Tasks waiting in the broker's queue.", labels=["queue"]
        )
        for name, length in (lengths or {}).items():
            queue.add_metric([name], length)
        yield queue
