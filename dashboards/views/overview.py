"""The overview (`/`): today, this week and month; running blocks, quotas, plan value, pace,
budgets, for the viewer or (for those who may) the whole team."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from accounts.access import Viewer
from budgets.status import budget_status_for
from dashboards.cards import (
    block_card,
    machine_label,
    pace_card,
    quota_rows,
    shares,
    usage_summary,
)
from dashboards.forms import period_filters
from usage import queries
from usage.analytics import pace, plan_value, ratelimits
from usage.models import DailyUsage, Machine, Subscription
from usage.pricing import models_without_ccusage_price


@login_required
def overview(request):
    """Today, this week and month; running blocks, quotas, plan value, pace, budgets, insights."""
    viewer = Viewer.of(request.user)
    user = request.user
    now = timezone.now()
    team_view = viewer.sees_others and request.GET.get("scope") == "team"
    scope = "team" if team_view else "me"
    today = viewer.today()
    period = period_filters(request, today)
    since, until = period.period()
    summary = usage_summary(user, today, (since, until), scope=scope)
    # The breakdowns follow the chosen period (month to date unless another is chosen).
    month: dict[str, Any] = {"since": since, "until": until, "scope": scope}
    by_machine = shares(queries.aggregate_usage(user, group_by="machine", **month))
    if team_view:
        # Two people's "laptop" need their owner's name to be told apart.
        shown = Machine.objects.visible_to(viewer).filter(
            uuid__in=[row["key"] for row in by_machine if row["key"]]
        )
        names = {str(m.uuid): machine_label(m, viewer) for m in shown.select_related("owner")}
        for row in by_machine:
            row["label"] = names.get(str(row["key"]), row["label"])
    by_project = shares(queries.aggregate_usage(user, group_by="project", **month))
    # plan_value reads the owner's team; loading it here saves a query per subscription.
    own_subscriptions = list(
        Subscription.objects.filter(owner=user)
        .select_related("owner__membership__team")
        .order_by("label")
    )
    block_subscriptions = (
        list(Subscription.objects.visible_to(viewer)) if team_view else own_subscriptions
    )
    quotas = ratelimits.latest_quotas(own_subscriptions, now)
    context = {
        "viewer": viewer,
        "team_view": team_view,
        "today": today,
        "period": period,
        "period_keep": {"scope": "team"} if team_view else {},
        "summary": summary,
        "by_machine": by_machine,
        "by_project": by_project,
        "active": [block_card(b, now) for b in queries.active_blocks(block_subscriptions, now)],
        "quotas": [
            {"subscription": sub, "rows": quota_rows(quotas[sub.pk])}
            for sub in own_subscriptions
            if quotas[sub.pk].readings
        ],
        "headroom": [
            {"row": row, "rows": quota_rows(row.quota)}
            for row in (ratelimits.team_headroom(viewer.team, now) if team_view else [])
            if row.quota.readings
        ][:5],
        "plan_values": [
            {"subscription": sub, "value": plan_value.plan_value(sub, since, until)}
            for sub in ([] if team_view else own_subscriptions)
        ],
        # The lead's view: every member's plans against their API value, in three queries.
        "team_plan": plan_value.team_plan_values(viewer.team, since, until) if team_view else None,
        "pace": pace_card(
            pace.pace_for_team(viewer.team, today)
            if team_view
            else pace.pace_for_member(user, today)
        ),
        "budgets": budget_status_for(user, now),
        "charts": {
            "daily": summary.chart(),
            "machines": {
                "labels": [r["label"] for r in by_machine],
                "cost": [float(r["cost_usd"]) for r in by_machine],
            },
        },
    }
    context["unpriced_models"] = models_without_ccusage_price(
        DailyUsage.objects.filter(
            queries.machine_scope(user, scope=scope), day__gte=since, day__lte=until
        )
    )
    context["has_usage"] = summary.has_usage or bool(by_machine)
    context["has_machines"] = context["has_usage"] or Machine.objects.visible_to(viewer).exists()
    return render(request, "dashboards/overview.html", context)
