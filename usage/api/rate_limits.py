"""GET /api/v1/rate-limits/ (official quota readings per subscription, merged across machines)
and /api/v1/headroom/ (every member's current use, for admins)."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import Viewer, is_team_admin, team_of
from telemetry_site.api.errors import RETRY_AFTER, error_responses
from telemetry_site.api.pagination import MAX_OFFSET, Pagination
from telemetry_site.api.views import ReadView, validated
from usage.analytics import ratelimits
from usage.api.common import (
    MemberRefSerializer,
    SubscriptionRefSerializer,
    WhoseSerializer,
    subscriptions_asked,
)
from usage.models import HourlyUsage

LIMIT_HIT_WEEKS = 8


class RateLimitQuerySerializer(WhoseSerializer):
    history_since = serializers.DateField(
        required=False,
        help_text="Include every reading captured since this reporting day, for charts.",
    )
    # Paged like /api/v1/plan-value/: a big team has a thousand subscriptions.
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Subscriptions a page: 100 unless asked, 1,000 at most.",
    )
    offset = serializers.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET)


class ReadingSerializer(serializers.Serializer):
    used_percentage = serializers.FloatField(source="used_pct")
    resets_at = serializers.DateTimeField(allow_null=True)
    captured_at = serializers.DateTimeField()
    machine = serializers.CharField(source="machine_name", help_text="The machine that saw it.")
    stale = serializers.BooleanField(
        help_text="Past its reset time (or older than its window): not the current figure."
    )


class LimitHitWeekSerializer(serializers.Serializer):
    week_start = serializers.DateField(help_text="Monday, team timezone.")
    hours = serializers.IntegerField(help_text="Hours that hit a usage limit.")
    minutes_lost = serializers.IntegerField(help_text="From the limited hour to the reset.")


class HistoryPointSerializer(serializers.Serializer):
    captured_at = serializers.DateTimeField()
    five_hour_used_pct = serializers.FloatField(allow_null=True)
    seven_day_used_pct = serializers.FloatField(allow_null=True)
    machine = serializers.CharField(source="machine_name")


class HeadroomRowSerializer(serializers.Serializer):
    """A subscription's current quota: the fields of a rate-limits row before its history."""

    subscription = SubscriptionRefSerializer()
    member = MemberRefSerializer()
    five_hour = ReadingSerializer(allow_null=True)
    seven_day = ReadingSerializer(allow_null=True)
    windows = serializers.DictField(
        child=ReadingSerializer(), help_text="Per-model weekly windows, e.g. seven_day_opus."
    )
    closeness = serializers.FloatField(help_text="The highest current utilisation, in percent.")
    next_reset = serializers.DateTimeField(allow_null=True)


class QuotaSerializer(HeadroomRowSerializer):
    limit_hits = LimitHitWeekSerializer(many=True, help_text="The last 8 weeks.")
    history = HistoryPointSerializer(many=True, required=False)


class QuotaListSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Subscriptions in all pages.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = QuotaSerializer(many=True)


def quota_data(quota: ratelimits.Quota, hits: list, history=None) -> dict:
    data = {
        "subscription": quota.subscription,
        "member": quota.subscription.owner,
        "five_hour": quota.five_hour,
        "seven_day": quota.seven_day,
        "windows": quota.windows,
        "closeness": quota.closeness,
        "next_reset": quota.next_reset,
        "limit_hits": hits,
    }
    if history is not None:
        data["history"] = history
    return data


class RateLimitView(ReadView, APIView):
    @extend_schema(
        operation_id="rate_limits",
        tags=["rate limits"],
        summary="The official quota per subscription, merged across its machines",
        description=(
            "The latest captured 5-hour and 7-day utilisation (and per-model weekly windows) "
            "of each subscription: the most recent capture of any of its machines wins, never "
            "a sum. A reading past its reset time is marked `stale`. Also the hours that hit "
            "a usage limit, per week. Pages with `limit` (100 unless asked, 1,000 at most) "
            "and `offset`, subscriptions by owner email then label."
        ),
        parameters=[RateLimitQuerySerializer, RETRY_AFTER],
        responses={200: QuotaListSerializer, **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        params = validated(RateLimitQuerySerializer, request)
        viewer, now = request.user, timezone.now()
        # A page of subscriptions (by owner email, then label), each figure read for the
        # whole page at once; the quotas come from the stored latest readings.
        paginator = Pagination()
        subs = paginator.paginate_queryset(subscriptions_asked(viewer, params), request, view=self)
        assert subs is not None  # Pagination has a default limit, so it always pages
        quotas = ratelimits.stored_quotas([s.pk for s in subs], now)
        who = Viewer.of(viewer)
        zone = who.zone
        today = who.today()
        week = today - timedelta(days=today.weekday() + 7 * (LIMIT_HIT_WEEKS - 1))
        hits = ratelimits.limit_hits(
            HourlyUsage.objects.filter(machine__subscription__in=[s.pk for s in subs]),
            tz=str(zone),
            since=who.reporting_team.day_start(week),
        )
        history_since = params.get("history_since")
        results = []
        for sub in subs:
            # A subscription deleted since the page was read has no quota: left out.
            if sub.pk not in quotas:
                continue
            history = (
                ratelimits.utilization_history(sub, who.reporting_team.day_start(history_since))
                if history_since
                else None
            )
            mine = [h for h in hits if h.subscription_id == sub.pk]
            results.append(quota_data(quotas[sub.pk], mine, history))
        return paginator.get_paginated_response(QuotaSerializer(results, many=True).data)


class HeadroomSerializer(serializers.Serializer):
    results = HeadroomRowSerializer(many=True)


class HeadroomView(ReadView, APIView):
    @extend_schema(
        operation_id="headroom",
        tags=["rate limits"],
        summary="Every member's current quota use, closest to a limit first (admins)",
        parameters=[RETRY_AFTER],
        responses={200: HeadroomSerializer, **error_responses(401, 403, 429)},
    )
    def get(self, request):
        viewer = request.user
        team = team_of(viewer)
        if team is None or not is_team_admin(viewer):
            raise exceptions.PermissionDenied("Only team admins see the team's headroom.")
        rows = ratelimits.team_headroom(team, timezone.now())
        results = [quota_data(row.quota, []) for row in rows]
        return Response(HeadroomSerializer({"results": results}).data)
