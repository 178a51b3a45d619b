"""POST /api/v1/ingest/: a machine's ccusage reports in an envelope; answers what was stored.

The work is in usage.ingest.pipeline; this module checks the envelope's shape for the schema,
reads the body within its limits and maps ingest errors to JSON answers.
"""

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import team_of
from accounts.auth import BearerTokenAuthentication
from telemetry_site.api.errors import RETRY_AFTER, ErrorSerializer, error_responses
from telemetry_site.api.permissions import TokenHasScope
from telemetry_site.api.throttles import IngestThrottle
from telemetry_site.api.views import path_uuid
from usage import signals
from usage.api.common import CountsSerializer
from usage.ingest import pipeline as ingest
from usage.ingest import rejected
from usage.models import BatchStatus, IngestBatch

log = logging.getLogger(__name__)

# What `?include=` may add to an answer with what was stored, each given by a receiver of
# usage.signals.ingest_answer: the member's agent status (budgets), which a sync otherwise
# asks for with a second request (GET /api/v1/agent/status/).
INGEST_INCLUDES = ("agent_status",)


class IngestErrorSerializer(ErrorSerializer):
    batch_id = serializers.UUIDField(
        required=False,
        help_text="The archived batch, when the body was archived before it was refused.",
    )


class MachineIdentitySerializer(serializers.Serializer):
    uuid = serializers.UUIDField(help_text="Generated once by the agent on this PC.")
    name = serializers.CharField(max_length=100, required=False)
    hostname = serializers.CharField(max_length=255, required=False, allow_blank=True)
    os = serializers.CharField(max_length=100, required=False, allow_blank=True)
    agent_version = serializers.CharField(max_length=40, required=False, allow_blank=True)
    ccusage_version = serializers.CharField(
        max_length=40,
        required=False,
        allow_blank=True,
        help_text="Chooses the report parsers: 18.x/19.x shapes or 20.x and newer.",
    )
    timezone = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="The IANA timezone passed to ccusage --timezone.",
    )
    fingerprint = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="SHA-256 (hex) of where the agent runs; the same uuid from another place "
        "registers a machine of its own (a copied agent folder).",
    )
    os_user = serializers.CharField(max_length=100, required=False, allow_blank=True)


class RateLimitWindowSerializer(serializers.Serializer):
    used_percentage = serializers.FloatField(min_value=0, max_value=1000)
    resets_at = serializers.CharField(help_text="ISO 8601 time, or unix seconds.")


class StatuslineCaptureSerializer(serializers.Serializer):
    captured_at = serializers.DateTimeField()
    session_id = serializers.CharField(required=False)
    model = serializers.JSONField(required=False)
    rate_limits = serializers.DictField(
        child=RateLimitWindowSerializer(),
        required=False,
        help_text="`five_hour`, `seven_day` and any other window, e.g. `seven_day_opus`.",
    )


class ReportsSerializer(serializers.Serializer):
    claude_daily_instances = serializers.JSONField(
        required=False, help_text="stdout of `ccusage claude daily --json --instances --offline`"
    )
    claude_session = serializers.JSONField(
        required=False, help_text="stdout of `ccusage claude session --json --offline`"
    )
    blocks_hourly = serializers.JSONField(
        required=False,
        help_text="stdout of `ccusage blocks --json --session-length 1 --offline`",
    )
    daily_by_agent = serializers.JSONField(
        required=False,
        help_text="stdout of `ccusage daily --json --by-agent --offline`; Claude rows are "
        "skipped (they come from claude_daily_instances).",
    )
    statusline = StatuslineCaptureSerializer(many=True, required=False)
    request_keys = serializers.JSONField(
        required=False,
        help_text='`{"hours": {"<UTC hour>": ["<16 hex digits>", …]}}`: per hour, the first '
        "8 bytes of SHA-256 of each request's `<message id>:<request id>` (ccusage's "
        "dedupe key).",
    )


