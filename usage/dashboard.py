"""What the dashboard pages show and to whom: scoping by viewer, filter forms, machine status.

Figures come from the domain modules (usage.queries, usage.blocks, usage.ratelimits, usage.pace,
usage.planvalue, budgets.status); this module only decides which rows a viewer may see and
puts them together for a page.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django import forms
from django.db.models import Prefetch, Q, QuerySet
from django.http import QueryDict
from django.utils import timezone

from accounts import access
from accounts.models import Team, User
from usage import pace, queries, ratelimits
from usage.blocks import BLOCK_LENGTH, BurnRate, Projection, burn_rate, is_active, projection
from usage.models import Block, BlockContribution, Machine, Source, Subscription

ONLINE_WITHIN = timedelta(minutes=20)
IDLE_WITHIN = timedelta(days=1)


@dataclass(frozen=True)
class Viewer:
    """The logged-in user with what access.py says they may see, computed once per request."""

    user: User
    team: Team | None
    is_admin: bool
    sees_others: bool

    @classmethod
    def of(cls, user: User) -> "Viewer":
        membership = access.membership_of(user)
        return cls(
            user=user,
            team=membership.team if membership else None,
            is_admin=bool(membership and membership.is_admin),
            sees_others=access.sees_other_members(user),
        )

    def owner_q(self, prefix: str = "") -> Q:
        """Rows owned by someone whose figures this viewer may see (`prefix` leads to the owner)."""
        if self.sees_others and self.team is not None:
            return Q(**{f"{prefix}owner__membership__team": self.team})
        return Q(**{f"{prefix}owner": self.user})

    def may_manage(self, machine: Machine) -> bool:
        """Rename, move or retire: the machine's owner, or an admin of its owner's team."""
        if machine.owner_id == self.user.pk:
            return True
        return self.is_admin and self.team is not None and machine.team_id == self.team.pk

    def visible_members(self) -> QuerySet[User]:
        if self.sees_others and self.team is not None:
            return User.objects.filter(membership__team=self.team).order_by("email")
        return User.objects.filter(pk=self.user.pk)


def visible_machines(viewer: Viewer) -> QuerySet[Machine]:
    """The same machines usage.queries.machines_for lists for the team scope."""
    if viewer.sees_others and viewer.team is not None:
        return Machine.objects.filter(team=viewer.team)
    return Machine.objects.filter(owner=viewer.user)


def visible_subscriptions(viewer: Viewer) -> QuerySet[Subscription]:
    return Subscription.objects.filter(viewer.owner_q())


def local_today() -> date:
    """Today in the active (viewer's) timezone."""
    return timezone.localdate()


def machine_status(machine: Machine, now: datetime | None = None) -> str:
    """online (seen under 20 minutes ago), idle (under a day), offline, or retired."""
    if machine.retired_at is not None:
        return "retired"
    if machine.last_seen_at is None:
        return "offline"
    age = (now or timezone.now()) - machine.last_seen_at
    if age < ONLINE_WITHIN:
        return "online"
    if age < IDLE_WITHIN:
        return "idle"
    return "offline"


SOURCE_CHOICES = [("", "All sources"), *Source.choices]


class FilterForm(forms.Form):
    """A GET filter form: a bad value becomes an error shown on the page, and is then ignored."""

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return cleaned

    def value(self, name: str):
        """The cleaned value of a field, or None when it is empty or invalid."""
        if not self.is_bound:
            return None
        self.is_valid()
        if name in self.errors:
            return None
        return self.cleaned_data.get(name) or None


class DashboardFilters(FilterForm):
    """The filters shared by the explorer and the sessions list; options are what the viewer sees.

    Invalid values become form errors shown above the results; the filter is then ignored, so a
    hand-edited URL never produces an error page.
    """

    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    machine = forms.ChoiceField(required=False)
    project = forms.ChoiceField(required=False)
    scope = forms.ChoiceField(required=False)
    member = forms.ChoiceField(required=False)
    source = forms.ChoiceField(required=False, choices=SOURCE_CHOICES)

    def __init__(self, data, *, viewer: Viewer, machines, projects, members, **kwargs):
        super().__init__(data, **kwargs)
        self.viewer = viewer
        self.fields["machine"].choices = [("", "All machines")] + [
            (str(m.uuid), m.name if m.owner_id == viewer.user.pk else f"{m.name} ({m.owner.email})")
            for m in machines
        ]
        self.fields["project"].choices = [("", "All projects")] + [
            (str(p.public_id), p.display_name) for p in projects
        ]
        if viewer.sees_others:
            self.fields["scope"].choices = [("me", "Only mine"), ("team", "Whole team")]
            self.fields["member"].choices = [("", "Everyone")] + [
                (str(u.public_id), u.email) for u in members
            ]
        else:
            del self.fields["member"]
            del self.fields["scope"]


def with_defaults(query: QueryDict, **defaults: str) -> QueryDict:
    """The query string with defaults for the parameters it leaves empty, for a bound form."""
    data = query.copy()
    for name, value in defaults.items():
        if not data.get(name):
            data[name] = value
    return data


def day_bounds(day: date) -> datetime:
    """Midnight of `day` in the active timezone, as an aware datetime."""
    return timezone.make_aware(datetime.combine(day, datetime.min.time()))


# --- Blocks ------------------------------------------------------------------------------------


def block_queryset(subscriptions):
    """Blocks with their subscription and per-machine contributions, in three queries."""
    contributions = BlockContribution.objects.select_related("machine__owner").order_by(
        "-total_tokens", "machine__name"
    )
    return (
        Block.objects.filter(subscription__in=subscriptions)
        .select_related("subscription__owner")
        .prefetch_related(Prefetch("contributions", queryset=contributions))
    )


def active_blocks(subscriptions, now: datetime | None = None) -> list[Block]:
    """Blocks running now; the stored mark can lag the beat refresh, so time decides."""
    now = now or timezone.now()
    candidates = block_queryset(subscriptions).filter(
        end_time__gt=now, last_activity__gt=now - BLOCK_LENGTH
    )
    return [b for b in candidates.order_by("subscription__label") if is_active(b, now)]


@dataclass(frozen=True)
class BlockCard:
    """An active block as the pages show it: time gone and left, pace, where it ends up."""

    block: Block
    elapsed: timedelta
    remaining: timedelta
    burn: BurnRate | None
    projected: Projection | None
    machines: list[dict]

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


def blocks_chart(blocks: list[Block], viewer: Viewer, several_subscriptions: bool) -> dict:
    """Chart data: one bar per block (oldest first), stacked by contributing machine."""
    ordered = sorted(blocks, key=lambda b: b.start_time)
    labels = []
    for block in ordered:
        local = timezone.localtime(block.start_time)
        label = local.strftime("%b %-d %H:%M")
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


class BlockFilters(FilterForm):
    """Blocks page filters: a date range (block start, viewer's days) and one subscription."""

    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    scope = forms.ChoiceField(required=False)
    subscription = forms.ChoiceField(required=False)

    def __init__(self, data, *, viewer: Viewer, subscriptions, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["subscription"].choices = [("", "All subscriptions")] + [
            (
                str(s.public_id),
                s.label if s.owner_id == viewer.user.pk else f"{s.label} ({s.owner.email})",
            )
            for s in subscriptions
        ]
        if viewer.sees_others:
            self.fields["scope"].choices = [("me", "Only mine"), ("team", "Whole team")]
        else:
            del self.fields["scope"]


# --- Usage explorer ----------------------------------------------------------------------------

PERIODS = [("day", "Day"), ("week", "Week"), ("month", "Month")]
SPLITS = [
    ("", "Nothing"),
    ("project", "Project"),
    ("model", "Model"),
    ("machine", "Machine"),
    ("member", "Member"),
    ("source", "Source"),
]
# Splits that show individual members' figures, which only some viewers may see for the team.
INDIVIDUAL_SPLITS = ("machine", "member")
EXPLORER_DAYS = 30


class ExplorerFilters(DashboardFilters):
    """The explorer's filters: those of the sessions list plus period, split and model.

    Everyone in a team may ask for the whole team's totals (scope=team); breaking the team down
    by machine or member needs the right to see other members (accounts.access).
    """

    period = forms.ChoiceField(required=False, choices=PERIODS, label="Over time by")
    split = forms.ChoiceField(required=False, choices=SPLITS, label="Split by")
    model = forms.ChoiceField(required=False)

    field_order = [
        "since",
        "until",
        "period",
        "split",
        "scope",
        "member",
        "machine",
        "project",
        "model",
        "source",
    ]

    def __init__(self, data, *, viewer: Viewer, models: list[str], **kwargs):
        super().__init__(data, viewer=viewer, **kwargs)
        self.fields["model"].choices = [("", "All models")] + [(m, m) for m in models]
        if viewer.team is not None and "scope" not in self.fields:
            self.fields["scope"] = forms.ChoiceField(
                required=False, choices=[("me", "Only mine"), ("team", "Whole team (totals)")]
            )
            self.order_fields(self.field_order)
        if not viewer.sees_others:
            self.fields["split"].choices = [c for c in SPLITS if c[0] != "member"]

    def clean(self):
        cleaned = super().clean()
        split = cleaned.get("split")
        if (
            split in INDIVIDUAL_SPLITS
            and cleaned.get("scope") == "team"
            and not self.viewer.sees_others
            and not cleaned.get("machine")
        ):
            self.add_error("split", "Only team admins see the team split by machine or member.")
        return cleaned

    def query(self, today: date) -> dict:
        """aggregate_usage's keyword arguments (besides group_by) for these filters."""
        until = self.value("until") or today
        since = self.value("since") or until - timedelta(days=EXPLORER_DAYS - 1)
        params = {"since": since, "until": until, "scope": self.value("scope") or "me"}
        for name in ("machine", "project", "model", "member", "source"):
            if (value := self.value(name)) is not None:
                params[name] = value
        return params

    def machine_labels(self) -> dict[str, str]:
        """Machine UUID → the name the menu shows (with the owner for someone else's)."""
        return {key: label for key, label in self.fields["machine"].choices if key}

    @property
    def group_by(self) -> str:
        """The table's rows: the split when there is one, else the periods."""
        return self.value("split") or self.value("period") or "day"


# --- Overview and team -------------------------------------------------------------------------

CHART_DAYS = 30


def reporting_today(viewer: Viewer) -> date:
    """Today in the team's reporting timezone: the calendar usage days are stored in."""
    return pace.team_today(viewer.team) if viewer.team is not None else timezone.localdate()


@dataclass(frozen=True)
class Figure:
    cost_usd: Decimal
    total_tokens: int


@dataclass(frozen=True)
class UsageSummary:
    """Today, this week (from Monday) and this month, plus the last 30 days for a chart."""

    today: Figure
    week: Figure
    month: Figure
    days: list[dict]

    @property
    def has_usage(self) -> bool:
        return any(d["total_tokens"] or d["cost_usd"] for d in self.days) or bool(
            self.month.total_tokens
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


def usage_summary(user: User, today: date, **query) -> UsageSummary:
    """One aggregate_usage call (the read API's function) gives every figure of the summary."""
    week_start = today - timedelta(days=today.weekday())
    month_start = today.replace(day=1)
    chart_start = today - timedelta(days=CHART_DAYS - 1)
    first = min(week_start, month_start, chart_start)
    rows = queries.aggregate_usage(user, group_by="day", since=first, until=today, **query)
    by_day = {date.fromisoformat(r["key"]): r for r in rows["results"]}

    def total(start: date) -> Figure:
        picked = [r for d, r in by_day.items() if start <= d <= today]
        return Figure(
            cost_usd=sum((r["cost_usd"] for r in picked), Decimal(0)),
            total_tokens=sum(r["total_tokens"] for r in picked),
        )

    days = []
    for offset in range(CHART_DAYS):
        day = chart_start + timedelta(days=offset)
        row = by_day.get(day)
        days.append(
            {
                "day": day,
                "label": day.strftime("%b %-d"),
                "cost_usd": row["cost_usd"] if row else Decimal(0),
                "total_tokens": row["total_tokens"] if row else 0,
            }
        )
    return UsageSummary(
        today=total(today), week=total(week_start), month=total(month_start), days=days
    )


def shares(rows: dict, limit: int = 8) -> list[dict]:
    """aggregate_usage rows with each one's share of the cost; the tail folded into "Other"."""
    total = rows["totals"]["cost_usd"] or Decimal(0)
    results = rows["results"]
    # Folding a single row into "1 others" would hide it for nothing.
    cut = limit if len(results) > limit + 1 else len(results)
    picked, rest = results[:cut], results[cut:]
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
    if rest:
        cost = sum((r["cost_usd"] for r in rest), Decimal(0))
        out.append(
            {
                "key": "",
                "label": f"{len(rest)} others",
                "cost_usd": cost,
                "total_tokens": sum(r["total_tokens"] for r in rest),
                "share": float(cost * 100 / total) if total else 0.0,
            }
        )
    return out


WINDOW_NAMES = {"five_hour": "5-hour window", "seven_day": "Weekly (7-day)"}


def window_name(window: str) -> str:
    """`seven_day_opus` → `Weekly (7-day), Opus`."""
    if window in WINDOW_NAMES:
        return WINDOW_NAMES[window]
    if window.startswith("seven_day_"):
        return f"Weekly (7-day), {window.removeprefix('seven_day_').replace('_', ' ').title()}"
    return window.replace("_", " ").capitalize()


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
