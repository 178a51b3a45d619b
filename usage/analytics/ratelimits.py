"""The official quota per subscription, from statusline snapshots, and the hours lost to limits.

Every machine of an account sees the same quota, so readings are merged by subscription:
the latest capture wins (never a sum over machines). A reading past its reset time is stale:
the window has rolled over since, and the figure is shown as such, never as current.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import OuterRef, Subquery
from django.utils import timezone

from usage.models import HourlyUsage, RateLimitSnapshot, Subscription

FIVE_HOUR = "five_hour"
SEVEN_DAY = "seven_day"
WINDOW_LENGTH = {FIVE_HOUR: timedelta(hours=5), SEVEN_DAY: timedelta(days=7)}
# The snapshot fields a Reading is made of.
READING_FIELDS = (
    "subscription_id",
    "machine_id",
    "captured_at",
    "five_hour_used_pct",
    "five_hour_resets_at",
    "seven_day_used_pct",
    "seven_day_resets_at",
    "extra_windows",
)


@dataclass(frozen=True)
class Reading:
    """One window's utilisation as last captured for a subscription."""

    window: str
    used_pct: float
    resets_at: datetime | None
    captured_at: datetime
    machine_id: int
    machine_name: str
    stale: bool


@dataclass
class Quota:
    subscription: Subscription
    five_hour: Reading | None = None
    seven_day: Reading | None = None
    # Per-model weekly windows (e.g. seven_day_opus) when Claude Code reports them.
    windows: dict[str, Reading] = field(default_factory=dict)

    @property
    def readings(self) -> list[Reading]:
        main = [r for r in (self.five_hour, self.seven_day) if r is not None]
        return main + list(self.windows.values())

    @property
    def closeness(self) -> float:
        """The highest current (non-stale) utilisation: how close this account is to a limit."""
        return max((r.used_pct for r in self.readings if not r.stale), default=0.0)

    @property
    def next_reset(self) -> datetime | None:
        resets = [r.resets_at for r in self.readings if not r.stale and r.resets_at]
        return min(resets, default=None)


