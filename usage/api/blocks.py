"""GET /api/v1/blocks/: 5-hour blocks per subscription, merged across its machines
(usage.analytics.blocks), or one machine's own blocks computed live."""

from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from accounts.access import Viewer
from telemetry_site.api.errors import RETRY_AFTER, error_responses
from telemetry_site.api.pagination import Pagination
from telemetry_site.api.views import ReadView, validated
from usage import queries
from usage.analytics import blocks
from usage.api.common import (
    RangeSerializer,
    SubscriptionRefSerializer,
    TokenFiguresSerializer,
    WhoseSerializer,
    not_yours,
    subscriptions_asked,
)
from usage.models import Block, Machine

DEFAULT_BLOCK_DAYS = 7


class BlockQuerySerializer(RangeSerializer, WhoseSerializer):
    machine = serializers.UUIDField(
        required=False,
        help_text="One machine's own blocks (the same rule on its hours alone), computed live.",
    )


class BurnRateSerializer(serializers.Serializer):
    tokens_per_minute = serializers.FloatField()
    cost_per_hour = serializers.FloatField(help_text="US dollars per hour.")


class ProjectionSerializer(serializers.Serializer):
    total_tokens = serializers.IntegerField()
    cost_usd = serializers.FloatField(help_text="Rounded to cents, as ccusage does.")
    remaining_minutes = serializers.IntegerField()


class ContributionSerializer(TokenFiguresSerializer):
    uuid = serializers.UUIDField()
    name = serializers.CharField()
    entries = serializers.IntegerField()
    last_activity = serializers.DateTimeField()


class BlockSerializer(TokenFiguresSerializer):
    subscription = SubscriptionRefSerializer(allow_null=True)
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField()
    first_activity = serializers.DateTimeField(
        allow_null=True,
        help_text="The block's first request; null when the agents did not send it "
        "(older agents), and the burn rate then runs from start_time.",
    )
    last_activity = serializers.DateTimeField()
    is_active = serializers.BooleanField(
        help_text="Now is before end_time and the last activity is under 5 hours old."
    )
    entries = serializers.IntegerField()
    models = serializers.ListField(child=serializers.CharField())
    machines = ContributionSerializer(many=True, help_text="Each contributing machine's part.")
    machine_count = serializers.IntegerField()
    overlap = serializers.BooleanField(help_text="Two or more machines contributed.")
    limit_hit_at = serializers.DateTimeField(
        allow_null=True, help_text="The hour a usage limit was hit in this block, if any."
    )
    burn_rate = BurnRateSerializer(
        allow_null=True,
        help_text="As ccusage's: from the block's first request (first_activity, else "
        "start_time) to its last activity.",
    )
    projection = ProjectionSerializer(
        allow_null=True, help_text="Active blocks only: totals at the end if the rate holds."
    )


def block_data(
    block, now, *, subscription=None, machines: dict[int, Machine] | None = None
) -> dict:
    """One block as the API shows it; works for stored blocks and live per-machine spans."""
    parts: list[dict[str, Any]]
    if isinstance(block, Block):
        parts = [
            {"machine": c.machine, "totals": c}
            for c in sorted(block.contributions.all(), key=lambda c: c.machine.name)
        ]
        subscription = block.subscription
        models = block.models_used
    else:
        if machines is None:
            raise TypeError("a live span needs the machines it was computed from")
        parts = [
            {"machine": machines[mid], "totals": totals}
            for mid, totals in sorted(block.contributions.items())
        ]
        models = block.models_used
    rate = blocks.burn_rate(block)
    projection = blocks.projection(block, now)
    return {
        "subscription": subscription,
        "start_time": block.start_time,
        "end_time": block.end_time,
        "first_activity": block.first_activity,
        "last_activity": block.last_activity,
        "is_active": blocks.is_active(block, now),
        "entries": block.entries,
        "models": models,
        "input_tokens": block.input_tokens,
        "output_tokens": block.output_tokens,
        "cache_creation_tokens": block.cache_creation_tokens,
        "cache_read_tokens": block.cache_read_tokens,
        "total_tokens": block.total_tokens,
        "cost_usd": block.cost_usd,
        "machines": [
            {
                "uuid": p["machine"].uuid,
                "name": p["machine"].name,
                "input_tokens": p["totals"].input_tokens,
                "output_tokens": p["totals"].output_tokens,
                "cache_creation_tokens": p["totals"].cache_creation_tokens,
                "cache_read_tokens": p["totals"].cache_read_tokens,
                "total_tokens": p["totals"].total_tokens,
                "cost_usd": p["totals"].cost_usd,
                "entries": p["totals"].entries,
                "last_activity": p["totals"].last_activity,
            }
            for p in parts
        ],
        "machine_count": block.machine_count,
        "overlap": block.overlap,
        "limit_hit_at": block.limit_hit_at,
        "burn_rate": vars(rate) if rate else None,
        "projection": vars(projection) if projection else None,
    }


class BlockListView(ReadView, APIView):
    pagination_class = Pagination

    @extend_schema(
        operation_id="blocks_list",
        tags=["blocks"],
        summary="5-hour blocks per subscription, merged across its machines, newest first",
        description=(
            "ccusage's block rule applied to the hourly buckets of every machine of a "
            "subscription: the blocks ccusage would report if it read all those machines at "
            "once. `since`/`until` select blocks overlapping those reporting days (default: "
            "the last 7 days). With `machine`, one machine's own blocks, computed live."
        ),
        parameters=[BlockQuerySerializer, RETRY_AFTER],
        responses={200: BlockSerializer(many=True), **error_responses(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        params = validated(BlockQuerySerializer, request)
        viewer, now = request.user, timezone.now()
        until_day = params.get("until") or Viewer.of(viewer).today()
        since_day = params.get("since") or until_day - timedelta(days=DEFAULT_BLOCK_DAYS - 1)
        start, end = Viewer.of(viewer).reporting_team.day_bounds(since_day, until_day)
        paginator = self.pagination_class()

        if params.get("machine"):
            machine = self._machine(viewer, params["machine"])
            spans = blocks.machine_blocks(machine, start, end, now)[::-1]
            # LimitOffsetPagination pages any sequence; the stubs accept only a QuerySet.
            span_page: list[blocks.BlockSpan] | None = paginator.paginate_queryset(
                spans,  # type: ignore[arg-type]
                request,
                view=self,
            )
            assert span_page is not None, "Pagination has a default limit: every list is paged"
            rows = [
                block_data(s, now, subscription=None, machines={machine.pk: machine})
                for s in span_page
            ]
        else:
            subs = subscriptions_asked(viewer, params)
            qs = (
                Block.objects.filter(subscription__in=subs, start_time__lt=end, end_time__gt=start)
                .select_related("subscription")
                .prefetch_related("contributions__machine")
                .order_by("-start_time", "subscription_id")
            )
            block_page = paginator.paginate_queryset(qs, request, view=self)
            assert block_page is not None, "Pagination has a default limit: every list is paged"
            rows = [block_data(b, now) for b in block_page]
        return paginator.get_paginated_response(BlockSerializer(rows, many=True).data)

    @staticmethod
    def _machine(viewer, value) -> Machine:
        try:
            return queries.resolve_machine(viewer, value)
        except (Http404, PermissionDenied):
            raise not_yours("machine") from None
