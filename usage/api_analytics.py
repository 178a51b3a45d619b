"""REST API of the analytics: blocks, rate limits, pace, team headroom and plan value.

Views are thin: the figures come from usage.blocks, usage.ratelimits, usage.pace and
usage.planvalue. Visibility follows accounts.access: your own subscriptions in full, your
team's totals, other members' subscriptions for admins (or when the team allows it).
Objects that are not yours (a subscription, machine or member) are 404.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import is_team_admin, sees_other_members, team_of
from usage import blocks, pace, planvalue, queries, ratelimits
from usage.api import (
    RETRY_AFTER,
    MemberRefSerializer,
    MoneyField,
    Pagination,
    ReadView,
    SubscriptionRefSerializer,
    _errors,
    _validated,
)
from usage.models import Block, DailyUsage, HourlyUsage, Machine, Subscription

DEFAULT_BLOCK_DAYS = 7
LIMIT_HIT_WEEKS = 8


# --- whose subscriptions ---------------------------------------------------------------------
def _not_yours(what: str):
    return exceptions.NotFound(f"No such {what}.")


def resolve_subscription(viewer, public_id) -> Subscription:
    """A subscription the viewer may see; anyone else's is simply not found."""
    sub = Subscription.objects.select_related("owner").filter(public_id=public_id).first()
    if sub is None:
        raise _not_yours("subscription")
    if sub.owner_id == viewer.pk:
        return sub
    team = team_of(viewer)
    if team is None or team_of(sub.owner) != team or not sees_other_members(viewer):
        raise _not_yours("subscription")
    return sub


def _member(viewer, value):
    try:
        return queries.resolve_member(viewer, value)
    except (Http404, PermissionDenied):
        raise _not_yours("member in your team") from None


def subscriptions_for(viewer, *, scope="me", member=None, subscription=None):
    """The subscriptions a request reads: one by id, a member's, the team's, or your own."""
    qs = Subscription.objects.select_related("owner").order_by("owner__email", "label", "pk")
    if subscription:
        return qs.filter(pk=resolve_subscription(viewer, subscription).pk)
    if member:
        return qs.filter(owner=_member(viewer, member))
    if scope == "team":
        team = team_of(viewer)
        if team is None:
            return qs.filter(owner=viewer)
        if not sees_other_members(viewer):
            raise exceptions.PermissionDenied("Only team admins see every member's subscriptions.")
        return qs.filter(owner__membership__team=team)
    return qs.filter(owner=viewer)


def _zone(viewer) -> ZoneInfo:
    team = team_of(viewer)
    return ZoneInfo(team.timezone if team else "UTC")


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


SUBSCRIPTION_HELP = "A subscription's public id (yours, or a member's for admins)."
MEMBER_HELP = "A member's public id or email (admins, or when the team shares figures)."


class RangeSerializer(serializers.Serializer):
    since = serializers.DateField(
        required=False, help_text="First reporting day (team timezone), inclusive."
    )
    until = serializers.DateField(
        required=False, help_text="Last reporting day (team timezone), inclusive."
    )

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": ["must not be before since"]})
        return attrs


class WhoseSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(
        choices=queries.SCOPES,
        default="me",
        help_text="`me` (default): your subscriptions; `team`: every member's (admins).",
    )
    subscription = serializers.UUIDField(required=False, help_text=SUBSCRIPTION_HELP)
    member = serializers.CharField(required=False, max_length=254, help_text=MEMBER_HELP)


# --- blocks ----------------------------------------------------------------------------------
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


class ContributionSerializer(serializers.Serializer):
    uuid = serializers.UUIDField()
    name = serializers.CharField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_creation_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost_usd = MoneyField()
    entries = serializers.IntegerField()
    last_activity = serializers.DateTimeField()


