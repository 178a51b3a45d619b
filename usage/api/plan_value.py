"""GET /api/v1/plan-value/: each subscription's price against the API-equivalent cost of its
usage (usage.analytics.plan_value)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from accounts.access import Viewer
from telemetry_site.api.errors import RETRY_AFTER, error_responses
from telemetry_site.api.fields import MoneyField
from telemetry_site.api.pagination import MAX_OFFSET, Pagination
from telemetry_site.api.views import ReadView, validated
from usage.analytics import plan_value
from usage.api.common import (
    MemberRefSerializer,
    RangeSerializer,
    SubscriptionRefSerializer,
    WhoseSerializer,
    subscriptions_asked,
)


class PlanValueQuerySerializer(RangeSerializer, WhoseSerializer):
    pass


class SuggestionSerializer(serializers.Serializer):
    plan = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # field, not Field.label: drf-stubs#78
    monthly_usd = MoneyField()
    reason = serializers.CharField()


class PlanValueSerializer(serializers.Serializer):
    subscription = SubscriptionRefSerializer()
    member = MemberRefSerializer()
    since = serializers.DateField()
    until = serializers.DateField()
    days = serializers.IntegerField()
    active_days = serializers.IntegerField()
    plan = serializers.CharField()
    plan_label = serializers.CharField()
    monthly_price = MoneyField(allow_null=True, help_text="Per seat, from the price table.")
    plan_cost = MoneyField(allow_null=True, help_text="The monthly price pro rata per day.")
    api_cost = MoneyField(help_text="What the same Claude usage costs at API prices.")
    savings = MoneyField(allow_null=True, help_text="api_cost - plan_cost.")
    savings_pct = MoneyField(allow_null=True, help_text="savings as a share of api_cost, %.")
    cost_per_active_day = MoneyField(allow_null=True)
    api_cost_per_active_day = MoneyField(allow_null=True)
    peak_utilization_pct = MoneyField(allow_null=True)
    limit_hit_hours = serializers.IntegerField()
    lost_hours = serializers.DecimalField(
        max_digits=10, decimal_places=1, help_text="Hours lost to usage limits (to each reset)."
    )
    lost_value = MoneyField(
        allow_null=True,
        help_text="What the lost hours were worth at the API-equivalent cost per active hour.",
    )
    fit_note = serializers.CharField(help_text="Why the suggestion is what it is, in words.")
    suggestion = SuggestionSerializer(
        allow_null=True, help_text="The cheapest plan that would have covered this usage."
    )


class PlanValueListSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Subscriptions in all pages.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PlanValueSerializer(many=True)


class PlanValuePageSerializer(PlanValueQuerySerializer):
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Subscriptions a page: 100 unless asked, 1,000 at most.",
    )
    offset = serializers.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET)


class PlanValueView(ReadView, APIView):
    @extend_schema(
        operation_id="plan_value",
        tags=["plan value"],
        summary="Each subscription's price against the API-equivalent cost of its usage",
        description=plan_value.__doc__,
        parameters=[PlanValuePageSerializer, RETRY_AFTER],
        responses={200: PlanValueListSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        params = validated(PlanValuePageSerializer, request)
        viewer = request.user
        today = Viewer.of(viewer).today()
        until = params.get("until") or today
        since = params.get("since") or until.replace(day=1)
        # A page of subscriptions (by owner email, then label), each figure read for the
        # whole page at once: a big team has a thousand.
        paginator = Pagination()
        subs = paginator.paginate_queryset(
            subscriptions_asked(viewer, params).select_related("owner__membership__team"),
            request,
            view=self,
        )
        assert subs is not None  # Pagination has a default limit, so it always pages
        values = plan_value.plan_values(subs, since, until)
        results = [
            {**vars(values[sub.pk]), "subscription": sub, "member": sub.owner} for sub in subs
        ]
        return paginator.get_paginated_response(PlanValueSerializer(results, many=True).data)
