"""Dashboard pages: overview, usage explorer (+ CSV), blocks, sessions, machines, team.

Views are thin: they scope by viewer (usage.dashboard.Viewer) and call the domain modules.
"""

import csv
import logging
import uuid
from datetime import date, timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import User
from budgets.status import budget_status_for
from usage import pace, planvalue, queries, ratelimits
from usage.blocks import move_machine
from usage.dashboard import (
    EXPLORER_DAYS,
    BlockFilters,
    DashboardFilters,
    ExplorerFilters,
    Viewer,
    active_blocks,
    block_card,
    block_queryset,
    blocks_chart,
    contributions_of,
    day_bounds,
    local_today,
    machine_label,
    machine_status,
    pace_card,
    quota_rows,
    reporting_today,
    shares,
    usage_summary,
    visible_machines,
    visible_subscriptions,
    with_defaults,
)
from usage.models import DailyUsage, Machine, Subscription
from usage.quality import DUPLICATE_SESSION_ADVICE, LOST_HISTORY_ADVICE, duplicate_sessions

log = logging.getLogger(__name__)

SESSIONS_PER_PAGE = 50


@login_required
def overview(request):
    """Today, this week and month; running blocks, quotas, plan value, pace, budgets, insights."""
    viewer = Viewer.of(request.user)
    user = request.user
    now = timezone.now()
    team_view = viewer.sees_others and request.GET.get("scope") == "team"
    scope = "team" if team_view else "me"
    today = reporting_today(viewer)
    month_start = today.replace(day=1)
    summary = usage_summary(user, today, scope=scope)
    month = {"since": month_start, "until": today, "scope": scope}
    by_machine = shares(queries.aggregate_usage(user, group_by="machine", **month))
    if team_view:
        # Two people's "laptop" need their owner's name to be told apart.
        names = {
            str(m.uuid): machine_label(m, viewer)
            for m in visible_machines(viewer).select_related("owner")
        }
        for row in by_machine:
            row["label"] = names.get(str(row["key"]), row["label"])
    by_project = shares(queries.aggregate_usage(user, group_by="project", **month))
    # plan_value reads the owner's team; loading it here saves a query per subscription.
    own_subscriptions = list(
        Subscription.objects.filter(owner=user)
        .select_related("owner__membership__team")
        .order_by("label")
    )
    block_subscriptions = list(visible_subscriptions(viewer)) if team_view else own_subscriptions
    quotas = ratelimits.latest_quotas(own_subscriptions, now)
    context = {
        "viewer": viewer,
        "team_view": team_view,
        "today": today,
        "summary": summary,
        "by_machine": by_machine,
        "by_project": by_project,
        "active": [block_card(b, now) for b in active_blocks(block_subscriptions, now)],
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
            {"subscription": sub, "value": planvalue.plan_value(sub, month_start, today)}
            for sub in own_subscriptions
        ],
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
    context["has_usage"] = summary.has_usage or bool(by_machine)
    context["has_machines"] = context["has_usage"] or visible_machines(viewer).exists()
    return render(request, "usage/overview.html", context)


# --- Machines ----------------------------------------------------------------------------------


class RenameForm(forms.Form):
    name = forms.CharField(max_length=100, strip=True)


@login_required
def machines(request):
    viewer = Viewer.of(request.user)
    now = timezone.now()
    machine_list = list(
        visible_machines(viewer).select_related("owner", "subscription").order_by("name", "pk")
    )
    # Own machines first, then colleagues' by email; retired ones last in each group.
    machine_list.sort(
        key=lambda m: (m.owner_id != viewer.user.pk, m.owner.email, m.retired_at is not None)
    )
    owner_ids = {m.owner_id for m in machine_list} | {viewer.user.pk}
    subscriptions_by_owner: dict[int, list[Subscription]] = {}
    for sub in Subscription.objects.filter(owner_id__in=owner_ids).order_by("owner_id", "label"):
        subscriptions_by_owner.setdefault(sub.owner_id, []).append(sub)
    duplicates = _duplicates_by_machine(visible_machines(viewer))
    rows = [
        {
            "machine": m,
            "status": machine_status(m, now),
            "mine": m.owner_id == viewer.user.pk,
            "may_manage": viewer.may_manage(m),
            "subscriptions": subscriptions_by_owner.get(m.owner_id, []),
            "duplicate": duplicates.get(m.pk),
        }
        for m in machine_list
    ]
    return render(
        request,
        "usage/machines.html",
        {
            "rows": rows,
            "now": now,
            "site_url": settings.SITE_URL,
            "active_count": sum(1 for r in rows if r["status"] != "retired"),
            "lost_history_advice": LOST_HISTORY_ADVICE,
            "duplicate_advice": DUPLICATE_SESSION_ADVICE,
        },
    )


