"""Dashboard pages: overview, usage explorer (+ CSV), blocks, sessions, machines, team.

Views are thin: they scope by viewer (usage.dashboard.Viewer) and call the domain modules.
"""

import logging
import uuid
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from usage.blocks import move_machine
from usage.dashboard import (
    DashboardFilters,
    Viewer,
    day_bounds,
    machine_status,
    project_choices,
    project_q,
    visible_machines,
)
from usage.models import Machine, SessionUsage, Subscription
from usage.quality import DUPLICATE_SESSION_ADVICE, LOST_HISTORY_ADVICE, duplicate_sessions

log = logging.getLogger(__name__)

SESSIONS_PER_PAGE = 50


@login_required
def overview(request):
    return render(request, "usage/overview.html")


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


# --- Sessions ----------------------------------------------------------------------------------


@login_required
def sessions(request):
    viewer = Viewer.of(request.user)
    machine_list = list(visible_machines(viewer).select_related("owner").order_by("name"))
    projects = list(project_choices(viewer))
    members = list(viewer.visible_members()) if viewer.sees_others else []
    filters = DashboardFilters(
        request.GET or None,
        viewer=viewer,
        machines=machine_list,
        projects=projects,
        members=members,
    )
    rows = SessionUsage.objects.filter(viewer.owner_q("machine__"))
    if (member := filters.value("member")) is not None:
        rows = rows.filter(machine__owner__public_id=member)
    elif filters.value("scope") != "team":
        rows = rows.filter(machine__owner=viewer.user)
    if (machine := filters.value("machine")) is not None:
        rows = rows.filter(machine__uuid=machine)
    if (project := filters.value("project")) is not None:
        rows = rows.filter(project_q(project))
    if (source := filters.value("source")) is not None:
        rows = rows.filter(source=source)
    # A session belongs to the days of its last activity, in the viewer's timezone.
    if (since := filters.value("since")) is not None:
        rows = rows.filter(last_activity__gte=day_bounds(since))
    if (until := filters.value("until")) is not None:
        rows = rows.filter(last_activity__lt=day_bounds(until + timedelta(days=1)))
    totals = rows.aggregate(
        count=Count("pk"), total_tokens=Sum("total_tokens"), cost_usd=Sum("cost_usd")
    )
    paginator = Paginator(
        rows.select_related("machine__owner", "project__alias_of").order_by(
            "-last_activity", "-pk"
        ),
        SESSIONS_PER_PAGE,
    )
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
            "has_machines": bool(machine_list),
        },
    )


# --- Pages still being composed ------------------------------------------------------------


@login_required
def usage_explorer(request):
    return render(request, "usage/overview.html")


@login_required
def usage_csv(request):
    return render(request, "usage/overview.html")


@login_required
def blocks(request):
    return render(request, "usage/overview.html")


@login_required
def team_dashboard(request):
    return render(request, "usage/overview.html")
