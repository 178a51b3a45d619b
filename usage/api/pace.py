"""GET /api/v1/pace/: daily average, trend, unusual days and projections of spending
(usage.analytics.pace), with budget and weekly-quota run-out days."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import Viewer
from telemetry_site.api.errors import RETRY_AFTER, error_responses
from telemetry_site.api.fields import MoneyField
from telemetry_site.api.views import ReadView, validated
from usage import queries
from usage.analytics import pace
from usage.api.common import (
    MEMBER_HELP,
    MemberRefSerializer,
    SubscriptionRefSerializer,
    member_or_404,
    not_yours,
)
from usage.models import DailyUsage, Subscription


class PaceQuerySerializer(serializers.Serializer):
    scope = serializers.ChoiceField(
        choices=queries.SCOPES,
        default="me",
        help_text="`me` (default): your spending; `team`: the whole team's total.",
    )
    member = serializers.CharField(required=False, max_length=254, help_text=MEMBER_HELP)
    project = serializers.CharField(
        required=False, max_length=500, help_text="Project public id or ccusage key."
    )
    budget = serializers.DecimalField(
        required=False,
        max_digits=12,
        decimal_places=2,
        min_value=0,
        help_text="A monthly amount in US dollars: when would this pace reach it?",
    )


class AnomalySerializer(serializers.Serializer):
    day = serializers.DateField()
    cost_usd = MoneyField()
    z = serializers.FloatField()


class QuotaRunOutSerializer(serializers.Serializer):
    subscription = SubscriptionRefSerializer()
    used_percentage = serializers.FloatField(source="used_pct")
    resets_at = serializers.DateTimeField(allow_null=True)
    run_out_day = serializers.DateField(
        allow_null=True, help_text="Null when the window resets before it would run out."
    )


class BudgetRunOutSerializer(serializers.Serializer):
    amount = MoneyField()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    spent = MoneyField()
    run_out_day = serializers.DateField(allow_null=True)


class PaceSerializer(serializers.Serializer):
    scope = serializers.CharField()
    member = MemberRefSerializer(allow_null=True)
    project = serializers.UUIDField(allow_null=True)
    timezone = serializers.CharField(help_text="The team's reporting timezone (all days).")
    today = serializers.DateField()
    history_start = serializers.DateField(allow_null=True)
    history_days = serializers.IntegerField()
    active_days = serializers.IntegerField()
    daily_average = MoneyField(help_text="Mean cost of the days with usage.")
    daily_rate = MoneyField(help_text="Mean cost per calendar day: the pace projections use.")
    slope = MoneyField(help_text="Least-squares change of the daily cost, per day.")
    trend = serializers.ChoiceField(choices=["increasing", "stable", "decreasing", "unknown"])
    anomalies = AnomalySerializer(many=True)
    spent_today = MoneyField()
    week_start = serializers.DateField()
    week_spent = MoneyField()
    month_spent = MoneyField()
    projected_week_total = MoneyField()
    projected_month_total = MoneyField()
    budget = BudgetRunOutSerializer(allow_null=True)
    quota = QuotaRunOutSerializer(many=True, help_text="Weekly quota run-out, your accounts.")
    method = serializers.CharField(help_text="How these figures are computed (tooltip text).")


class PaceView(ReadView, APIView):
    @extend_schema(
        operation_id="pace",
        tags=["pace"],
        summary="Daily average, trend, anomalies and projections of spending",
        description=pace.PACE_TOOLTIP,
        parameters=[PaceQuerySerializer, RETRY_AFTER],
        responses={200: PaceSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        params = validated(PaceQuerySerializer, request)
        viewer = request.user
        team = Viewer.of(viewer).team
        today = Viewer.of(viewer).today()
        scope = params.get("scope", "me")
        member = member_or_404(viewer, params["member"]) if params.get("member") else None
        if member is None and scope == "me":
            member = viewer
        project = None
        if params.get("project"):
            try:
                project = queries.resolve_project(viewer, params["project"])
            except Http404:
                raise not_yours("project in your team") from None
        if project is not None:
            # A project's pace for one member reads that member's facts; else the rollups.
            result = (
                pace.pace_for_project(project, today, member=member)
                if member is not None or team is not None
                else pace.pace_of(
                    DailyUsage.objects.filter(
                        queries.project_filter(project), machine__owner=viewer
                    ),
                    today,
                )
            )
        elif member is not None:
            result = pace.pace_for_member(member, today)
        elif team is not None:
            result = pace.pace_for_team(team, today)
        else:
            result = pace.pace_for_member(viewer, today)

        budget = None
        if "budget" in params:
            period_start = today.replace(day=1)
            period_end = pace.month_end(today)
            budget = {
                "amount": params["budget"],
                "period_start": period_start,
                "period_end": period_end,
                "spent": result.month_spent,
                "run_out_day": result.run_out_day(
                    params["budget"], period_start, period_end, result.month_spent
                ),
            }
        quota = []
        if member is not None and project is None:
            for sub in Subscription.objects.filter(owner=member).select_related("owner"):
                run_out = pace.quota_run_out(sub, today)
                if run_out is not None:
                    quota.append({"subscription": sub, **vars(run_out)})
        data = {
            **vars(result),
            "scope": "team" if member is None else "me",
            "member": member,
            "project": project.public_id if project else None,
            "timezone": team.timezone if team else "UTC",
            "budget": budget,
            "quota": quota,
            "method": pace.PACE_TOOLTIP,
        }
        return Response(PaceSerializer(data).data)
