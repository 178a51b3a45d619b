"""The sessions list (filtered like the explorer, searchable by session id or project, paged,
CSV) and one session's page: its machine, project, models, figures, hours, blocks, copies."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from accounts.access import Viewer
from dashboards.cards import contributions_of, machine_label
from dashboards.forms import SessionFilters, explorer_menus
from telemetry_site.formatting import SafeCsvWriter
from usage import exports, queries
from usage.models import Block, HourlyUsage, Machine, SessionUsage, Subscription

SESSIONS_PER_PAGE = 50
SESSION_DEFAULT_RANGE = "30d"


def _filtered_sessions(request, viewer: Viewer):
    """The filter form and the sessions it picks (newest first): the filters, then the search
    (a session id's beginning or part of a project's name), then a block's time and machines.
    The long menus (a big team's machines, members, projects) are searched, as the explorer's
    (dashboards.forms.explorer_menus)."""
    data = request.GET.copy()
    if "range" not in data and not data.get("since") and not data.get("until"):
        # The last 30 team days unless asked: a 1,000-member team's two years are 2 million
        # sessions, too many to total at every visit. "Any time" (range=) stays a choice.
        data["range"] = SESSION_DEFAULT_RANGE
    filters = SessionFilters(data, viewer=viewer, **explorer_menus(viewer, data))
    block = _chosen_block(filters, viewer)
    # Every value was checked against the menus above, so the query raises nothing.
    rows = queries.sessions_for(
        request.user,
        # A block of a colleague's subscription (only visible ones resolve) reads the team.
        scope="team"
        if block is not None and viewer.sees_others
        else (filters.value("scope") or "me"),
        **{
            name: filters.value(name)
            for name in ("machine", "member", "project", "source", "since", "until")
        },
    )
    if (text := filters.value("q")) is not None:
        rows = rows.filter(
            Q(session_id__istartswith=text)
            | Q(project__display_name__icontains=text)
            | Q(project__alias_of__display_name__icontains=text)
            | Q(project__key__icontains=text)
        )
    if block is not None:
        # Sessions of the block's machines active in its five hours.
        rows = rows.filter(
            machine__in=[c.machine_id for c in block.contributions.all()],
            last_activity__gte=block.start_time,
        ).filter(
            Q(first_activity__lt=block.end_time)
            | Q(first_activity__isnull=True, last_activity__lt=block.end_time)
        )
    return filters, rows


def _chosen_block(filters: SessionFilters, viewer: Viewer) -> Block | None:
    """The block the `block` parameter names among the viewer's visible subscriptions; one
    they may not see, or that does not exist, is a message on the form."""
    picked = filters.value("block")
    if picked is None:
        return None
    public_id, start = picked
    block = (
        queries.block_queryset(Subscription.objects.visible_to(viewer))
        .filter(
            subscription__public_id=public_id,
            start_time=datetime.fromtimestamp(start, tz=UTC),
        )
        .first()
    )
    if block is None:
        filters.add_error("block", "There is no such block among those you can see.")
    return block


@login_required
def sessions_csv(request):
    """The sessions the filters pick, every page of them, as CSV (usage.exports)."""
    viewer = Viewer.of(request.user)
    _, rows = _filtered_sessions(request, viewer)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="sessions.csv"'
    writer = SafeCsvWriter(response)
    for row in exports.session_csv_rows(rows.iterator(), timezone.get_current_timezone()):
        writer.writerow(row)
    return response


@login_required
def sessions(request):
    viewer = Viewer.of(request.user)
    filters, rows = _filtered_sessions(request, viewer)
    text = filters.value("q")
    if text is not None:
        exact = list(rows.filter(session_id=text)[:2])
        if len(exact) == 1:
            # A session id pasted into the search opens that session.
            return redirect("session_detail", exact[0].machine.uuid, exact[0].session_id)
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
        "dashboards/sessions.html",
        {
            "filters": filters,
            "page": page,
            "totals": totals,
            "viewer": viewer,
            # A searched menu means more machines than it lists.
            "has_machines": filters.menus["machine"].search
            or bool(filters.menus["machine"].options),
            "csv_query": request.GET.urlencode(),
        },
    )


def _visible_machine(viewer: Viewer, machine_uuid) -> Machine:
    """A machine whose sessions the viewer may see; anyone else's is a 404, like a stranger's
    (a colleague's only for those who see other members, accounts.access)."""
    try:
        return queries.resolve_machine(viewer.user, machine_uuid)
    except (Http404, PermissionDenied, queries.QueryError):
        raise Http404("No such session.") from None


@login_required
def session_detail(request, machine_uuid, session_id: str):
    """One session: where and when it ran, its models and figures, the machine's hours in its
    span, the 5-hour blocks it touched, and the same session id reported by other machines."""
    viewer = Viewer.of(request.user)
    machine = _visible_machine(viewer, machine_uuid)
    item = get_object_or_404(
        SessionUsage.objects.select_related(
            "machine__owner", "machine__subscription", "project__alias_of"
        ),
        machine=machine,
        session_id=session_id,
    )
    start = item.first_activity or item.last_activity
    hours = list(
        HourlyUsage.objects.filter(
            machine=machine,
            hour__gt=start - timedelta(hours=1),
            hour__lte=item.last_activity,
        ).order_by("hour")
    )
    blocks = list(
        queries.block_queryset([machine.subscription])
        .filter(start_time__lte=item.last_activity, end_time__gt=start)
        .order_by("start_time")
    )
    copies = list(
        SessionUsage.objects.select_related("machine__owner")
        .filter(session_id=item.session_id, machine__in=Machine.objects.visible_to(viewer))
        .exclude(pk=item.pk)
        .order_by("machine__name")
    )
    return render(
        request,
        "dashboards/session_detail.html",
        {
            "s": item,
            "viewer": viewer,
            "machine_label": machine_label(machine, viewer),
            "duration": item.last_activity - start,
            "hours": hours,
            "blocks": [{"block": b, "machines": contributions_of(b)} for b in blocks],
            "copies": copies,
            "blocks_query": urlencode(
                {
                    "range": "custom",
                    "since": timezone.localtime(start).date().isoformat(),
                    "until": timezone.localtime(item.last_activity).date().isoformat(),
                    "subscription": str(machine.subscription.public_id),
                }
            ),
        },
    )
