"""GET /api/v1/budgets/ (the budgets the caller may see, with this period's progress),
GET /api/v1/agent/status/ (what the caller's Claude Code hooks and status line act on) and
POST /api/v1/agent/refusals/ (the prompts the caller's hooks refused)."""

import logging
from datetime import timedelta

from django.core.cache import cache
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets.enforcement import member_status, record_refusals
from budgets.status import budget_status_for
from telemetry_site.api.errors import error_responses
from telemetry_site.api.permissions import TokenHasScope
from telemetry_site.api.throttles import IngestThrottle, ReadThrottle

log = logging.getLogger(__name__)

# Hooks read the agent's local file; this only bounds how often the agent's refreshes recompute.
STATUS_CACHE_SECONDS = 10


class BudgetStatusSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="budget.public_id")
    name = serializers.CharField(source="budget.name")
    scope = serializers.CharField(source="budget.scope")
    project = serializers.SerializerMethodField()
    member = serializers.SerializerMethodField()
    period = serializers.CharField(source="budget.period")
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    amount_usd = serializers.DecimalField(source="amount", max_digits=12, decimal_places=2)
    spent_usd = serializers.DecimalField(source="spent", max_digits=14, decimal_places=2)
    percent = serializers.FloatField()
    projected_usd = serializers.DecimalField(
        source="projected", max_digits=14, decimal_places=2, allow_null=True
    )
    projected_day = serializers.DateField(allow_null=True)
    thresholds = serializers.ListField(
        source="budget.sorted_thresholds", child=serializers.IntegerField()
    )
    forecast_alerts = serializers.BooleanField(source="budget.forecast_alerts")
    level = serializers.CharField()

    def get_project(self, status) -> dict | None:
        project = status.budget.project
        if project is None:
            return None
        return {"id": str(project.public_id), "name": project.display_name}

    def get_member(self, status) -> dict | None:
        member = status.budget.member
        if member is None:
            return None
        return {"id": str(member.public_id), "email": member.email}


@extend_schema(summary="Budgets the caller may see, with spend in the current period")
class BudgetListView(generics.ListAPIView):
    required_scope = "read"
    permission_classes = [IsAuthenticated, TokenHasScope]
    throttle_classes = [ReadThrottle]
    serializer_class = BudgetStatusSerializer

    def get_queryset(self):
        return budget_status_for(self.request.user)


class IngestOrReadScope(TokenHasScope):
    """The agent's own token (usually `ingest` only) or a `read` token: either may ask."""

    message = "This API token needs the 'ingest' or the 'read' scope."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if token is not None and hasattr(token, "has_scope"):
            return token.has_scope("ingest") or token.has_scope("read")
        return bool(request.user and request.user.is_authenticated)


@extend_schema(
    summary="What the caller's Claude Code hooks and status line act on",
    responses=OpenApiTypes.OBJECT,
)
class AgentStatusView(APIView):
    """GET /api/v1/agent/status/: budgets.enforcement.member_status for the caller, cached per
    member for STATUS_CACHE_SECONDS; the cache going away only costs a recompute."""

    permission_classes = [IsAuthenticated, IngestOrReadScope]
    throttle_classes = [ReadThrottle]

    def get(self, request):
        return Response(agent_status(request.user))


def status_key(user_id: int) -> str:
    """The cache key of one member's agent status."""
    return f"agent-status:v1:{user_id}"


def agent_status(user, *, fresh: bool = False) -> dict:
    """The body of GET /api/v1/agent/status/ for `user` (budgets.enforcement.member_status
    plus `ttl_seconds`), from the cache when it is younger than STATUS_CACHE_SECONDS, and
    cached when computed. `fresh` (an ingest answer) computes it from what was just stored
    and leaves the cache alone: the running block comes from the worker's derived work after
    it, which then drops the cached status (budgets.receivers.forget_agent_status)."""
    key = status_key(user.pk)
    if fresh:
        return {**member_status(user), "ttl_seconds": STATUS_CACHE_SECONDS}
    body: dict | None
    try:
        body = cache.get(key)
    except Exception:  # a cache outage (Redis down) degrades to computing every time
        log.warning("agent status cache unavailable", exc_info=True)
        body = None
    if body is None:
        body = member_status(user)
        body["ttl_seconds"] = STATUS_CACHE_SECONDS
        try:
            cache.set(key, body, STATUS_CACHE_SECONDS)
        except Exception:
            log.warning("agent status cache unavailable", exc_info=True)
    return body