class ProjectInfoSerializer(serializers.Serializer):
    cwd = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    git_remote = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    hashed = serializers.BooleanField(required=False)


class EnvelopeSerializer(serializers.Serializer):
    schema = serializers.IntegerField(min_value=1, max_value=1)
    machine = MachineIdentitySerializer()
    full = serializers.BooleanField(
        required=False, help_text="True when the reports cover the whole history."
    )
    since = serializers.DateField(
        required=False, allow_null=True, help_text="First day of an incremental window."
    )
    reports = ReportsSerializer()
    project_keys = serializers.ChoiceField(
        choices=["folder", "hashed"],
        required=False,
        help_text="How project keys are written: ccusage's folders or the agent's hashes.",
    )
    projects = serializers.DictField(
        child=ProjectInfoSerializer(),
        required=False,
        help_text="Per ccusage project key: the real folder and git remote, for names.",
    )


class IngestMachineSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    name = serializers.CharField()
    subscription = serializers.UUIDField(help_text="The Claude account this machine uses.")
    copied_from = serializers.UUIDField(
        allow_null=True,
        help_text="Set when this agent folder was copied from that machine: the agent now "
        "reports under `uuid`.",
    )


class IngestAcceptedSerializer(serializers.Serializer):
    batch_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["received"])
    status_url = serializers.CharField(
        help_text="GET it (same token) to follow the batch: /api/v1/ingest/batches/<id>/."
    )
    detail = serializers.CharField()


class IngestResponseSerializer(serializers.Serializer):
    batch_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["processed"])
    duplicate = serializers.BooleanField(
        help_text="True when this exact body was already processed; nothing changed."
    )
    machine = IngestMachineSerializer()
    timezone = serializers.CharField(
        help_text="The team's reporting timezone: pass it to ccusage --timezone next time."
    )
    counts = serializers.DictField(child=CountsSerializer(), help_text="Per report kind.")
    foreign_request_keys = serializers.ListField(
        child=serializers.CharField(),
        help_text="Keys of `request_keys` that another machine of the team reported first: "
        "the agent leaves those requests out of its reports, so each counts once.",
    )
    last_day = serializers.DateField(
        allow_null=True, help_text="The latest day the server holds for this machine."
    )
    agent_status = serializers.DictField(
        required=False,
        help_text="With `?include=agent_status`: the body GET /api/v1/agent/status/ gives "
        "right after this report. Absent when it could not be computed: ask that endpoint.",
    )


def ingest_response(result: ingest.IngestResult) -> dict:
    return {
        "batch_id": str(result.batch.public_id),
        "status": "processed",
        "duplicate": result.duplicate,
        "machine": {
            "uuid": str(result.machine.uuid),
            "name": result.machine.name,
            "subscription": str(result.machine.subscription.public_id),
            "copied_from": _copied_from(result.machine),
        },
        "timezone": result.timezone,
        "counts": result.counts,
        "foreign_request_keys": result.foreign_request_keys,
        "last_day": result.last_day.isoformat() if result.last_day else None,
    }


def _includes(request) -> set[str]:
    """The names of `?include=` (comma-separated, repeatable), or IngestError naming each
    unknown one."""
    names = {
        name.strip()
        for value in request.query_params.getlist("include")
        for name in value.split(",")
        if name.strip()
    }
    unknown = sorted(names - set(INGEST_INCLUDES))
    if unknown:
        raise ingest.IngestError(
            "Unknown include.",
            {
                "include": [
                    f"{name!r} is not one of: {', '.join(INGEST_INCLUDES)}." for name in unknown
                ]
            },
        )
    return names


