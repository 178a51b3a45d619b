"""A team's figures as Prometheus metric families, computed from the database at each scrape.

Nothing is kept in the process, so every gunicorn worker answers the same. The query count is
fixed whatever the team's size (about a dozen, plus one per active budget): usage is summed in
four GROUP BY queries (machine, project, model, source), member and team totals are added up
from the machine rows in Python.
"""

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Sum
from django.db.models.functions import Coalesce
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from accounts.access import Viewer
from budgets.models import Budget
from budgets.status import status_of
from usage.analytics.blocks import BLOCK_LENGTH, burn_rate, is_active
from usage.analytics.ratelimits import latest_quotas
from usage.figures import TOKEN_FIELDS
from usage.models import Block, DailyUsage, Machine, Subscription

PREFIX = "claude_telemetry"
# The `type` label of token counters: ccusage's four counts without the `_tokens` suffix.
TOKEN_TYPES = tuple(name.removesuffix("_tokens") for name in TOKEN_FIELDS)
# Series beyond the top N projects or models are summed into one with this label value.
OTHER = "other"


@dataclass
class Figures:
    """Summed token counts (by ccusage's four fields) and cost in USD."""

    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_FIELDS, 0))
    cost_usd: Decimal = Decimal("0")

    def add(self, row: dict) -> None:
        for name in TOKEN_FIELDS:
            self.tokens[name] += int(row[name] or 0)
        self.cost_usd += Decimal(row["cost_usd"] or 0)


def _sums() -> dict:
    return {**{name: Sum(name) for name in TOKEN_FIELDS}, "cost_usd": Sum("cost_usd")}


def _top(rows: dict[tuple, Figures], n: int, other: tuple) -> dict[tuple, Figures]:
    """The `n` costliest rows (cost, then tokens, then key), the rest summed under `other`."""
    ranked = sorted(
        rows.items(), key=lambda kv: (-kv[1].cost_usd, -sum(kv[1].tokens.values()), kv[0])
    )
    kept = dict(ranked[:n])
    if len(ranked) > n:
        rest = Figures()
        for _, figures in ranked[n:]:
            rest.add({**figures.tokens, "cost_usd": figures.cost_usd})
        kept[other] = rest
    return kept


class _Usage:
    """One breakdown's pair of counters: cost in USD and tokens by type."""

    def __init__(self, name: str, what: str, labels: list[str]):
        self.labels = labels
        self.cost = CounterMetricFamily(
            f"{PREFIX}_{name}_cost_usd",
            f"All-time cost in USD of {what}, as ccusage priced it.",
            labels=labels,
        )
        self.tokens = CounterMetricFamily(
            f"{PREFIX}_{name}_tokens",
            f"All-time tokens of {what}, by type (input, output, cache_creation, cache_read).",
            labels=[*labels, "type"],
        )

    def add(self, values: list[str], figures: Figures) -> None:
        self.cost.add_metric(values, float(figures.cost_usd))
        for name, kind in zip(TOKEN_FIELDS, TOKEN_TYPES, strict=True):
            self.tokens.add_metric([*values, kind], figures.tokens[name])

    def families(self) -> list[Metric]:
        return [self.cost, self.tokens]


