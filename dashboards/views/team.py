"""The team page: totals and pace for everyone in the team; per-member figures, quota headroom
and one member's drill-down for those who may see other members."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from accounts.access import Viewer
from accounts.models import User
from budgets.enforcement import recent_events
from dashboards.cards import pace_card, quota_rows, shares, usage_summary
from dashboards.forms import period_filters
from usage import productivity, queries
from usage.analytics import pace, ratelimits
from usage.models import Machine, Subscription

# Rows a page of the members table and of the quota headroom list shows: a 1,000-member team
# has 1,000 of each; the first page is the biggest spenders and the closest to a limit.
MEMBERS_PER_PAGE = 25
HEADROOM_PER_PAGE = 10
# Rows a page of the productivity card's member table shows (those who sent OTLP metrics).
PRODUCTIVITY_PER_PAGE = 25


@login_required
def team_dashboard(request):
    """Team totals and pace for everyone in the team; per member figures for those who may."""
    viewer = Viewer.of(request.user)
    if viewer.team is None:
        return render(request, "dashboards/team.html", {"viewer": viewer, "no_team": True})
    if request.GET.get("member"):
        return _member_drilldown(request, viewer, request.GET["member"])
    user, team = request.user, viewer.team
    now = timezone.now()
    today = viewer.today()
    period = period_filters(request, today)
    since, until = period.period()
    summary = usage_summary(user, today, (since, until), preset=period.preset, scope="team")
    context = {
        "viewer": viewer,
        "team": team,
        "today": today,
        "period": period,
        "summary": summary,
        "pace": pace_card(pace.pace_for_team(team, today)),
        "members": [],
        "headroom": [],
        # Every warning and stop in Claude Code is a row the team page shows (own ones only
        # for those who may not see other members' figures).
        "enforcement_events": recent_events(user, team, whole_team=viewer.sees_others),
    }
    if viewer.sees_others:
        month = queries.aggregate_usage(
            user, group_by="member", since=since, until=until, scope="team"
        )
        by_member = {r["key"]: r for r in month["results"]}
        machine_counts = dict(
            Machine.objects.filter(team=team, retired_at__isnull=True)
            .values_list("owner_id")
            .annotate(n=Count("pk"))
            .values_list("owner_id", "n")
        )
        total = month["totals"]["cost_usd"]
        # Rank everyone by the period's spend from light (id, email) rows, then load and build
        # only the page shown: a 1,000-member team's rows are not rendered at once.
        current = list(viewer.visible_members().values_list("pk", "public_id", "email"))
        current_ids = {str(public_id) for _, public_id, _ in current}
        # People who left keep their spend in the table, marked as former, so the rows add
        # up to the team's total (their machines stay in the team).
        gone = [key for key in by_member if key not in current_ids]
        former = list(
            User.objects.filter(public_id__in=gone).values_list("pk", "public_id", "email")
            if gone
            else []
        )
        ranked = []
        for former_flag, people in ((False, current), (True, former)):
            for pk, public_id, email in people:
                row = by_member.get(str(public_id))
                cost = row["cost_usd"] if row else Decimal(0)
                ranked.append((-cost, email, pk, former_flag))
        ranked.sort()
        members_page = Paginator(ranked, MEMBERS_PER_PAGE).get_page(request.GET.get("members_page"))
        shown = list(members_page.object_list)
        users = User.objects.select_related("membership").in_bulk([pk for *_, pk, _ in shown])
        # Today's figures for the page's members only; the team's today is the summary's.
        today_usage = queries.team_member_usage(user, users, today, today)
        members = []
        for _, _, pk, is_former in shown:
            person = users[pk]
            key = str(person.public_id)
            row = by_member.get(key)
            cost = row["cost_usd"] if row else Decimal(0)
            members.append(
                {
                    "user": person,
                    "role": "Former member" if is_former else person.membership.get_role_display(),
                    "former": is_former,
                    "machines": 0 if is_former else machine_counts.get(person.pk, 0),
                    "cost_usd": cost,
                    "total_tokens": row["total_tokens"] if row else 0,
                    "today_usd": today_usage.get(pk, {}).get("cost_usd", Decimal(0)),
                    "share": float(cost * 100 / total) if total else 0.0,
                }
            )
        context["members"] = members
        context["members_page"] = members_page
        context["members_totals"] = {
            "cost_usd": total,
            "total_tokens": month["totals"]["total_tokens"],
            "today_usd": summary.today.cost_usd,
            "machines": sum(machine_counts.values()),
        }
        # Closest to a limit first, a page at a time; only the page's bars are built. The
        # database sorts the stored latest readings; the ids come back in one query (a
        # thousand integers), which spares the Paginator a count.
        headroom_page = Paginator(
            list(ratelimits.headroom_ranking(team, now)), HEADROOM_PER_PAGE
        ).get_page(request.GET.get("headroom_page"))
        context["headroom_page"] = headroom_page
        context["headroom"] = [
            {"row": row, "rows": quota_rows(row.quota)}
            for row in ratelimits.headroom_rows(list(headroom_page.object_list), now)
        ]
        context["chart"] = {
            "labels": [m["user"].display_name for m in members],
            "series": [
                {
                    "label": period.range_label,
                    "cost": [float(m["cost_usd"]) for m in members],
                    "tokens": [m["total_tokens"] for m in members],
                }
            ],
        }
    context["productivity"] = _productivity(
        user, viewer, since, until, request.GET.get("productivity_page")
    )
    return render(request, "dashboards/team.html", context)


def _productivity(user, viewer: Viewer, since, until, page_number) -> dict:
    """The period's productivity card (Claude Code's OTLP metrics): the team's totals for
    everyone; for those who may see other members, one page of member rows (most commits
    first, as aggregate_productivity orders them) and that page ("members_page"). One
    productivity and one cost query: the per-member answer carries the team's totals too."""
    figures = productivity.aggregate_productivity(
        user,
        group_by="member" if viewer.sees_others else "day",
        since=since,
        until=until,
        scope="team",
        # Without metrics the card only says how to set them up: no cost to sum.
        cost_without_rows=False,
    )
    team = figures["totals"]
    card: dict[str, Any] = {
        "has_data": bool(figures["results"]),
        "totals": {**team, "active": timedelta(seconds=team["active_seconds"])},
        "members": [],
        "members_page": None,
    }
    if viewer.sees_others:
        # A 1,000-member team has a row per member who sent metrics: only a page is built.
        members_page = Paginator(figures["results"], PRODUCTIVITY_PER_PAGE).get_page(page_number)
        card["members_page"] = members_page
        card["members"] = [
            {**row, "active": timedelta(seconds=row["active_seconds"])}
            for row in members_page.object_list
        ]
    return card


