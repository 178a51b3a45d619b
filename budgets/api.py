"""GET /api/v1/budgets/ (the budgets the caller may see, with this period's progress) and
GET /api/v1/agent/status/ (what the caller's Claude Code hooks and status line act on)."""

import logging

from django.core.cache import cache
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets.enforcement import member_status
from budgets.status import budget_status_for
from telemetry_site.api.permissions import TokenHasScope
from telemetry_site.api.throttles import ReadThrottle

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
        key = f"agent-status:v1:{request.user.pk}"
        try:
            body = cache.get(key)
        except Exception:  # a cache outage (Redis down) degrades to computing every time
            log.warning("agent status cache unavailable", exc_info=True)
            body = None
        if body is None:
            body = member_status(request.user)
            body["ttl_seconds"] = STATUS_CACHE_SECONDS
            try:
                cache.set(key, body, STATUS_CACHE_SECONDS)
            except Exception:
                log.warning("agent status cache unavailable", exc_info=True)
        return Response(body)
