"""What the pages' cards show, put together from the domain figures: running blocks, usage
summaries and shares, quota bars and pace; and how machines and accounts are named to a viewer.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.access import Viewer
from accounts.models import User
from dashboards.periods import Change, change, previous_period
from telemetry_site.formatting import short_day, window_name
from usage import queries
from usage.analytics import pace, ratelimits
from usage.analytics.blocks import (
    BLOCK_LENGTH,
    BurnRate,
    Projection,
    burn_rate,
    measured_from,
    projection,
)
from usage.models import Block, Machine, Subscription

CHART_DAYS = 30


@dataclass(frozen=True)
class BlockCard:
    """An active block as the pages show it: time gone and left, pace, where it ends up.

    `elapsed` is the block's clock (from its start); the burn rate is over `measured`, from
    the first request (`measured_from`, the start when unknown) to the last, as ccusage's.
    """

    block: Block
    elapsed: timedelta
    remaining: timedelta
    burn: BurnRate | None
    projected: Projection | None
    machines: list[dict]
    measured_from: datetime
    measured: timedelta

    @property
    def elapsed_pct(self) -> float:
        return round(self.elapsed / BLOCK_LENGTH * 100, 1)


def contributions_of(block: Block) -> list[dict]:
    """Each machine's part of a block with its share of the block's tokens."""
    total = block.total_tokens or 0
    return [
        {
            "machine": c.machine,
            "total_tokens": c.total_tokens,
            "cost_usd": c.cost_usd,
            "share": round(c.total_tokens * 100 / total, 1) if total else 0,
        }
        for c in block.contributions.all()
    ]


def block_card(block: Block, now: datetime | None = None) -> BlockCard:
    now = now or timezone.now()
    return BlockCard(
        block=block,
        elapsed=min(max(now - block.start_time, timedelta(0)), BLOCK_LENGTH),
        remaining=max(block.end_time - now, timedelta(0)),
        burn=burn_rate(block),
        projected=projection(block, now),
        machines=contributions_of(block),
        measured_from=measured_from(block),
        measured=max(block.last_activity - measured_from(block), timedelta(0)),
    )


def machine_label(machine: Machine, viewer: Viewer) -> str:
    """A machine's name, with its owner when two people's machines share one page."""
    if machine.owner_id == viewer.user.pk or not viewer.sees_others:
        return machine.name
    return f"{machine.name} ({machine.owner.email})"


def subscription_label(subscription: Subscription, viewer: Viewer) -> str:
    """An account's label, with its owner's name when it is not the viewer's own."""
    if subscription.owner_id == viewer.user.pk:
        return subscription.label
    return f"{subscription.label} ({subscription.owner.display_name})"


@dataclass(frozen=True)
class Figure:
    cost_usd: Decimal
    total_tokens: int


@dataclass(frozen=True)
class UsageSummary:
    """Today, this week (from Monday), this month and a chosen period (month to date unless
    a preset or dates say otherwise), each with its change against the previous period
    (`dashboards.periods.previous_period`: the same days of the previous month for the month
    to date, the month before for last month, else as many days just before), plus the last
    30 days for a chart. Days are the team's reporting days."""

    today: Figure
    week: Figure
    month: Figure
    days: list[dict]
    period: Figure
    since: date
    until: date
    changes: dict[str, Change]

    @property
    def has_usage(self) -> bool:
        return (
            any(d["total_tokens"] or d["cost_usd"] for d in self.days)
            or bool(self.month.total_tokens)
            or bool(self.period.total_tokens)
        )

    def chart(self) -> dict:
        return {
            "labels": [d["label"] for d in self.days],
            "series": [
                {
                    "label": "Cost",
                    "cost": [float(d["cost_usd"]) for d in self.days],
                    "tokens": [d["total_tokens"] for d in self.days],
                }
            ],
        }