# An agent sends what queued while the server was away; more than this is split by the agent.
MAX_REFUSALS = 500
# A report dated further ahead than this comes from a wrong clock, not from a refusal.
CLOCK_SKEW = timedelta(hours=1)


def error_paths(errors, where: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as {JSON path: [reasons]}, the API's error shape
    (telemetry_site.api.errors): `{"refusals": [{}, {"id": [...]}]}` ->
    `{"refusals[1].id": [...]}`."""
    found: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            found.update(error_paths(value, f"{where}.{key}" if where else str(key)))
    elif isinstance(errors, list) and any(isinstance(e, dict | list) for e in errors):
        for index, value in enumerate(errors):
            found.update(error_paths(value, f"{where}[{index}]"))
    elif isinstance(errors, list):
        found[where or "non_field_errors"] = [str(e) for e in errors]
    else:
        found[where or "non_field_errors"] = [str(errors)]
    return found


class RefusalSerializer(serializers.Serializer):
    """One refused prompt as the agent's hook queued it (agent/claude_telemetry/limits.py)."""

    id = serializers.UUIDField()
    at = serializers.DateTimeField()
    subject = serializers.RegexField(r"^(budget|quota):[A-Za-z0-9_-]{1,64}$", max_length=80)
    threshold = serializers.IntegerField(min_value=0, max_value=100_000)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    percent = serializers.FloatField(
        min_value=0, max_value=1_000_000, required=False, allow_null=True
    )
    spent_usd = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, allow_null=True
    )
    cap_usd = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, allow_null=True
    )
    session_id = serializers.CharField(max_length=200, required=False, allow_blank=True)

    def validate_at(self, value):
        if value > timezone.now() + CLOCK_SKEW:
            raise serializers.ValidationError("Is in the future; check this PC's clock.")
        return value


class RefusalBatchSerializer(serializers.Serializer):
    refusals = RefusalSerializer(many=True, allow_empty=True)

    def validate_refusals(self, value):
        if len(value) > MAX_REFUSALS:
            raise serializers.ValidationError(f"At most {MAX_REFUSALS} refusals per request.")
        return value


@extend_schema(
    summary="Record the prompts the caller's Claude Code hooks refused",
    request=RefusalBatchSerializer,
    responses={200: OpenApiTypes.OBJECT, **error_responses(400, 401, 403, 429)},
)
class AgentRefusalsView(APIView):
    """POST /api/v1/agent/refusals/: {"refusals": [...]} -> {"recorded": n, "duplicates": m}.

    The agent's own token (`ingest` scope). The whole batch is checked first: one bad item is a
    400 naming it and nothing is stored. A refusal sent again (same `id`) is not counted again.
    """

    required_scope = "ingest"
    permission_classes = [IsAuthenticated, TokenHasScope]
    throttle_classes = [IngestThrottle]

    def post(self, request):
        batch = RefusalBatchSerializer(data=request.data)
        if not batch.is_valid():
            return Response(
                {"detail": "Invalid input.", "errors": error_paths(batch.errors)},
                status=status.HTTP_400_BAD_REQUEST,
            )
        items = [dict(item) for item in batch.validated_data["refusals"]]
        for item in items:
            for field in ("spent_usd", "cap_usd"):
                if item.get(field) is not None:
                    item[field] = f"{item[field]:.2f}"
        try:
            recorded, duplicates = record_refusals(request.user, items)
        except ValueError as exc:
            return Response(
                {"detail": "Invalid input.", "errors": {"refusals": [str(exc)]}},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response({"recorded": recorded, "duplicates": duplicates})
