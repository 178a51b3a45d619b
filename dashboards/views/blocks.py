"""The blocks page: running 5-hour blocks and the recent ones, stacked by machine."""

from datetime import date, datetime, time, timedelta

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from accounts.access import Viewer
from dashboards.cards import block_card, contributions_of
from dashboards.charts import blocks_chart
from dashboards.forms import BlockFilters, with_defaults
from usage import queries
from usage.models import Machine, Subscription

BLOCK_DAYS = 7
MAX_BLOCKS = 400


def _local_midnight(day: date) -> datetime:
    """Midnight of `day` in the viewer's timezone: the page's dates are the viewer's days."""
    return timezone.make_aware(datetime.combine(day, time.min))


@login_required
def blocks(request):
    viewer = Viewer.of(request.user)
    now = timezone.now()
    subscriptions = list(
        Subscription.objects.visible_to(viewer)
        .select_related("owner")
        .order_by("owner__email", "label")
    )
    today = timezone.localdate()
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
        queries.block_queryset(chosen)
        .filter(
            start_time__gte=_local_midnight(since),
            start_time__lt=_local_midnight(until + timedelta(1)),
        )
        .order_by("-start_time")[:MAX_BLOCKS]
    )
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
            "rows": [{"block": b, "machines": contributions_of(b)} for b in rows],
            "truncated": len(rows) == MAX_BLOCKS,
            "chart": blocks_chart(rows, viewer, several),
            "several": several,
            # Only an empty page asks whether any machine reports at all (onboarding hint).
            "has_machines": bool(rows or active) or Machine.objects.visible_to(viewer).exists(),
            "now": now,
        },
    )
