"""The blocks page: running 5-hour blocks and the recent ones, stacked by machine."""

import uuid
from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.access import Viewer
from dashboards.cards import block_card, contributions_of
from dashboards.charts import blocks_chart
from dashboards.forms import (
    BlockFilters,
    SubscriptionChoice,
    block_link,
    subscription_choices,
    with_defaults,
)
from telemetry_site.formatting import SafeCsvWriter
from usage import exports, queries
from usage.models import Machine, Subscription

BLOCK_DAYS = 7
# The CSV's cap; the page shows BLOCKS_PER_PAGE blocks a page, newest first.
MAX_BLOCKS = 400
BLOCKS_PER_PAGE = 50
# Running blocks shown as cards (the costliest); every one is a row of the table too.
ACTIVE_SHOWN = 6


def _with_page_subscriptions(filters, viewer: Viewer, menu: list[SubscriptionChoice], rows):
    """Add the subscriptions of the blocks on the page to the menu (the viewer's own and the
    chosen one are in it already), by owner email then label like the menu itself.

    A big team's menu would list a thousand subscriptions, so the page offers only these;
    each block's subscription in the table links to its filter, so none is out of reach."""
    field = filters.fields["subscription"]
    known = {s.pk for s in menu}
    extra = [
        SubscriptionChoice(
            b.subscription.pk,
            b.subscription.public_id,
            b.subscription.label,
            b.subscription.owner_id,
            b.subscription.owner.email,
        )
        for b in rows
        if b.subscription_id not in known
    ]
    if not extra:
        return
    shown = sorted({*menu, *extra}, key=lambda s: (s.owner_email, s.label, s.pk))
    field.widget.choices = field.choices[:1] + [
        (str(s.public_id), _menu_label(s, viewer)) for s in shown
    ]


def _menu_label(subscription: SubscriptionChoice, viewer: Viewer) -> str:
    if subscription.owner_id == viewer.user.pk:
        return subscription.label
    return f"{subscription.label} ({subscription.owner_email})"


def _filtered_blocks(request, viewer: Viewer):
    """The filter form, the subscriptions its menu offers (the viewer's own and the one the
    query names, when visible), the ids of those it picks, its days and the blocks that
    start in them (a queryset, newest first)."""
    visible = Subscription.objects.visible_to(viewer)
    today = viewer.today()
    data = with_defaults(request.GET, range="7d")
    # Only a subscription the viewer may see validates; a big team's thousand are not read.
    asked = _as_uuid(data.get("subscription"))
    offered = Q(owner=viewer.user) | Q(public_id=asked) if asked else Q(owner=viewer.user)
    menu = subscription_choices(visible.filter(offered))
    filters = BlockFilters(data, viewer=viewer, subscriptions=menu)
    # The whole team's as a subquery: a big team's thousand ids cost more to send and plan
    # than the blocks cost to read.
    chosen: list[int] | QuerySet
    if (public_id := filters.value("subscription")) is not None:
        chosen = [s.pk for s in menu if str(s.public_id) == public_id]
    elif filters.value("scope") != "team":
        chosen = [s.pk for s in menu if s.owner_id == viewer.user.pk]
    else:
        chosen = visible.values("pk")
    until = filters.value("until") or today
    since = filters.value("since") or until - timedelta(days=BLOCK_DAYS - 1)
    # The dates are team days, like every other dated page.
    start, end = viewer.reporting_team.day_bounds(since, until)
    rows = (
        queries.block_queryset(chosen)
        .filter(start_time__gte=start, start_time__lt=end)
        .order_by("-start_time", "-pk")
    )
    return filters, menu, chosen, since, until, rows


def _as_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


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
    filters, menu, chosen, since, until, blocks = _filtered_blocks(request, viewer)
    page = Paginator(blocks, BLOCKS_PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    several = len({b.subscription_id for b in rows}) > 1
    running, running_count = queries.top_active_blocks(chosen, now, limit=ACTIVE_SHOWN)
    active = [block_card(b, now) for b in running]
    _with_page_subscriptions(filters, viewer, menu, rows)
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
