"""The blocks page: running 5-hour blocks and the recent ones, stacked by machine."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.access import Viewer
from dashboards.cards import block_card, contributions_of
from dashboards.charts import blocks_chart
from dashboards.forms import BlockFilters, block_link, with_defaults
from telemetry_site.formatting import SafeCsvWriter
from usage import exports, queries
from usage.models import Machine, Subscription

BLOCK_DAYS = 7
MAX_BLOCKS = 400


def _filtered_blocks(request, viewer: Viewer):
    """The filter form, the subscriptions it picks, its days and the blocks that start in
    them (newest first, at most MAX_BLOCKS)."""
    subscriptions = list(
        Subscription.objects.visible_to(viewer)
        .select_related("owner")
        .order_by("owner__email", "label")
    )
    today = viewer.today()
    data = with_defaults(request.GET, range="7d")
    filters = BlockFilters(data, viewer=viewer, subscriptions=subscriptions)
    chosen = subscriptions
    if (public_id := filters.value("subscription")) is not None:
        chosen = [s for s in subscriptions if str(s.public_id) == public_id]
    elif filters.value("scope") != "team":
        chosen = [s for s in subscriptions if s.owner_id == viewer.user.pk]
    until = filters.value("until") or today
    since = filters.value("since") or until - timedelta(days=BLOCK_DAYS - 1)
    # The dates are team days, like every other dated page.
    start, end = viewer.reporting_team.day_bounds(since, until)
    rows = list(
        queries.block_queryset(chosen)
        .filter(start_time__gte=start, start_time__lt=end)
        .order_by("-start_time")[:MAX_BLOCKS]
    )
    return filters, chosen, since, until, rows


@login_required
def blocks_csv(request):
    """The blocks the filters pick as CSV (usage.exports), times in the viewer's zone."""
    viewer = Viewer.of(request.user)
    _, _, since, until, rows = _filtered_blocks(request, viewer)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="blocks-{since}-{until}.csv"'
    writer = SafeCsvWriter(response)
    for row in exports.block_csv_rows(rows, timezone.get_current_timezone()):
        writer.writerow(row)
    return response


@login_required
def blocks(request):
    viewer = Viewer.of(request.user)
    now = timezone.now()
    filters, chosen, since, until, rows = _filtered_blocks(request, viewer)
    several = len({b.subscription_id for b in rows}) > 1
    active = [block_card(b, now) for b in queries.active_blocks(chosen, now)]
    return render(
        request,
        "dashboards/blocks.html",
        {
            "filters": filters,
            "since": since,
            "until": until,
            "active": active,
            "rows": [
                {"block": b, "machines": contributions_of(b), "link": block_link(b)} for b in rows
            ],
            "truncated": len(rows) == MAX_BLOCKS,
            "chart": blocks_chart(rows, viewer, several),
            "several": several,
            # Only an empty page asks whether any machine reports at all (onboarding hint).
            "has_machines": bool(rows or active) or Machine.objects.visible_to(viewer).exists(),
            "now": now,
            "csv_query": request.GET.urlencode(),
        },
    )