def _member_drilldown(request, viewer: Viewer, member_ref: str):
    """One member's figures; someone the viewer may not see is a 404, like a stranger."""
    try:
        target = queries.resolve_member(request.user, member_ref)
    except (Http404, PermissionDenied):
        raise Http404("No such member in your team.") from None
    # Passing the loaded user (with their team) spares every query below a lookup of its own.
    target = User.objects.select_related("membership__team").get(pk=target.pk)
    user = request.user
    now = timezone.now()
    today = viewer.today()
    period = period_filters(request, today)
    since, until = period.period()
    month: dict[str, Any] = {"since": since, "until": until, "member": target}
    summary = usage_summary(user, today, (since, until), preset=period.preset, member=target)
    machines = list(queries.machines_for(user, member=target))
    subscriptions = list(Subscription.objects.filter(owner=target).order_by("label"))
    quotas = ratelimits.latest_quotas(subscriptions, now)
    return render(
        request,
        "dashboards/team_member.html",
        {
            "viewer": viewer,
            "target": target,
            "today": today,
            "period": period,
            "period_keep": {"member": member_ref},
            "summary": summary,
            "by_project": shares(queries.aggregate_usage(user, group_by="project", **month)),
            "by_machine": shares(queries.aggregate_usage(user, group_by="machine", **month)),
            "machines": [{"machine": m, "status": m.status(now)} for m in machines],
            "quotas": [
                {"subscription": sub, "rows": quota_rows(quotas[sub.pk])}
                for sub in subscriptions
                if quotas[sub.pk].readings
            ],
            "pace": pace_card(pace.pace_for_member(target, today)),
            "chart": summary.chart(),
        },
    )
