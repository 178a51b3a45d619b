"""POST /otlp/v1/logs and /otlp/v1/metrics: Claude Code's own OTLP/HTTP export.

Answers as the OTLP/HTTP specification says: 200 with an Export*ServiceResponse (a partial
success names what was rejected), or a google.rpc.Status for 4xx, always in the request's
encoding (protobuf or JSON). The work is in usage.ingest.otlp.
"""

import hashlib
import logging

from django.db import transaction
from django.http import HttpResponse
from google.protobuf.message import Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from rest_framework import exceptions
from rest_framework.views import APIView

from accounts.access import team_of
from accounts.auth import BearerTokenAuthentication
from telemetry_site.api.permissions import TokenHasScope
from telemetry_site.api.throttles import IngestThrottle
from usage.ingest import pipeline
from usage.ingest.otlp import decode, logs, metrics
from usage.models import BatchStatus, IngestBatch

log = logging.getLogger(__name__)
# gRPC status codes carried in google.rpc.Status, by HTTP status (OTLP/HTTP "Failures").
GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 429: 8, 503: 14}


class OtlpView(APIView):
    """The shared part of both receivers: token auth (scope `ingest`), throttle, body limits
    and OTLP-shaped errors."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [TokenHasScope]
    required_scope = "ingest"
    throttle_classes = [IngestThrottle]
    # Not in the REST API's schema: the OTLP specification is this endpoint's contract.
    schema = None

    def media(self) -> str:
        try:
            return decode.media_type(self.request.META.get("CONTENT_TYPE"))
        except pipeline.IngestError:
            return decode.JSON

    def answer(self, message: Message, status: int = 200) -> HttpResponse:
        media = self.media()
        return HttpResponse(decode.encode(message, media), status=status, content_type=media)

    def store(self, store, batch: IngestBatch, decoded, response: Message) -> HttpResponse:
        """Run `store(batch, team, decoded)` (logs.store or metrics.store) and answer `response`,
        queueing the derived work; an unexpected failure marks the archived batch failed and
        answers 503 with Retry-After, which OTLP exporters retry (the archive keeps the body)."""
        try:
            store(batch, team_of(self.request.user), decoded)
        except Exception:
            log.exception("otlp batch failed", extra={"batch": str(batch.public_id)})
            IngestBatch.objects.filter(pk=batch.pk).update(
                status=BatchStatus.FAILED, error="internal error"
            )
            answer = self.fail(503, "The export was archived but not stored; retry later.")
            answer["Retry-After"] = "60"
            return answer
        transaction.on_commit(lambda: pipeline.queue_derived_work(batch.pk))
        return self.answer(response)

    def fail(self, status: int, detail: str) -> HttpResponse:
        return self.answer(Status(code=GRPC_CODES.get(status, 2), message=detail), status)

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        detail = getattr(exc, "detail", None) or str(exc)
        answer = self.fail(response.status_code, str(detail))
        for header in ("Retry-After", "WWW-Authenticate"):
            if header in response:
                answer[header] = response[header]
        return answer

    def read(self) -> tuple[str, bytes]:
        """(media type, the decompressed body); raises IngestError with the status to send."""
        if team_of(self.request.user) is None:
            raise exceptions.PermissionDenied(
                "Your account belongs to no team, so its usage has nowhere to go."
            )
        media = decode.media_type(self.request.META.get("CONTENT_TYPE"))
        django_request = self.request._request
        raw = pipeline.read_body(django_request, django_request.META.get("CONTENT_LENGTH"))
        body, _ = pipeline.decode_body(raw, django_request.META.get("HTTP_CONTENT_ENCODING"))
        return media, body


def _archive(view: OtlpView, kept: Message, path: str):
    """Archive what is kept of the export (deterministic bytes, so a resend is recognised);
    None when this sender already sent exactly this."""
    body = kept.SerializeToString(deterministic=True)
    digest = hashlib.sha256(body).hexdigest()
    user = view.request.user
    if IngestBatch.objects.filter(
        user_id=user.pk or 0, sha256=digest, ingest_path=path, status=BatchStatus.PROCESSED
    ).exists():
        return None
    batch = pipeline.archive(user, view.request.auth, body)
    IngestBatch.objects.filter(pk=batch.pk).update(ingest_path=path)
    batch.ingest_path = path
    return batch


class OtlpLogsView(OtlpView):
    """POST an ExportLogsServiceRequest; `claude_code.api_request` events become facts."""

    def post(self, request):
        try:
            media, body = self.read()
            export = decode.parse(body, media, ExportLogsServiceRequest)
        except pipeline.IngestError as exc:
            log.info("otlp logs refused", extra={"user": request.user.pk, "error": exc.detail})
            return self.fail(exc.status, exc.detail)
        decoded = logs.decode_logs(export)
        response = ExportLogsServiceResponse()
        if decoded.rejected:
            response.partial_success.rejected_log_records = decoded.rejected
            response.partial_success.error_message = "; ".join(sorted(set(decoded.errors)))[:1000]
        if not decoded.groups:
            return self.answer(response)
        batch = _archive(self, decoded.kept, "otlp-logs")
        if batch is None:
            return self.answer(response)
        return self.store(logs.store, batch, decoded, response)


class OtlpMetricsView(OtlpView):
    """POST an ExportMetricsServiceRequest; Claude Code's delta points become facts and
    productivity figures, other metrics are ignored; cumulative points are rejected."""

    def post(self, request):
        try:
            media, body = self.read()
            export = decode.parse(body, media, ExportMetricsServiceRequest)
        except pipeline.IngestError as exc:
            log.info("otlp metrics refused", extra={"user": request.user.pk, "error": exc.detail})
            return self.fail(exc.status, exc.detail)
        decoded = metrics.decode_metrics(export)
        response = ExportMetricsServiceResponse()
        if decoded.rejected:
            response.partial_success.rejected_data_points = decoded.rejected
            response.partial_success.error_message = "; ".join(sorted(set(decoded.errors)))[:1000]
        if not decoded.points:
            return self.answer(response)
        batch = _archive(self, decoded.kept, "otlp-metrics")
        if batch is None:
            return self.answer(response)
        if not decoded.groups:
            metrics.mark_archived(batch, decoded.points)
            return self.answer(response)
        return self.store(metrics.store, batch, decoded, response)
