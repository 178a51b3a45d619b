"""The blocks page: running 5-hour blocks and the recent ones, stacked by machine."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
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
# The CSV's cap; the page shows BLOCKS_PER_PAGE blocks a page, newest first.
MAX_BLOCKS = 400
BLOCKS_PER_PAGE = 50
# Running blocks shown as cards (the costliest); every one is a row of the table too.
ACTIVE_SHOWN = 6


def _short_menu(filters, viewer: Viewer, subscriptions, rows) -> None:
    """Shorten the subscription menu a big team would render with a thousand options: the
    viewer's own, the chosen one and those of the blocks on the page, in the menu's order.
    Any visible subscription still validates (the field keeps every choice), and each
    block's subscription in the table links to its filter, so none is out of reach."""
    field = filters.fields["subscription"]
    chosen = filters.value("subscription")
    keep = {str(b.subscription.public_id) for b in rows} | {chosen or ""}
    own = {str(s.public_id) for s in subscriptions if s.owner_id == viewer.user.pk}
    field.widget.choices = [
        (value, label) for value, label in field.choices if value in keep or value in own
    ]


def _filtered_blocks(request, viewer: Viewer):
    """The filter form, the visible subscriptions, those it picks, its days and the blocks
    that start in them (a queryset, newest first)."""
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
    rows = (
        queries.block_queryset(chosen)
        .filter(start_time__gte=start, start_time__lt=end)
        .order_by("-start_time", "-pk")
    )
    return filters, subscriptions, chosen, since, until, rows


@login_required
def blocks_csv(request):
    """The blocks the filters pick as CSV (usage.exports), times in the viewer's zone."""
    viewer = Viewer.of(request.user)
    _, _, _, since, until, blocks = _filtered_blocks(request, viewer)
    rows = list(blocks[:MAX_BLOCKS])
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
    filters, subscriptions, chosen, since, until, blocks = _filtered_blocks(request, viewer)
    page = Paginator(blocks, BLOCKS_PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    several = len({b.subscription_id for b in rows}) > 1
    running, running_count = queries.top_active_blocks(chosen, now, limit=ACTIVE_SHOWN)
    active = [block_card(b, now) for b in running]
    _short_menu(filters, viewer, subscriptions, rows)
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
            "page": page,
            "active_count": running_count,
            "chart": blocks_chart(rows, viewer, several),
            "several": several,
            # Only an empty page asks whether any machine reports at all (onboarding hint).
            "has_machines": bool(rows or active) or Machine.objects.visible_to(viewer).exists(),
            "now": now,
            "csv_query": request.GET.urlencode(),
        },
    )