def usage_families(viewer: Viewer) -> list[Metric]:
    """All-time usage of the viewer's team: team, member, machine, project, model, source.

    Team, project, model and source figures are the team's totals, which every member sees;
    member and machine figures only of members whose figures the viewer may see
    (accounts.access: admins, or everyone when the team shares figures; else their own).
    Projects count aliases as their canonical project, as GET /api/v1/usage/ does.
    """
    team = viewer.team
    if team is None:
        return []
    slug = team.slug
    facts = DailyUsage.objects.filter(machine__team=team).order_by()

    machines = {
        m.pk: m
        for m in Machine.objects.filter(team=team)
        .select_related("owner")
        .only("pk", "name", "uuid", "owner__email")
    }
    by_machine: dict[int, Figures] = defaultdict(Figures)
    for row in facts.values("machine_id").annotate(**_sums()):
        by_machine[row["machine_id"]].add(row)
    team_total = Figures()
    by_member: dict[str, Figures] = defaultdict(Figures)
    machine_usage = _Usage(
        "machine", "a machine's usage", ["team", "member", "machine", "machine_uuid"]
    )
    for machine_id, figures in sorted(by_machine.items(), key=lambda kv: str(machines[kv[0]].uuid)):
        row = {**figures.tokens, "cost_usd": figures.cost_usd}
        team_total.add(row)
        machine = machines[machine_id]
        if not (viewer.sees_others or machine.owner_id == viewer.user.pk):
            continue
        by_member[machine.owner.email].add(row)
        machine_usage.add([slug, machine.owner.email, machine.name, str(machine.uuid)], figures)

    team_usage = _Usage("team", "the whole team's usage", ["team"])
    team_usage.add([slug], team_total)
    member_usage = _Usage("member", "a member's usage on all their machines", ["team", "member"])
    for email in sorted(by_member):
        member_usage.add([slug, email], by_member[email])

    by_project: dict[tuple, Figures] = defaultdict(Figures)
    project_rows = facts.values(
        pid=Coalesce("project__alias_of__public_id", "project__public_id"),
        name=Coalesce("project__alias_of__display_name", "project__display_name"),
    ).annotate(**_sums())
    for row in project_rows:
        by_project[(row["name"], str(row["pid"]))].add(row)
    project_usage = _Usage(
        "project",
        "a project's usage (top projects by cost, then 'other')",
        ["team", "project", "project_id"],
    )
    for (name, pid), figures in _top(
        by_project, settings.METRICS_TOP_PROJECTS, (OTHER, OTHER)
    ).items():
        project_usage.add([slug, name, pid], figures)

    by_model: dict[tuple, Figures] = defaultdict(Figures)
    for row in facts.values("model").annotate(**_sums()):
        by_model[(row["model"],)].add(row)
    model_usage = _Usage(
        "model", "a model's usage (top models by cost, then 'other')", ["team", "model"]
    )
    for (model,), figures in _top(by_model, settings.METRICS_TOP_MODELS, (OTHER,)).items():
        model_usage.add([slug, model], figures)

    source_usage = _Usage("source", "one agent's usage (claude-code, codex, …)", ["team", "source"])
    for row in sorted(facts.values("source").annotate(**_sums()), key=lambda r: r["source"]):
        figures = Figures()
        figures.add(row)
        source_usage.add([slug, row["source"]], figures)

    return [
        family
        for usage in (
            team_usage,
            member_usage,
            machine_usage,
            project_usage,
            model_usage,
            source_usage,
        )
        for family in usage.families()
    ]


def subscription_families(viewer: Viewer, now: datetime) -> list[Metric]:
    """Running 5-hour block and official quota of each subscription the viewer may see.

    Every visible subscription gets a block series (0 without a running block), so a panel
    shows idle accounts too; quota series only for windows with a current (not yet reset)
    reading, because a reading whose window reset says nothing about the new window.
    """
    subscriptions = list(
        Subscription.objects.visible_to(viewer).select_related("owner").order_by("pk")
    )
    labels = ["team", "member", "subscription", "subscription_id"]
    slug = viewer.team.slug if viewer.team else ""

    def values(sub: Subscription) -> list[str]:
        return [slug, sub.owner.email, sub.label, str(sub.public_id)]

    running = {
        block.subscription_id: block
        for block in Block.objects.filter(
            subscription__in=[s.pk for s in subscriptions],
            end_time__gt=now,
            last_activity__gt=now - BLOCK_LENGTH,
        ).order_by("start_time")
        if is_active(block, now)
    }
    active = GaugeMetricFamily(
        f"{PREFIX}_block_active",
        "1 while the subscription has a running 5-hour block.",
        labels=labels,
    )
    tokens = GaugeMetricFamily(
        f"{PREFIX}_block_tokens", "Tokens of the running 5-hour block (0 when none).", labels=labels
    )
    cost = GaugeMetricFamily(
        f"{PREFIX}_block_cost_usd", "Cost in USD of the running 5-hour block.", labels=labels
    )
    tokens_rate = GaugeMetricFamily(
        f"{PREFIX}_block_burn_rate_tokens_per_minute",
        "Tokens per minute from the running block's first entry to its last activity.",
        labels=labels,
    )
    cost_rate = GaugeMetricFamily(
        f"{PREFIX}_block_burn_rate_usd_per_hour",
        "USD per hour from the running block's first entry to its last activity.",
        labels=labels,
    )
    remaining = GaugeMetricFamily(
        f"{PREFIX}_block_remaining_seconds",
        "Seconds until the running block ends (0 when none).",
        labels=labels,
    )
    for sub in subscriptions:
        block = running.get(sub.pk)
        rate = burn_rate(block) if block is not None else None
        active.add_metric(values(sub), 1 if block else 0)
        tokens.add_metric(values(sub), block.total_tokens if block else 0)
        cost.add_metric(values(sub), float(block.cost_usd) if block else 0.0)
        tokens_rate.add_metric(values(sub), rate.tokens_per_minute if rate else 0.0)
        cost_rate.add_metric(values(sub), rate.cost_per_hour if rate else 0.0)
        left = (block.end_time - now).total_seconds() if block else 0.0
        remaining.add_metric(values(sub), max(0.0, left))

    utilization = GaugeMetricFamily(
        f"{PREFIX}_quota_utilization_ratio",
        "Official quota used in the current window, 0 to 1, as Claude Code last reported it.",
        labels=[*labels, "window"],
    )
    reset = GaugeMetricFamily(
        f"{PREFIX}_quota_reset_seconds",
        "Seconds until the quota window resets.",
        labels=[*labels, "window"],
    )
    quotas = latest_quotas(subscriptions, now)
    for sub in subscriptions:
        for reading in quotas[sub.pk].readings:
            if reading.stale:
                continue
            utilization.add_metric([*values(sub), reading.window], reading.used_pct / 100)
            if reading.resets_at is not None:
                seconds = max(0.0, (reading.resets_at - now).total_seconds())
                reset.add_metric([*values(sub), reading.window], seconds)
    return [active, tokens, cost, tokens_rate, cost_rate, remaining, utilization, reset]