def parse_reset(value) -> datetime | None:
    """A reset time as stored in extra windows: ISO 8601 text or unix seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=ZoneInfo("UTC"))
    if isinstance(value, str):
        try:
            return datetime.fromtimestamp(float(value), tz=ZoneInfo("UTC"))
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=ZoneInfo("UTC"))
    return None


def _is_stale(window: str, resets_at: datetime | None, captured_at: datetime, now) -> bool:
    if resets_at is not None:
        return resets_at <= now
    # Without a reset time, a reading older than its window cannot describe the current one.
    length = WINDOW_LENGTH.get(window, WINDOW_LENGTH[SEVEN_DAY])
    return captured_at + length <= now


def _reading(snapshot: RateLimitSnapshot, window: str, now) -> Reading | None:
    if window in (FIVE_HOUR, SEVEN_DAY):
        pct = getattr(snapshot, f"{window}_used_pct")
        resets_at = getattr(snapshot, f"{window}_resets_at")
    else:
        data = (snapshot.extra_windows or {}).get(window)
        if not isinstance(data, dict):
            return None
        pct = data.get("used_percentage")
        resets_at = parse_reset(data.get("resets_at"))
    if pct is None:
        return None
    try:
        used = float(pct)
    except (TypeError, ValueError):
        return None
    return Reading(
        window=window,
        used_pct=used,
        resets_at=resets_at,
        captured_at=snapshot.captured_at,
        machine_id=snapshot.machine_id,
        machine_name=snapshot.machine.name,
        stale=_is_stale(window, resets_at, snapshot.captured_at, now),
    )


def latest_quotas(subscriptions, now: datetime | None = None) -> dict[int, Quota]:
    """Latest readings for many subscriptions in three queries (headroom lists use this)."""
    now = now or timezone.now()
    subs = list(subscriptions)
    if not subs:
        return {}
    snapshots = RateLimitSnapshot.objects.filter(subscription=OuterRef("pk")).order_by(
        "-captured_at", "-pk"
    )
    annotated = Subscription.objects.filter(pk__in=[s.pk for s in subs]).annotate(
        five_pk=Subquery(snapshots.filter(five_hour_used_pct__isnull=False).values("pk")[:1]),
        seven_pk=Subquery(snapshots.filter(seven_day_used_pct__isnull=False).values("pk")[:1]),
        extra_pk=Subquery(snapshots.exclude(extra_windows={}).values("pk")[:1]),
    )
    wanted = {row.pk: (row.five_pk, row.seven_pk, row.extra_pk) for row in annotated}
    pks = {pk for triple in wanted.values() for pk in triple if pk}
    # Only what a reading shows: a big team's machines have many timestamps to parse.
    by_pk = (
        RateLimitSnapshot.objects.select_related("machine")
        .only(*READING_FIELDS, "machine__name")
        .in_bulk(pks)
    )
    quotas = {}
    for sub in subs:
        five_pk, seven_pk, extra_pk = wanted.get(sub.pk, (None, None, None))
        quota = Quota(subscription=sub)
        if five_pk:
            quota.five_hour = _reading(by_pk[five_pk], FIVE_HOUR, now)
        if seven_pk:
            quota.seven_day = _reading(by_pk[seven_pk], SEVEN_DAY, now)
        if extra_pk:
            snapshot = by_pk[extra_pk]
            for name in sorted(snapshot.extra_windows or {}):
                reading = _reading(snapshot, name, now)
                if reading is not None:
                    quota.windows[name] = reading
        quotas[sub.pk] = quota
    return quotas


def latest_quota(subscription: Subscription, now: datetime | None = None) -> Quota:
    return latest_quotas([subscription], now)[subscription.pk]


@dataclass(frozen=True)
class HistoryPoint:
    captured_at: datetime
    five_hour_used_pct: float | None
    seven_day_used_pct: float | None
    machine_name: str


def utilization_history(
    subscription: Subscription, since: datetime, until: datetime | None = None
) -> list[HistoryPoint]:
    """Every captured reading of one subscription in time order, for charts."""
    qs = RateLimitSnapshot.objects.filter(subscription=subscription, captured_at__gte=since)
    if until is not None:
        qs = qs.filter(captured_at__lt=until)
    return [
        HistoryPoint(
            captured_at=s.captured_at,
            five_hour_used_pct=float(s.five_hour_used_pct)
            if s.five_hour_used_pct is not None
            else None,
            seven_day_used_pct=float(s.seven_day_used_pct)
            if s.seven_day_used_pct is not None
            else None,
            machine_name=s.machine.name,
        )
        for s in qs.select_related("machine").order_by("captured_at", "pk")
    ]


@dataclass(frozen=True)
class HeadroomRow:
    member_id: int
    member_email: str
    member_name: str
    quota: Quota

    @property
    def subscription(self) -> Subscription:
        return self.quota.subscription


def team_headroom(team, now: datetime | None = None) -> list[HeadroomRow]:
    """Each member's subscriptions with current use, closest to a limit first (for admins)."""
    now = now or timezone.now()
    return headroom_rows(headroom_ranking(team, now), now)


def _closeness_and_reset(values: dict, now: datetime) -> tuple[float, datetime | None, int]:
    """(closeness, next reset, readings) of one subscription from its latest snapshots' raw
    fields, by the same rules as Quota.closeness, Quota.next_reset and Quota.readings (stale
    readings count for neither of the first two, but are readings)."""
    used: list[float] = []
    resets: list[datetime] = []
    readings = 0

    def take(window: str, pct, resets_at, captured_at) -> None:
        nonlocal readings
        if pct is None:
            return
        try:
            value = float(pct)
        except (TypeError, ValueError):
            return
        readings += 1
        if _is_stale(window, resets_at, captured_at, now):
            return
        used.append(value)
        if resets_at:
            resets.append(resets_at)

    if values["five_pct"] is not None:
        take(FIVE_HOUR, values["five_pct"], values["five_resets"], values["five_at"])
    if values["seven_pct"] is not None:
        take(SEVEN_DAY, values["seven_pct"], values["seven_resets"], values["seven_at"])
    for name, data in sorted((values["extra"] or {}).items()):
        if isinstance(data, dict):
            resets_at = parse_reset(data.get("resets_at"))
            take(name, data.get("used_percentage"), resets_at, values["extra_at"])
    return max(used, default=0.0), min(resets, default=None), readings