def _duplicates_by_machine(machines) -> dict[int, dict]:
    """Per machine: how many of its sessions another machine also reported, and which ones."""
    found: dict[int, dict] = {}
    for duplicate in duplicate_sessions(machines):
        for copy in duplicate.copies:
            entry = found.setdefault(
                copy.machine_id, {"sessions": 0, "others": set(), "extra_cost": Decimal(0)}
            )
            entry["sessions"] += 1
            entry["others"].update(c.machine_name for c in duplicate.copies if c is not copy)
        # The double count is charged once, to the session, not to every copy.
        first = duplicate.copies[0].machine_id
        found[first]["extra_cost"] += duplicate.double_counted_cost
    for entry in found.values():
        entry["others"] = sorted(entry["others"])
    return found


def _managed_machine(request, machine_uuid) -> Machine:
    """The machine if this viewer may manage it; 404 otherwise (never reveal someone else's)."""
    viewer = Viewer.of(request.user)
    machine = get_object_or_404(
        visible_machines(viewer).select_related("subscription"), uuid=machine_uuid
    )
    if not viewer.may_manage(machine):
        raise Http404("No such machine.")
    return machine


@require_POST
@login_required
def machine_rename(request, machine_uuid):
    machine = _managed_machine(request, machine_uuid)
    form = RenameForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A machine name must be 1 to 100 characters.")
        return redirect("machines")
    old_name, machine.name = machine.name, form.cleaned_data["name"]
    machine.save(update_fields=["name"])
    log.info(
        "machine renamed",
        extra={"machine": str(machine.uuid), "old": old_name, "by": request.user.pk},
    )
    messages.success(request, f"Renamed “{old_name}” to “{machine.name}”.")
    return redirect("machines")


@require_POST
@login_required
def machine_move(request, machine_uuid):
    machine = _managed_machine(request, machine_uuid)
    # Only the owner's own Claude accounts: rate limits and blocks belong to one account.
    target = Subscription.objects.filter(
        owner_id=machine.owner_id, public_id__in=_uuid_list(request.POST.get("subscription"))
    ).first()
    if target is None:
        messages.error(request, "Choose one of the owner's subscriptions.")
        return redirect("machines")
    if target.pk == machine.subscription_id:
        messages.info(request, f"“{machine.name}” already uses {target.label}.")
        return redirect("machines")
    move_machine(machine, target)
    messages.success(request, f"“{machine.name}” now counts toward {target.label}.")
    return redirect("machines")


@require_POST
@login_required
def machine_retire(request, machine_uuid):
    machine = _managed_machine(request, machine_uuid)
    restore = request.POST.get("action") == "restore"
    if restore and machine.retired_at is not None:
        machine.retired_at = None
        messages.success(request, f"“{machine.name}” is active again.")
    elif not restore and machine.retired_at is None:
        machine.retired_at = timezone.now()
        messages.success(request, f"Retired “{machine.name}”. Its history stays in every figure.")
    else:
        return redirect("machines")
    machine.save(update_fields=["retired_at"])
    log.info(
        "machine retired" if not restore else "machine restored",
        extra={"machine": str(machine.uuid), "by": request.user.pk},
    )
    return redirect("machines")


def _uuid_list(value: str | None) -> list[str]:
    """A submitted public id, or nothing when it is not a UUID (so the lookup finds no row)."""
    try:
        return [str(uuid.UUID(str(value)))]
    except (TypeError, ValueError):
        return []


# --- Blocks ------------------------------------------------------------------------------------

BLOCK_DAYS = 7
MAX_BLOCKS = 400


@login_required
def blocks(request):
    viewer = Viewer.of(request.user)
    now = timezone.now()
    subscriptions = list(
        visible_subscriptions(viewer).select_related("owner").order_by("owner__email", "label")
    )
    today = local_today()
    data = with_defaults(
        request.GET,
        since=(today - timedelta(days=BLOCK_DAYS - 1)).isoformat(),
        until=today.isoformat(),
    )
    filters = BlockFilters(data, viewer=viewer, subscriptions=subscriptions)
    chosen = subscriptions
    if (public_id := filters.value("subscription")) is not None:
        chosen = [s for s in subscriptions if str(s.public_id) == public_id]
    elif filters.value("scope") != "team":
        chosen = [s for s in subscriptions if s.owner_id == viewer.user.pk]
    until = filters.value("until") or today
    since = filters.value("since") or until - timedelta(days=BLOCK_DAYS - 1)
    rows = list(
        block_queryset(chosen)
        .filter(start_time__gte=day_bounds(since), start_time__lt=day_bounds(until + timedelta(1)))
        .order_by("-start_time")[:MAX_BLOCKS]
    )
    several = len({b.subscription_id for b in rows}) > 1
    active = [block_card(b, now) for b in active_blocks(chosen, now)]
    return render(
        request,
        "usage/blocks.html",
        {
            "filters": filters,
            "since": since,
            "until": until,
            "active": active,
            "rows": [{"block": b, "machines": contributions_of(b)} for b in rows],
            "truncated": len(rows) == MAX_BLOCKS,
            "chart": blocks_chart(rows, viewer, several),
            "several": several,
            # Only an empty page asks whether any machine reports at all (onboarding hint).
            "has_machines": bool(rows or active) or visible_machines(viewer).exists(),
            "now": now,
        },
    )


