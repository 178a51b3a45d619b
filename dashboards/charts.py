"""Chart data for Chart.js (handed to pages through json_script): plain lists, oldest first."""

from django.utils import timezone

from accounts.access import Viewer
from dashboards.cards import machine_label, subscription_label
from telemetry_site.formatting import short_day
from usage.models import Block


def blocks_chart(blocks: list[Block], viewer: Viewer, several_subscriptions: bool) -> dict:
    """Chart data: one bar per block (oldest first), stacked by contributing machine."""
    ordered = sorted(blocks, key=lambda b: b.start_time)
    today = timezone.localdate()
    labels = []
    for block in ordered:
        local = timezone.localtime(block.start_time)
        label = f"{short_day(local.date(), today)} {local:%H:%M}"
        if several_subscriptions:
            label = f"{label} · {subscription_label(block.subscription, viewer)}"
        labels.append(label)
    series: dict[int, dict] = {}
    for index, block in enumerate(ordered):
        for contribution in block.contributions.all():
            entry = series.setdefault(
                contribution.machine_id,
                {
                    "label": machine_label(contribution.machine, viewer),
                    "cost": [0.0] * len(ordered),
                    "tokens": [0] * len(ordered),
                },
            )
            entry["cost"][index] = round(float(contribution.cost_usd), 4)
            entry["tokens"][index] = contribution.total_tokens
    return {
        "labels": labels,
        "series": sorted(series.values(), key=lambda s: s["label"]),
        "overlap": [b.overlap for b in ordered],
        "limit_hit": [b.limit_hit_at is not None for b in ordered],
    }