def usage_summary(
    user: User,
    today: date,
    period: tuple[date, date] | None = None,
    *,
    preset: str | None = None,
    **query,
) -> UsageSummary:
    """One aggregate_usage call (the read API's function) gives every figure of the summary,
    the previous periods' included. `period` is (since, until), inclusive; month to date
    when None. `preset` is the period's date preset (`dashboards.periods.PRESETS`), which
    picks what the period is compared with (None: as many days just before). `query` is
    aggregate_usage's filters (scope, member, …)."""
    week_start = today - timedelta(days=today.weekday())
    month_start = today.replace(day=1)
    chart_start = today - timedelta(days=CHART_DAYS - 1)
    if period is None:
        period, preset = (month_start, today), "mtd"
    since, until = period
    spans = {
        "today": (today, today),
        "week": (week_start, today),
        "month": (month_start, today),
        "period": (since, until),
    }
    rules = {"today": None, "week": None, "month": "mtd", "period": preset}
    previous = {name: previous_period(*span, rules[name]) for name, span in spans.items()}
    first = min(chart_start, *(start for start, _ in previous.values()))
    last = max(today, until)
    rows = queries.aggregate_usage(user, group_by="day", since=first, until=last, **query)
    by_day = {date.fromisoformat(r["key"]): r for r in rows["results"]}

    def total(start: date, end: date) -> Figure:
        picked = [r for d, r in by_day.items() if start <= d <= end]
        return Figure(
            cost_usd=sum((r["cost_usd"] for r in picked), Decimal(0)),
            total_tokens=sum(r["total_tokens"] for r in picked),
        )

    figures = {name: total(*span) for name, span in spans.items()}
    changes = {
        name: change(figures[name].cost_usd, total(*previous[name]).cost_usd, *previous[name])
        for name in spans
    }
    days = []
    for offset in range(CHART_DAYS):
        day = chart_start + timedelta(days=offset)
        row = by_day.get(day)
        days.append(
            {
                "day": day,
                "label": short_day(day, today),
                "cost_usd": row["cost_usd"] if row else Decimal(0),
                "total_tokens": row["total_tokens"] if row else 0,
            }
        )
    return UsageSummary(
        today=figures["today"],
        week=figures["week"],
        month=figures["month"],
        days=days,
        period=figures["period"],
        since=since,
        until=until,
        changes=changes,
    )


def shares(rows: dict, limit: int = 8) -> list[dict]:
    """aggregate_usage rows with each one's share of the cost; the tail folded into "Other"."""
    total = rows["totals"]["cost_usd"] or Decimal(0)
    if "others" not in rows:
        # Cut it here as queries.top_team_machines cuts its answer; folding a single row into
        # "1 others" would hide it for nothing.
        results = rows["results"]
        cut = limit if len(results) > limit + 1 else len(results)
        rest = results[cut:]
        rows = {
            "results": results[:cut],
            "others": {
                "count": len(rest),
                "cost_usd": sum((r["cost_usd"] for r in rest), Decimal(0)),
                "total_tokens": sum(r["total_tokens"] for r in rest),
            },
        }
    return _shares_of_cut(rows, limit, total)


def _shares_of_cut(rows: dict, limit: int, total: Decimal) -> list[dict]:
    """shares() of an answer holding its first rows (ask for `limit` + 1 of them, so a single
    row left over is shown rather than folded) and an "others" sum of the rest."""
    results = rows["results"]
    picked = results if not rows["others"]["count"] else results[:limit]
    folded = results[len(picked) :]
    others = {
        "count": rows["others"]["count"] + len(folded),
        "cost_usd": rows["others"]["cost_usd"] + sum((r["cost_usd"] for r in folded), Decimal(0)),
        "total_tokens": rows["others"]["total_tokens"] + sum(r["total_tokens"] for r in folded),
    }
    out = [
        {
            "key": r["key"],
            "label": r["label"],
            "cost_usd": r["cost_usd"],
            "total_tokens": r["total_tokens"],
            "share": float(r["cost_usd"] * 100 / total) if total else 0.0,
        }
        for r in picked
    ]
    if others["count"]:
        out.append(
            {
                "key": "",
                "label": f"{others['count']} others",
                "cost_usd": others["cost_usd"],
                "total_tokens": others["total_tokens"],
                "share": float(others["cost_usd"] * 100 / total) if total else 0.0,
            }
        )
    return out


def quota_rows(quota: ratelimits.Quota) -> list[dict]:
    """One bar per quota window, in the order people read them: 5-hour, weekly, per model."""
    return [
        {
            "name": window_name(reading.window),
            "reading": reading,
            "value": min(max(reading.used_pct, 0.0), 100.0),
        }
        for reading in quota.readings
    ]


TREND_ARROWS = {
    pace.Trend.INCREASING: ("↑", "increasing", "trend-up"),
    pace.Trend.DECREASING: ("↓", "decreasing", "trend-down"),
    pace.Trend.STABLE: ("→", "stable", "trend-flat"),
    pace.Trend.UNKNOWN: ("·", "not enough days yet", "trend-flat"),
}


def pace_card(figures: pace.Pace) -> dict:
    arrow, word, css = TREND_ARROWS.get(figures.trend, TREND_ARROWS[pace.Trend.UNKNOWN])
    return {
        "pace": figures,
        "arrow": arrow,
        "word": word,
        "css": css,
        "tooltip": pace.PACE_TOOLTIP,
    }
