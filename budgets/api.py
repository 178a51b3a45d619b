"""GET /api/v1/budgets/: the budgets the caller may see, with this period's progress."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.permissions import IsAuthenticated

from budgets.status import budget_status_for
from telemetry_site.api.permissions import TokenHasScope
from telemetry_site.api.throttles import ReadThrottle


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
