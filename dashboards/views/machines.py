"""The machines page and its actions: rename, move to another Claude account, retire/restore.

Only a machine's owner, or an admin of the owner's team, may act on it; anyone else gets 404.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.access import Viewer
from dashboards.forms import RenameForm, submitted_ids
from usage.analytics.blocks import move_machine
from usage.analytics.quality import (
    COPIED_FOLDER_ADVICE,
    DUPLICATE_SESSION_ADVICE,
    LOST_HISTORY_ADVICE,
    SHARED_REQUESTS_ADVICE,
    findings_by_machine,
)
from usage.models import DailyUsage, Machine, Subscription
from usage.pricing import models_without_ccusage_price

log = logging.getLogger(__name__)


@login_required
def machines(request):
    viewer = Viewer.of(request.user)
    now = timezone.now()
    machine_list = list(
        Machine.objects.visible_to(viewer)
        .select_related("owner", "subscription", "copied_from")
        .order_by("name", "pk")
    )
    # Own machines first, then colleagues' by email; retired ones last in each group.
    machine_list.sort(
        key=lambda m: (m.owner_id != viewer.user.pk, m.owner.email, m.retired_at is not None)
    )
    owner_ids = {m.owner_id for m in machine_list} | {viewer.user.pk}
    subscriptions_by_owner: dict[int, list[Subscription]] = {}
    for sub in Subscription.objects.filter(owner_id__in=owner_ids).order_by("owner_id", "label"):
        subscriptions_by_owner.setdefault(sub.owner_id, []).append(sub)
    findings = findings_by_machine(machine_list)
    rows = [
        {
            "machine": m,
            "status": m.status(now),
            "mine": m.owner_id == viewer.user.pk,
            "may_manage": viewer.may_manage(m),
            "subscriptions": subscriptions_by_owner.get(m.owner_id, []),
            # Other machines are named only when the viewer may see them.
            "findings": findings[m.pk],
        }
        for m in machine_list
    ]
    return render(
        request,
        "dashboards/machines.html",
        {
            "rows": rows,
            "now": now,
            "site_url": settings.SITE_URL,
            "active_count": sum(1 for r in rows if r["status"] != "retired"),
            "lost_history_advice": LOST_HISTORY_ADVICE,
            "duplicate_advice": DUPLICATE_SESSION_ADVICE,
            "copied_folder_advice": COPIED_FOLDER_ADVICE,
            "shared_requests_advice": SHARED_REQUESTS_ADVICE,
            # Data quality: the visible machines' usage ccusage reported at $0 for lack of a price.
            "unpriced_models": models_without_ccusage_price(
                DailyUsage.objects.filter(machine__in=Machine.objects.visible_to(viewer))
            ),
        },
    )


def _managed_machine(request, machine_uuid) -> Machine:
    """The machine if this viewer may manage it; 404 otherwise (never reveal someone else's)."""
    viewer = Viewer.of(request.user)
    machine = get_object_or_404(
        Machine.objects.visible_to(viewer).select_related("subscription"), uuid=machine_uuid
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
        owner_id=machine.owner_id, public_id__in=submitted_ids(request.POST.get("subscription"))
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


@login_required
def machine_retire_confirm(request, machine_uuid):
    """Confirm retiring a machine the viewer manages (its owner or a team admin; others' are
    404); one already retired goes back to the machines page."""
    machine = _managed_machine(request, machine_uuid)
    if machine.retired_at is not None:
        return redirect("machines")
    return render(
        request,
        "confirm.html",
        {
            "title": f"Retire the machine “{machine.name}”?",
            "effects": [
                "It is no longer shown as offline, and no alert is sent when its agent "
                "stops syncing.",
                "Its history stays in every figure, and a sync from it is still accepted.",
                "You can mark it as active again at any time on the Machines page.",
            ],
            "action_url": reverse("machine_retire", args=[machine.uuid]),
            "action_label": "Retire the machine",
            "cancel_url": reverse("machines"),
        },
    )


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