# --- Sessions ----------------------------------------------------------------------------------


def _filter_options(viewer: Viewer) -> dict:
    """What the filter menus offer: the machines, projects and members this viewer may pick."""
    scope = "team" if viewer.sees_others else "me"
    return {
        "machines": list(queries.machines_for(viewer.user, scope=scope)),
        "projects": [p for p in queries.projects_for(viewer.user) if p.alias_of_id is None],
        "members": list(viewer.visible_members()) if viewer.sees_others else [],
    }


@login_required
def sessions(request):
    viewer = Viewer.of(request.user)
    options = _filter_options(viewer)
    filters = DashboardFilters(request.GET or None, viewer=viewer, **options)
    # Every value was checked against the menus above, so the query raises nothing.
    rows = queries.sessions_for(
        request.user,
        scope=filters.value("scope") or "me",
        **{
            name: filters.value(name)
            for name in ("machine", "member", "project", "source", "since", "until")
        },
    )
    totals = rows.aggregate(
        count=Count("pk"), total_tokens=Sum("total_tokens"), cost_usd=Sum("cost_usd")
    )
    paginator = Paginator(rows, SESSIONS_PER_PAGE)
    # The total is already known; the paginator need not count again.
    paginator.count = totals["count"]
    # A page number past the end shows the last page, not an error.
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "usage/sessions.html",
        {
            "filters": filters,
            "page": page,
            "totals": totals,
            "viewer": viewer,
            "has_machines": bool(options["machines"]),
        },
    )


# --- Pages still being composed ------------------------------------------------------------


# --- Usage explorer ----------------------------------------------------------------------------

MODEL_MENU_DAYS = 365


def _explorer_filters(request, viewer: Viewer) -> ExplorerFilters:
    options = _filter_options(viewer)
    since = local_today() - timedelta(days=MODEL_MENU_DAYS)
    models = (
        DailyUsage.objects.filter(machine__in=visible_machines(viewer), day__gte=since)
        .order_by("model")
        .values_list("model", flat=True)
        .distinct()
    )
    today = local_today()
    # The form shows the range it uses, so the inputs are never blank.
    data = with_defaults(
        request.GET,
        since=(today - timedelta(days=EXPLORER_DAYS - 1)).isoformat(),
        until=today.isoformat(),
        period="day",
    )
    return ExplorerFilters(data, viewer=viewer, models=list(models), **options)


def _explorer_table(request, filters: ExplorerFilters) -> tuple[dict, dict, str]:
    """The table's figures, its query and grouping: aggregate_usage, as GET /api/v1/usage/."""
    params = filters.query(local_today())
    group_by = filters.group_by
    try:
        data = queries.aggregate_usage(request.user, group_by=group_by, **params)
    except (queries.QueryError, PermissionDenied) as exc:
        # The form already refuses what the query would; this keeps a surprise off an error page.
        filters.add_error(None, str(exc))
        params = {"since": params["since"], "until": params["until"], "scope": "me"}
        group_by = "day"
        data = queries.aggregate_usage(request.user, group_by=group_by, **params)
    if group_by == "machine":
        # Two people's "laptop" need their owner's name to be told apart, as in the menu.
        labels = filters.machine_labels()
        for row in data["results"]:
            row["label"] = labels.get(str(row["key"]), row["label"])
    return data, params, group_by


@login_required
def usage_explorer(request):
    viewer = Viewer.of(request.user)
    filters = _explorer_filters(request, viewer)
    data, params, group_by = _explorer_table(request, filters)
    api_params = {k: v.isoformat() if isinstance(v, date) else v for k, v in params.items()}
    periodic = group_by in ("day", "week", "month")
    split = "" if periodic else group_by
    period = group_by if periodic else (filters.value("period") or "day")
    return render(
        request,
        "usage/explorer.html",
        {
            "filters": filters,
            "data": data,
            "params": params,
            "group_by": group_by,
            "split": split,
            "explorer_config": {
                "api": reverse("api-usage"),
                "params": api_params,
                "period": period,
                "split": split,
                "machine_labels": filters.machine_labels(),
            },
            "csv_query": request.GET.urlencode(),
            "has_machines": bool(data["results"]) or visible_machines(viewer).exists(),
        },
    )