def headroom_ranking(
    team, now: datetime | None = None, *, readings_only: bool = False
) -> list[int]:
    """The team's subscription ids, closest to a limit first; among equals the one whose
    window resets last (it hurts longest), then by owner email and label.

    Reads only the few snapshot fields the order needs (one query, no model instances), so a
    1,000-member team is ranked in a few milliseconds and a page builds only its own rows
    with `headroom_rows`. `readings_only` leaves out accounts without any quota reading."""
    now = now or timezone.now()
    snapshots = RateLimitSnapshot.objects.filter(subscription=OuterRef("pk")).order_by(
        "-captured_at", "-pk"
    )
    five = snapshots.filter(five_hour_used_pct__isnull=False)
    seven = snapshots.filter(seven_day_used_pct__isnull=False)
    extra = snapshots.exclude(extra_windows={})
    rows = (
        Subscription.objects.filter(owner__membership__team=team)
        .annotate(
            five_pct=Subquery(five.values("five_hour_used_pct")[:1]),
            five_resets=Subquery(five.values("five_hour_resets_at")[:1]),
            five_at=Subquery(five.values("captured_at")[:1]),
            seven_pct=Subquery(seven.values("seven_day_used_pct")[:1]),
            seven_resets=Subquery(seven.values("seven_day_resets_at")[:1]),
            seven_at=Subquery(seven.values("captured_at")[:1]),
            extra=Subquery(extra.values("extra_windows")[:1]),
            extra_at=Subquery(extra.values("captured_at")[:1]),
        )
        .values(
            "pk",
            "label",
            "owner__email",
            "five_pct",
            "five_resets",
            "five_at",
            "seven_pct",
            "seven_resets",
            "seven_at",
            "extra",
            "extra_at",
        )
    )
    far_future = (now + timedelta(days=3650)).timestamp()
    keyed = []
    for values in rows:
        closeness, next_reset, readings = _closeness_and_reset(values, now)
        if readings_only and not readings:
            continue
        reset_key = next_reset.timestamp() if next_reset else far_future
        keyed.append(
            (-closeness, -reset_key, values["owner__email"], values["label"], values["pk"])
        )
    keyed.sort()
    return [key[-1] for key in keyed]


def headroom_rows(subscription_ids: list[int], now: datetime | None = None) -> list[HeadroomRow]:
    """HeadroomRows of these subscriptions, in the order given (a page of `headroom_ranking`);
    ids that no longer exist are left out."""
    now = now or timezone.now()
    subs = Subscription.objects.filter(pk__in=subscription_ids).select_related("owner")
    quotas = latest_quotas(subs, now)
    return [
        HeadroomRow(
            member_id=q.subscription.owner_id,
            member_email=q.subscription.owner.email,
            member_name=q.subscription.owner.display_name,
            quota=q,
        )
        for q in (quotas[pk] for pk in subscription_ids if pk in quotas)
    ]


@dataclass
class LimitHitWeek:
    week_start: date
    subscription_id: int
    member_id: int
    hours: int = 0
    minutes_lost: int = 0


def limit_hits(
    hourly=None,
    *,
    tz: str = "UTC",
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[LimitHitWeek]:
    """Hours with a usage-limit marker, per subscription, member and week (weeks start Monday).

    A limit is per account, so the same hour seen by two machines counts once. Time lost is
    from the last activity of the limited hour to the reset ccusage reported, per distinct
    reset time. `hourly` narrows the facts (e.g. a team's or a member's machines).
    """
    qs = HourlyUsage.objects.all() if hourly is None else hourly
    qs = qs.filter(limit_reset_at__isnull=False)
    if since is not None:
        qs = qs.filter(hour__gte=since)
    if until is not None:
        qs = qs.filter(hour__lt=until)
    zone = ZoneInfo(tz)
    rows = qs.values_list(
        "machine__subscription_id",
        "machine__subscription__owner_id",
        "hour",
        "last_activity",
        "limit_reset_at",
    )
    hours: dict[tuple, set] = defaultdict(set)
    resets: dict[tuple, dict] = defaultdict(dict)
    for sub_id, member_id, hour, last_activity, reset_at in rows:
        local = hour.astimezone(zone).date()
        week = local - timedelta(days=local.weekday())
        key = (week, sub_id, member_id)
        hours[key].add(hour)
        earliest = resets[key].get(reset_at)
        if earliest is None or last_activity < earliest:
            resets[key][reset_at] = last_activity
    result = []
    for key in sorted(hours):
        lost = sum(
            max(0.0, (reset_at - stopped).total_seconds())
            for reset_at, stopped in resets[key].items()
        )
        result.append(
            LimitHitWeek(
                week_start=key[0],
                subscription_id=key[1],
                member_id=key[2],
                hours=len(hours[key]),
                minutes_lost=round(lost / 60),
            )
        )
    return result