def _answer(result: ingest.IngestResult, user, include: set[str]) -> dict:
    """ingest_response plus what `include` asked for (usage.signals.ingest_answer). The
    report is stored by now, so a part that fails is left out and logged, never an error."""
    body = ingest_response(result)
    if not include:
        return body
    for receiver, extra in signals.ingest_answer.send_robust(
        sender=IngestView, user=user, include=include
    ):
        if isinstance(extra, Exception):
            log.error(
                "ingest answer part failed",
                exc_info=extra,
                extra={"receiver": getattr(receiver, "__qualname__", str(receiver))},
            )
        elif isinstance(extra, dict):
            body.update({name: value for name, value in extra.items() if name in include})
    return body


def _copied_from(machine) -> str | None:
    original = machine.copied_from
    return str(original.uuid) if original is not None else None


def _ingest_error(exc: ingest.IngestError) -> Response:
    body: dict[str, Any] = {"detail": exc.detail}
    if exc.errors:
        body["errors"] = exc.errors
    if exc.batch is not None:
        body["batch_id"] = str(exc.batch.public_id)
    return Response(body, status=exc.status)


def _accepted(batch: IngestBatch) -> Response:
    url = reverse("api-ingest-batch", args=[batch.public_id])
    return Response(
        {
            "batch_id": str(batch.public_id),
            "status": "received",
            "status_url": url,
            "detail": "The report is stored and will be processed shortly; it is safe to "
            "forget it. Its progress is at status_url.",
        },
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": url},
    )