def budget_families(viewer: Viewer, now: datetime) -> list[Metric]:
    """Spend in the current period of each active budget the viewer may see (budgets.status)."""
    labels = ["team", "budget", "budget_id", "scope", "period"]
    spent = GaugeMetricFamily(
        f"{PREFIX}_budget_spent_usd", "Spend in USD in the budget's current period.", labels=labels
    )
    amount = GaugeMetricFamily(
        f"{PREFIX}_budget_amount_usd", "The budget's amount in USD per period.", labels=labels
    )
    used = GaugeMetricFamily(
        f"{PREFIX}_budget_used_ratio",
        "Spend divided by the amount (1 = the whole budget; past 1 = over).",
        labels=labels,
    )
    budgets = Budget.objects.visible_to(viewer.user).filter(active=True).order_by("name", "pk")
    for budget in budgets:
        status = status_of(budget, now, with_forecast=False)
        values = [budget.team.slug, budget.name, str(budget.public_id), budget.scope, budget.period]
        spent.add_metric(values, float(status.spent))
        amount.add_metric(values, float(status.amount))
        used.add_metric(values, float(status.spent / status.amount) if status.amount else 0.0)
    return [spent, amount, used]


def machine_families(viewer: Viewer, now: datetime) -> list[Metric]:
    """Seconds since each visible, not retired machine last synced (never-seen ones left out)."""
    age = GaugeMetricFamily(
        f"{PREFIX}_machine_last_sync_age_seconds",
        "Seconds since the machine's agent last synced.",
        labels=["team", "member", "machine", "machine_uuid"],
    )
    machines = (
        Machine.objects.visible_to(viewer)
        .filter(retired_at__isnull=True, last_seen_at__isnull=False)
        .select_related("owner", "team")
        .order_by("uuid")
    )
    for machine in machines:
        seconds = max(0.0, (now - machine.last_seen_at).total_seconds())
        age.add_metric(
            [machine.team.slug, machine.owner.email, machine.name, str(machine.uuid)], seconds
        )
    return [age]


class TeamCollector:
    """prometheus_client collector of everything a viewer may see of their team, at `now`."""

    def __init__(self, viewer: Viewer, now: datetime):
        self.viewer = viewer
        self.now = now

    def collect(self) -> Iterator[Metric]:
        viewer = self.viewer
        if viewer.team is None:
            return
        yield from usage_families(viewer)
        yield from subscription_families(viewer, self.now)
        yield from budget_families(viewer, self.now)
        yield from machine_families(viewer, self.now)