CSV_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "total_tokens",
    "cost_usd",
)


@login_required
def usage_csv(request):
    """The explorer's table as CSV: the same filters, the same function, the same rows."""
    viewer = Viewer.of(request.user)
    filters = _explorer_filters(request, viewer)
    data, params, group_by = _explorer_table(request, filters)
    name = f"usage-{group_by}-{params['since']}-{params['until']}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow([group_by, "key", *CSV_COLUMNS])
    for row in data["results"]:
        writer.writerow([row["label"], row["key"], *(_csv_value(row[c]) for c in CSV_COLUMNS)])
    writer.writerow(["Total", "", *(_csv_value(data["totals"][c]) for c in CSV_COLUMNS)])
    return response


def _csv_value(value):
    # Cents are what the page shows; the stored ten places are noise in a spreadsheet.
    if isinstance(value, Decimal):
        return f"{value.quantize(Decimal('0.01'))}"
    return value


# --- Team --------------------------------------------------------------------------------------


@login_required
def team_dashboard(request):
    """Team totals and pace for everyone in the team; per member figures for those who may."""
    viewer = Viewer.of(request.user)
    if viewer.team is None:
        return render(request, "usage/team.html", {"viewer": viewer, "no_team": True})
    if request.GET.get("member"):
        return _member_drilldown(request, viewer, request.GET["member"])
    user, team = request.user, viewer.team
    now = timezone.now()
    today = reporting_today(viewer)
    month_start = today.replace(day=1)
    summary = usage_summary(user, today, scope="team")
    context = {
        "viewer": viewer,
        "team": team,
        "today": today,
        "summary": summary,
        "pace": pace_card(pace.pace_for_team(team, today)),
        "members": [],
        "headroom": [],
    }
    if viewer.sees_others:
        month = queries.aggregate_usage(
            user, group_by="member", since=month_start, until=today, scope="team"
        )
        day = queries.aggregate_usage(
            user, group_by="member", since=today, until=today, scope="team"
        )
        by_member = {r["key"]: r for r in month["results"]}
        today_cost = {r["key"]: r["cost_usd"] for r in day["results"]}
        machine_counts = dict(
            Machine.objects.filter(team=team, retired_at__isnull=True)
            .values_list("owner_id")
            .annotate(n=Count("pk"))
            .values_list("owner_id", "n")
        )
        total = month["totals"]["cost_usd"]
        members = []
        for person in viewer.visible_members().select_related("membership"):
            row = by_member.get(str(person.public_id))
            cost = row["cost_usd"] if row else Decimal(0)
            members.append(
                {
                    "user": person,
                    "role": person.membership.get_role_display(),
                    "machines": machine_counts.get(person.pk, 0),
                    "cost_usd": cost,
                    "total_tokens": row["total_tokens"] if row else 0,
                    "today_usd": today_cost.get(str(person.public_id), Decimal(0)),
                    "share": float(cost * 100 / total) if total else 0.0,
                }
            )
        members.sort(key=lambda m: (-m["cost_usd"], m["user"].email))
        context["members"] = members
        context["headroom"] = [
            {"row": row, "rows": quota_rows(row.quota)}
            for row in ratelimits.team_headroom(team, now)
        ]
        context["chart"] = {
            "labels": [m["user"].display_name for m in members],
            "series": [
                {
                    "label": "This month",
                    "cost": [float(m["cost_usd"]) for m in members],
                    "tokens": [m["total_tokens"] for m in members],
                }
            ],
        }
    return render(request, "usage/team.html", context)


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
    today = reporting_today(viewer)
    month = {"since": today.replace(day=1), "until": today, "member": target}
    summary = usage_summary(user, today, member=target)
    machines = list(queries.machines_for(user, member=target))
    subscriptions = list(Subscription.objects.filter(owner=target).order_by("label"))
    quotas = ratelimits.latest_quotas(subscriptions, now)
    return render(
        request,
        "usage/team_member.html",
        {
            "viewer": viewer,
            "target": target,
            "today": today,
            "summary": summary,
            "by_project": shares(queries.aggregate_usage(user, group_by="project", **month)),
            "by_machine": shares(queries.aggregate_usage(user, group_by="machine", **month)),
            "machines": [{"machine": m, "status": machine_status(m, now)} for m in machines],
            "quotas": [
                {"subscription": sub, "rows": quota_rows(quotas[sub.pk])}
                for sub in subscriptions
                if quotas[sub.pk].readings
            ],
            "pace": pace_card(pace.pace_for_member(target, today)),
            "chart": summary.chart(),
        },
    )