class IngestView(APIView):
    """POST a machine's ccusage reports; answers with what was stored."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [TokenHasScope]
    required_scope = "ingest"
    throttle_classes = [IngestThrottle]

    @extend_schema(
        operation_id="ingest",
        tags=["ingest"],
        summary="Send a machine's ccusage reports",
        description=(
            "JSON, optionally `Content-Encoding: gzip`. The body is archived before parsing; "
            "parsing and storing is all or nothing. Each fact is replaced by the most recently "
            "received report; days absent from a report are kept. A body identical to one "
            "already processed answers `duplicate: true` and changes nothing. The first "
            "report of a new machine UUID registers it to the token's owner. A body larger "
            "than `INGEST_ASYNC_BODY_BYTES` (decompressed) is answered 202 once archived and "
            "processed by the worker: follow it at `status_url`. A body identical to one "
            "refused before is tried again under the same batch id."
        ),
        request=EnvelopeSerializer,
        parameters=[
            OpenApiParameter(
                "Content-Encoding",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                enum=["gzip", "identity"],
                required=False,
            ),
            OpenApiParameter(
                "include",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                required=False,
                description="`agent_status`: add the member's agent status to a 200 or 201 "
                "answer (`agent_status`), as GET /api/v1/agent/status/ gives it.",
                enum=list(INGEST_INCLUDES),
            ),
            RETRY_AFTER,
        ],
        responses={
            200: OpenApiResponse(IngestResponseSerializer, description="Duplicate body."),
            201: OpenApiResponse(IngestResponseSerializer, description="Stored."),
            202: OpenApiResponse(
                IngestAcceptedSerializer, description="Archived; the worker processes it."
            ),
            **error_responses(400, 409, 413, 415, error=IngestErrorSerializer),
            **error_responses(401, 403, 429),
            503: OpenApiResponse(
                IngestErrorSerializer,
                description="The database was unavailable: the body is archived, nothing "
                "is stored yet; retry after Retry-After seconds.",
            ),
        },
    )
    def post(self, request):
        user = request.user
        team = team_of(user)
        if team is None:
            raise exceptions.PermissionDenied(
                "Your account belongs to no team, so its usage has nowhere to go; "
                "ask a team admin to add you."
            )
        django_request = request._request
        try:
            include = _includes(request)
            raw = ingest.read_body(django_request, django_request.META.get("CONTENT_LENGTH"))
            body, gzipped = ingest.decode_body(
                raw, django_request.META.get("HTTP_CONTENT_ENCODING")
            )
        except ingest.IngestError as exc:
            log.info("ingest request refused", extra={"user": user.pk, "error": exc.detail})
            return _ingest_error(exc)
        digest = ingest.body_digest(body)
        duplicate, refused_before = ingest.find_earlier(user, digest)
        if duplicate is not None:
            return Response(_answer(ingest.answer_duplicate(duplicate, body), user, include))
        deferred = ingest.defers_to_worker(body)
        if refused_before is not None:
            batch = rejected.receive_again(refused_before, body, gzipped, claimed=not deferred)
        else:
            batch = ingest.archive(
                user, request.auth, body, gzipped, claimed=not deferred, digest=digest
            )
        if deferred:
            # Acknowledged now: the body is archived. A broker that is down leaves the batch
            # `received`; the backlog sweep (usage.tasks.sweep_ingest_backlog) processes it.
            ingest.hand_to_worker(batch)
            return _accepted(batch)
        try:
            result = ingest.process_batch(batch, body=body, team=team)
        except ingest.IngestError as exc:
            return _ingest_error(exc)
        except (OperationalError, InterfaceError):
            # Logged by process_batch; the archived batch waits for the backlog sweep.
            return Response(
                {
                    "detail": "The database was unavailable while storing the report; it is "
                    "archived and nothing of it was stored yet. Retry later.",
                    "batch_id": str(batch.public_id),
                },
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": "30"},
            )
        except Exception:
            # Logged with its traceback by process_batch; the body is safe in the archive.
            return Response(
                {
                    "detail": "The report was archived but could not be processed; "
                    "it will be reprocessed after a fix. Keep it and retry later.",
                    "batch_id": str(batch.public_id),
                },
                status=status.HTTP_500_INTERNAL_SERVER_ERROR,
            )
        return Response(_answer(result, user, include), status=status.HTTP_201_CREATED)


class BatchStatusSerializer(serializers.Serializer):
    batch_id = serializers.UUIDField()
    status = serializers.ChoiceField(
        choices=[choice.value for choice in BatchStatus],
        help_text="`received`: waiting or being processed; `processed`: stored (the fields "
        "of the ingest answer follow); `failed`: refused or broken, see `detail`.",
    )
    received_at = serializers.DateTimeField()
    processed_at = serializers.DateTimeField(allow_null=True)
    detail = serializers.CharField(required=False)
    machine = IngestMachineSerializer(required=False)
    timezone = serializers.CharField(required=False)
    counts = serializers.DictField(child=CountsSerializer(), required=False)
    foreign_request_keys = serializers.ListField(child=serializers.CharField(), required=False)
    last_day = serializers.DateField(allow_null=True, required=False)


class IngestBatchView(APIView):
    """The state of one ingest batch the caller sent (after a 202, until it is processed)."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [TokenHasScope]
    required_scope = "ingest"
    throttle_classes = [IngestThrottle]

    @extend_schema(
        operation_id="ingest_batch",
        tags=["ingest"],
        summary="Follow an ingest batch",
        description=(
            "Only batches sent by the token's owner; any other id is a 404. A processed "
            "batch carries the fields of the ingest answer."
        ),
        responses={
            200: BatchStatusSerializer,
            **error_responses(401, 403, 404, 429),
        },
    )
    def get(self, request, public_id: str):
        batch = (
            IngestBatch.objects.defer("body_gzip")
            .select_related("machine__team", "machine__subscription", "machine__copied_from")
            .filter(public_id=path_uuid(public_id), user=request.user)
            .first()
        )
        if batch is None:
            raise exceptions.NotFound("No such batch of yours.")
        body: dict[str, Any] = {
            "batch_id": str(batch.public_id),
            "status": batch.status,
            "received_at": batch.received_at.isoformat(),
            "processed_at": batch.processed_at.isoformat() if batch.processed_at else None,
        }
        if batch.status == BatchStatus.FAILED:
            body["detail"] = batch.error
        result = ingest.result_of(batch)
        if result is not None:
            answer = ingest_response(result)
            answer.pop("duplicate")
            body.update({k: v for k, v in answer.items() if k not in ("batch_id", "status")})
        return Response(body)
