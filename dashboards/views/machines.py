"""The machines page and its actions: rename, move to another Claude account, retire/restore.

Only a machine's owner, or an admin of the owner's team, may act on it; anyone else gets 404.
"""

import logging
import shlex
import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, Count, Q, When
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from accounts.access import Viewer
from accounts.models import ApiToken, Scope
from dashboards.agent_wheel import AgentWheelError, ensure_wheel, wheel_url
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
from usage.naming import NAME_MAX, MachineNameError, readable_name, rename_machine
from usage.pricing import models_without_ccusage_price

log = logging.getLogger(__name__)
TOKEN_NAME_MAX = ApiToken._meta.get_field("name").max_length or 100
# Machines a page shows: a 1,000-member team has thousands.
MACHINES_PER_PAGE = 50


@login_required
def machines(request):
    return _machines_page(request)


@require_POST
@login_required
def machine_token(request):
    """POST /machines/token/ (optional `machine`: the name the new PC will have): a new
    `ingest` token for the viewer's next machine, shown once inside the setup command on the
    machines page (the database keeps only its hash). The token is named after the machine,
    so a lost laptop's token is found on the tokens page; without a name, after the time.
    A name that could not be a machine's answers 400 with the reason and makes no token."""
    name = request.POST.get("machine", "").strip()
    if name:
        try:
            name = readable_name(name, NAME_MAX, "machine")
        except ValueError as exc:
            return _machines_page(request, token_error=str(exc), status=400)
        label = f"Machine set-up: {name}"
        if len(label) > TOKEN_NAME_MAX:
            label = name  # a long machine name alone still fits (both hold 100 characters)
    else:
        label = f"Machine set-up {timezone.now():%Y-%m-%d %H:%M} UTC"
    created, raw = ApiToken.issue(request.user, label, [Scope.INGEST])
    log.info("machine token created", extra={"user_id": request.user.pk, "token": created.pk})
    return _machines_page(request, new_token=raw, new_token_machine=name, status=201)


def _machines_page(
    request,
    *,
    new_token: str | None = None,
    new_token_machine: str = "",
    token_error: str = "",
    status: int = 200,
):
    viewer = Viewer.of(request.user)
    now = timezone.now()
    visible = Machine.objects.visible_to(viewer)
    # Own machines first, then colleagues' by email; retired ones last in each group. A big
    # team's machines come a page at a time.
    ordered = (
        visible.select_related("owner", "subscription", "copied_from")
        .annotate(
            theirs=Case(When(owner_id=viewer.user.pk, then=0), default=1),
            retired=Case(When(retired_at__isnull=True, then=0), default=1),
        )
        .order_by("theirs", "owner__email", "retired", "name", "pk")
    )
    counts = visible.aggregate(all=Count("pk"), active=Count("pk", filter=Q(retired_at=None)))
    paginator = Paginator(ordered, MACHINES_PER_PAGE)
    paginator.count = counts["all"]
    page = paginator.get_page(request.GET.get("page"))
    machine_list = list(page.object_list)
    owner_ids = {m.owner_id for m in machine_list} | {viewer.user.pk}
    subscriptions_by_owner: dict[int, list[Subscription]] = {}
    for sub in Subscription.objects.filter(owner_id__in=owner_ids).order_by("owner_id", "label"):
        subscriptions_by_owner.setdefault(sub.owner_id, []).append(sub)
    findings = findings_by_machine(machine_list, among=visible)
    actions = _action_urls()
    rows = [
        {
            "machine": m,
            "status": m.status(now),
            "mine": m.owner_id == viewer.user.pk,
            "may_manage": viewer.may_manage(m),
            "subscriptions": subscriptions_by_owner.get(m.owner_id, []),
            # Other machines are named only when the viewer may see them.
            "findings": findings[m.pk],
            "urls": {name: url.replace(_SAMPLE_UUID, str(m.uuid)) for name, url in actions},
        }
        for m in machine_list
    ]
    return render(
        request,
        "dashboards/machines.html",
        {
            "rows": rows,
            "page": page,
            "machine_count": counts["all"],
            "now": now,
            "site_url": settings.SITE_URL,
            "agent_wheel_url": _wheel_url_or_none(),
            "new_token": new_token,
            # Quoted for a shell (POSIX and PowerShell both take single quotes); joined with
            # "=" so a name that starts with "-" is not read as another option.
            "new_token_name_arg": f" --name={shlex.quote(new_token_machine)}"
            if new_token_machine
            else "",
            "token_error": token_error,
            "machine_name_max": NAME_MAX,
            "active_count": counts["active"],
            "lost_history_advice": LOST_HISTORY_ADVICE,
            "duplicate_advice": DUPLICATE_SESSION_ADVICE,
            "copied_folder_advice": COPIED_FOLDER_ADVICE,
            "shared_requests_advice": SHARED_REQUESTS_ADVICE,
            # Data quality: the visible machines' usage ccusage reported at $0 for lack of a price.
            "unpriced_models": models_without_ccusage_price(
                DailyUsage.objects.filter(machine__in=Machine.objects.visible_to(viewer))
            ),
        },
        status=status,
    )


# Each card's action URLs: reversed once a page and filled in per machine (fifty cards asked
# the URL resolver 150 times).
_SAMPLE_UUID = str(uuid.UUID(int=0))
_ACTIONS = ("machine_rename", "machine_move", "machine_retire", "machine_retire_confirm")


def _action_urls() -> list[tuple[str, str]]:
    """(URL name, its path for the sample UUID) for each action a machine card offers."""
    return [(name, reverse(name, args=[_SAMPLE_UUID])) for name in _ACTIONS]


def _wheel_url_or_none() -> str | None:
    try:
        return wheel_url()
    except AgentWheelError:
        log.exception("the agent wheel cannot be built")
        return None


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
        # The form's own reason (length, a null character…), not a guess.
        reasons = " ".join(str(e) for errors in form.errors.values() for e in errors)
        if not str(request.POST.get("name", "")).strip():
            reasons = "A machine name must be 1 to 100 characters."
        messages.error(request, f"Not renamed: {reasons}")
        return redirect("machines")
    try:
        old_name = rename_machine(machine, form.cleaned_data["name"])
    except MachineNameError as exc:
        # Two machines of one person under one name could not be told apart on any page.
        messages.error(request, f"Not renamed: {exc}")
        return redirect("machines")
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
                "Its history stays in every figure. A sync from it is refused, and its agent "
                "is told so, until you mark it as active again.",
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


@require_safe
def agent_wheel_download(request, filename: str):
    """GET /agent/<wheel file name>: the agent's wheel, to anyone.

    Public on purpose: the wheel holds only the agent's open code (no token, no server data),
    and pip and pipx fetch it without a login. Another file name is a 404, so an old link
    says clearly that it is gone rather than serving another version under its name.
    """
    try:
        wheel = ensure_wheel()
    except AgentWheelError as exc:
        return HttpResponse(
            f"The agent cannot be downloaded from this server: {exc}.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    if filename != wheel.filename:
        raise Http404(f"No agent wheel named {filename}; this server offers {wheel.filename}.")
    response = FileResponse(
        wheel.path.open("rb"),
        as_attachment=True,
        filename=wheel.filename,
        content_type="application/zip",
    )
    response["Cache-Control"] = "no-cache"
    return response
