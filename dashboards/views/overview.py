"""The overview (`/`): today, this week and month; running blocks, quotas, plan value, pace,
budgets, for the viewer or (for those who may) the whole team."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
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

# Accounts the team overview's "closest to a limit" card shows, running blocks it shows (the
# costliest), and members a page of its plan-value table shows (a 1,000-member team has
# 1,000 of each).
HEADROOM_SHOWN = 5
ACTIVE_SHOWN = 6
# The machine card's rows (shares() folds the rest into one "others" row).
MACHINES_SHOWN = 8
PLAN_ROWS_PER_PAGE = 10


def _team_plan_page(team, since, until, number) -> tuple[plan_value.TeamPlanValue, Page]:
    """The team's plan value with one page of member rows (biggest API value first) and that
    page; a page number past the end shows the last page, one that is not a number the first."""
    try:
        wanted = max(int(number), 1)
    except (TypeError, ValueError):
        wanted = 1
    figures = plan_value.team_plan_values(
        team, since, until, offset=(wanted - 1) * PLAN_ROWS_PER_PAGE, limit=PLAN_ROWS_PER_PAGE
    )
    page = Paginator(range(figures.member_count), PLAN_ROWS_PER_PAGE).get_page(wanted)
    if page.number != wanted:
        figures = plan_value.team_plan_values(
            team,
            since,
            until,
            offset=(page.number - 1) * PLAN_ROWS_PER_PAGE,
            limit=PLAN_ROWS_PER_PAGE,
        )
    return figures, page


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
    summary = usage_summary(user, today, (since, until), preset=period.preset, scope=scope)
    # The breakdowns follow the chosen period (month to date unless another is chosen).
    month: dict[str, Any] = {"since": since, "until": until, "scope": scope}
    if team_view:
        # The team's machines that cost the most, the rest summed (thousands in a big team).
        top = queries.top_team_machines(user, since=since, until=until, limit=MACHINES_SHOWN + 1)
        machine_count = len(top["results"]) + top["others"]["count"]
        by_machine = shares(top, limit=MACHINES_SHOWN)
    else:
        answer = queries.aggregate_usage(user, group_by="machine", **month)
        machine_count = len(answer["results"])
        by_machine = shares(answer)
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
    if team_view:
        # The running blocks that cost the most; the blocks page has every one.
        running, running_count = queries.top_active_blocks(
            Subscription.objects.visible_to(viewer), now, limit=ACTIVE_SHOWN
        )
    else:
        running = queries.active_blocks(own_subscriptions, now)
        running_count = len(running)
    quotas = ratelimits.latest_quotas(own_subscriptions, now)
    team_plan, team_plan_page = (
        _team_plan_page(viewer.team, since, until, request.GET.get("plan_page"))
        if team_view
        else (None, None)
    )
    context = {
        "viewer": viewer,
        "team_view": team_view,
        "today": today,
        "period": period,
        "period_keep": {"scope": "team"} if team_view else {},
        "summary": summary,
        "by_machine": by_machine,
        # Every machine with usage in the period, not the card's rows (the tail is one row).
        "machine_count": machine_count,
        "by_project": by_project,
        "active": [block_card(b, now) for b in running],
        "active_count": running_count,
        "quotas": [
            {"subscription": sub, "rows": quota_rows(quotas[sub.pk])}
            for sub in own_subscriptions
            if quotas[sub.pk].readings
        ],
        # The few accounts closest to a limit; the team page lists every one.
        "headroom": [
            {"row": row, "rows": quota_rows(row.quota)}
            for row in ratelimits.headroom_rows(
                ratelimits.headroom_ranking(viewer.team, now, readings_only=True)[:HEADROOM_SHOWN]
                if team_view
                else [],
                now,
            )
        ],
        "plan_values": [
            {"subscription": sub, "value": plan_value.plan_value(sub, since, until)}
            for sub in ([] if team_view else own_subscriptions)
        ],
        # The lead's view: the team's plans against their API value; the biggest spenders'
        # rows a page at a time, the totals over everyone.
        "team_plan": team_plan,
        "team_plan_page": team_plan_page,
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