class BlockSerializer(serializers.Serializer):
    subscription = SubscriptionRefSerializer(allow_null=True)
    start_time = serializers.DateTimeField()
    end_time = serializers.DateTimeField()
    last_activity = serializers.DateTimeField()
    is_active = serializers.BooleanField(
        help_text="Now is before end_time and the last activity is under 5 hours old."
    )
    entries = serializers.IntegerField()
    models = serializers.ListField(child=serializers.CharField())
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_creation_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    cost_usd = MoneyField()
    machines = ContributionSerializer(many=True, help_text="Each contributing machine's part.")
    machine_count = serializers.IntegerField()
    overlap = serializers.BooleanField(help_text="Two or more machines contributed.")
    limit_hit_at = serializers.DateTimeField(
        allow_null=True, help_text="The hour a usage limit was hit in this block, if any."
    )
    burn_rate = BurnRateSerializer(
        allow_null=True, help_text="From the block's first hour to its last activity."
    )
    projection = ProjectionSerializer(
        allow_null=True, help_text="Active blocks only: totals at the end if the rate holds."
    )


def block_data(block, now, *, subscription=None, machines: dict | None = None) -> dict:
    """One block as the API shows it; works for stored blocks and live per-machine spans."""
    if isinstance(block, Block):
        parts = [
            {"machine": c.machine, "totals": c}
            for c in sorted(block.contributions.all(), key=lambda c: c.machine.name)
        ]
        subscription = block.subscription
        models = block.models_used
    else:
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
        responses={200: BlockSerializer(many=True), **_errors(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        params = _validated(BlockQuerySerializer, request)
        viewer, now = request.user, timezone.now()
        zone = _zone(viewer)
        until_day = params.get("until") or now.astimezone(zone).date()
        since_day = params.get("since") or until_day - timedelta(days=DEFAULT_BLOCK_DAYS - 1)
        start, end = _day_start(since_day, zone), _day_start(until_day + timedelta(1), zone)
        paginator = self.pagination_class()

        if params.get("machine"):
            machine = self._machine(viewer, params["machine"])
            spans = blocks.machine_blocks(machine, start, end, now)[::-1]
            page = paginator.paginate_queryset(spans, request, view=self)
            rows = [
                block_data(s, now, subscription=None, machines={machine.pk: machine}) for s in page
            ]
        else:
            subs = subscriptions_for(
                viewer,
                scope=params.get("scope", "me"),
                member=params.get("member"),
                subscription=params.get("subscription"),
            )
            qs = (
                Block.objects.filter(subscription__in=subs, start_time__lt=end, end_time__gt=start)
                .select_related("subscription")
                .prefetch_related("contributions__machine")
                .order_by("-start_time", "subscription_id")
            )
            page = paginator.paginate_queryset(qs, request, view=self)
            rows = [block_data(b, now) for b in page]
        return paginator.get_paginated_response(BlockSerializer(rows, many=True).data)

    @staticmethod
    def _machine(viewer, value) -> Machine:
        try:
            return queries.resolve_machine(viewer, value)
        except (Http404, PermissionDenied):
            raise _not_yours("machine") from None


# --- rate limits -----------------------------------------------------------------------------
class RateLimitQuerySerializer(WhoseSerializer):
    history_since = serializers.DateField(
        required=False,
        help_text="Include every reading captured since this reporting day, for charts.",
    )


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


class QuotaSerializer(serializers.Serializer):
    subscription = SubscriptionRefSerializer()
    member = MemberRefSerializer()
    five_hour = ReadingSerializer(allow_null=True)
    seven_day = ReadingSerializer(allow_null=True)
    windows = serializers.DictField(
        child=ReadingSerializer(), help_text="Per-model weekly windows, e.g. seven_day_opus."
    )
    closeness = serializers.FloatField(help_text="The highest current utilisation, in percent.")
    next_reset = serializers.DateTimeField(allow_null=True)
    limit_hits = LimitHitWeekSerializer(many=True, help_text="The last 8 weeks.")
    history = HistoryPointSerializer(many=True, required=False)


class QuotaListSerializer(serializers.Serializer):
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
            "a usage limit, per week."
        ),
        parameters=[RateLimitQuerySerializer, RETRY_AFTER],
        responses={200: QuotaListSerializer, **_errors(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        params = _validated(RateLimitQuerySerializer, request)
        viewer, now = request.user, timezone.now()
        subs = list(
            subscriptions_for(
                viewer,
                scope=params.get("scope", "me"),
                member=params.get("member"),
                subscription=params.get("subscription"),
            )
        )
        quotas = ratelimits.latest_quotas(subs, now)
        zone = _zone(viewer)
        today = now.astimezone(zone).date()
        week = today - timedelta(days=today.weekday() + 7 * (LIMIT_HIT_WEEKS - 1))
        hits = ratelimits.limit_hits(
            HourlyUsage.objects.filter(machine__subscription__in=[s.pk for s in subs]),
            tz=str(zone),
            since=_day_start(week, zone),
        )
        history_since = params.get("history_since")
        results = []
        for sub in subs:
            history = (
                ratelimits.utilization_history(sub, _day_start(history_since, zone))
                if history_since
                else None
            )
            mine = [h for h in hits if h.subscription_id == sub.pk]
            results.append(quota_data(quotas[sub.pk], mine, history))
        return Response(QuotaListSerializer({"results": results}).data)


class HeadroomRowSerializer(QuotaSerializer):
    limit_hits = None
    history = None


class HeadroomSerializer(serializers.Serializer):
    results = HeadroomRowSerializer(many=True)


class HeadroomView(ReadView, APIView):
    @extend_schema(
        operation_id="headroom",
        tags=["rate limits"],
        summary="Every member's current quota use, closest to a limit first (admins)",
        parameters=[RETRY_AFTER],
        responses={200: HeadroomSerializer, **_errors(401, 403, 429)},
    )
    def get(self, request):
        viewer = request.user
        team = team_of(viewer)
        if team is None or not is_team_admin(viewer):
            raise exceptions.PermissionDenied("Only team admins see the team's headroom.")
        rows = ratelimits.team_headroom(team, timezone.now())
        results = [quota_data(row.quota, []) for row in rows]
        return Response(HeadroomSerializer({"results": results}).data)


# --- pace ------------------------------------------------------------------------------------
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
        responses={200: PaceSerializer, **_errors(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        params = _validated(PaceQuerySerializer, request)
        viewer = request.user
        team = team_of(viewer)
        today = pace.team_today(team)
        scope = params.get("scope", "me")
        member = _member(viewer, params["member"]) if params.get("member") else None
        if member is None and scope == "me":
            member = viewer
        facts = DailyUsage.objects.all()
        if member is not None:
            facts = facts.filter(machine__owner=member)
        elif team is not None:
            facts = facts.filter(machine__team=team)
        else:
            facts = facts.filter(machine__owner=viewer)
        project = None
        if params.get("project"):
            try:
                project = queries.resolve_project(viewer, params["project"])
            except Http404:
                raise _not_yours("project in your team") from None
            facts = facts.filter(queries.project_filter(project))
        result = pace.pace_of(facts, today)

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


# --- plan value ------------------------------------------------------------------------------
class PlanValueQuerySerializer(RangeSerializer, WhoseSerializer):
    pass


class SuggestionSerializer(serializers.Serializer):
    plan = serializers.CharField()
    label = serializers.CharField()
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
    suggestion = SuggestionSerializer(
        allow_null=True, help_text="The cheapest plan that would have covered this usage."
    )


class PlanValueListSerializer(serializers.Serializer):
    results = PlanValueSerializer(many=True)


class PlanValueView(ReadView, APIView):
    @extend_schema(
        operation_id="plan_value",
        tags=["plan value"],
        summary="Each subscription's price against the API-equivalent cost of its usage",
        description=planvalue.__doc__,
        parameters=[PlanValueQuerySerializer, RETRY_AFTER],
        responses={200: PlanValueListSerializer, **_errors(400, 401, 403, 404, 429)},
    )
    def get(self, request):
        params = _validated(PlanValueQuerySerializer, request)
        viewer = request.user
        today = pace.team_today(team_of(viewer))
        until = params.get("until") or today
        since = params.get("since") or until.replace(day=1)
        subs = subscriptions_for(
            viewer,
            scope=params.get("scope", "me"),
            member=params.get("member"),
            subscription=params.get("subscription"),
        )
        results = []
        for sub in subs:
            value = planvalue.plan_value(sub, since, until)
            results.append({**vars(value), "subscription": sub, "member": sub.owner})
        return Response(PlanValueListSerializer({"results": results}).data)
