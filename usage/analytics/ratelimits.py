"""The official quota per subscription, from statusline snapshots, and the hours lost to limits.

Every machine of an account sees the same quota, so readings are merged by subscription:
the latest capture wins (never a sum over machines). A reading past its reset time is stale:
the window has rolled over since, and the figure is shown as such, never as current.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, F, FloatField, Max, Min, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from usage.models import (
    HourlyUsage,
    LatestQuotaReading,
    Machine,
    RateLimitSnapshot,
    Subscription,
)

FIVE_HOUR = "five_hour"
SEVEN_DAY = "seven_day"
# The advisory lock class of storing latest readings (any number clear of other features').
HEADROOM_LOCK = 0x4EAD_0001
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


def _stale_at(window: str, resets_at: datetime | None, captured_at: datetime) -> datetime:
    """When a reading stops describing the current window: at its reset, or without a reset
    time once it is older than its window."""
    if resets_at is not None:
        return resets_at
    return captured_at + WINDOW_LENGTH.get(window, WINDOW_LENGTH[SEVEN_DAY])


def _is_stale(window: str, resets_at: datetime | None, captured_at: datetime, now) -> bool:
    return _stale_at(window, resets_at, captured_at) <= now


def _window_value(snapshot: RateLimitSnapshot, window: str) -> tuple[float, datetime | None] | None:
    """(used %, reset time) of one window of a snapshot; None when it has no usable figure."""
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
        return float(pct), resets_at
    except (TypeError, ValueError):
        return None


def _reading(snapshot: RateLimitSnapshot, window: str, now) -> Reading | None:
    value = _window_value(snapshot, window)
    if value is None:
        return None
    used, resets_at = value
    return Reading(
        window=window,
        used_pct=used,
        resets_at=resets_at,
        captured_at=snapshot.captured_at,
        machine_id=snapshot.machine_id,
        machine_name=snapshot.machine.name,
        stale=_is_stale(window, resets_at, snapshot.captured_at, now),
    )


def _latest_snapshot_pks(subscription_ids) -> dict[int, tuple[int | None, int | None, int | None]]:
    """{subscription id: (pk of the latest snapshot with a five-hour figure, with a seven-day
    figure, with per-model windows)}, latest by capture time (then pk), in one query."""
    snapshots = RateLimitSnapshot.objects.filter(subscription=OuterRef("pk")).order_by(
        "-captured_at", "-pk"
    )
    annotated = Subscription.objects.filter(pk__in=subscription_ids).annotate(
        five_pk=Subquery(snapshots.filter(five_hour_used_pct__isnull=False).values("pk")[:1]),
        seven_pk=Subquery(snapshots.filter(seven_day_used_pct__isnull=False).values("pk")[:1]),
        extra_pk=Subquery(snapshots.exclude(extra_windows={}).values("pk")[:1]),
    )
    return {
        pk: (five, seven, extra)
        for pk, five, seven, extra in annotated.values_list("pk", "five_pk", "seven_pk", "extra_pk")
    }


def latest_quotas(subscriptions, now: datetime | None = None) -> dict[int, Quota]:
    """Latest readings for many subscriptions in three queries, computed from the raw
    snapshots ({subscription id: Quota}; what the stored LatestQuotaReading rows must equal)."""
    now = now or timezone.now()
    subs = list(subscriptions)
    if not subs:
        return {}
    wanted = _latest_snapshot_pks([s.pk for s in subs])
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


# --- The stored latest readings (LatestQuotaReading) -------------------------------------------


def _latest_reading_rows(subscription_ids: list[int]) -> list[LatestQuotaReading]:
    """The LatestQuotaReading rows (unsaved) the raw snapshots give these subscriptions, by
    the rules of latest_quotas."""
    wanted = _latest_snapshot_pks(subscription_ids)
    pks = {pk for triple in wanted.values() for pk in triple if pk}
    by_pk = RateLimitSnapshot.objects.only(*READING_FIELDS).in_bulk(pks)
    rows = []

    def add(subscription_id: int, snapshot: RateLimitSnapshot, window: str) -> None:
        value = _window_value(snapshot, window)
        if value is None:
            return
        used, resets_at = value
        rows.append(
            LatestQuotaReading(
                subscription_id=subscription_id,
                window=window,
                snapshot_id=snapshot.pk,
                used_pct=used,
                resets_at=resets_at,
                captured_at=snapshot.captured_at,
                stale_at=_stale_at(window, resets_at, snapshot.captured_at),
            )
        )

    for subscription_id, (five_pk, seven_pk, extra_pk) in wanted.items():
        if five_pk:
            add(subscription_id, by_pk[five_pk], FIVE_HOUR)
        if seven_pk:
            add(subscription_id, by_pk[seven_pk], SEVEN_DAY)
        if extra_pk:
            snapshot = by_pk[extra_pk]
            for name in sorted(snapshot.extra_windows or {}):
                add(subscription_id, snapshot, name)
    return rows


def store_latest_readings(subscription_ids: Iterable[int | None]) -> None:
    """Recompute and store the latest reading of each quota window of these subscriptions
    from their snapshots (LatestQuotaReading); ids that no longer exist are skipped. Holds a
    lock per subscription until the caller's transaction ends, so two syncs of one account
    (two machines) store the readings of both, whichever commits last. Five queries."""
    ids = sorted({pk for pk in subscription_ids if pk is not None})
    if not ids:
        return
    with transaction.atomic():
        _lock_headroom(ids)
        existing = list(
            Subscription.objects.filter(pk__in=ids).order_by("pk").values_list("pk", flat=True)
        )
        if not existing:
            return
        LatestQuotaReading.objects.filter(subscription_id__in=existing).delete()
        LatestQuotaReading.objects.bulk_create(_latest_reading_rows(existing))


def _lock_headroom(ids: list[int]) -> None:
    """Transaction-level advisory locks, one per subscription, taken in id order (no two
    callers wait on each other in a circle). Not the subscription's row: a block recompute
    holds that for as long as it runs, and a sync need not wait for it. SQLite has one writer
    at a time and needs none."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        # Two 32-bit keys: this feature's, and the id folded into 31 bits (two ids sharing a
        # key only wait for each other).
        # unnest keeps the array's (sorted) order, so the locks are taken in that order.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, k) FROM unnest(%s::int[]) AS k",
            [HEADROOM_LOCK, sorted({pk % 2**31 for pk in ids})],
        )


def readings_stored(machine: Machine, counts) -> None:
    """After ingest stored a machine's quota readings (`counts`: the upsert's Counts): store
    the latest readings again of every subscription they may change: the machine's own, and
    any whose stored reading is one of this machine's snapshots (a re-sent reading of a
    machine moved since moves to its new subscription). Nothing when nothing changed."""
    if not (counts.created or counts.updated):
        return
    previous = LatestQuotaReading.objects.filter(snapshot__machine_id=machine.pk).values_list(
        "subscription_id", flat=True
    )
    store_latest_readings({machine.subscription_id, *previous})


def repair_latest_readings() -> None:
    """Recompute the subscriptions whose stored reading lost its snapshot (a deleted machine
    takes its snapshots along): an older reading, or none, is now the latest. Readers call
    this first; it is one indexed query when nothing was deleted."""
    orphaned = set(
        LatestQuotaReading.objects.filter(snapshot__isnull=True).values_list(
            "subscription_id", flat=True
        )
    )
    if orphaned:
        store_latest_readings(orphaned)


def stored_quotas(subscription_ids: Iterable[int], now: datetime | None = None) -> dict[int, Quota]:
    """{subscription id: Quota} from the stored latest readings, equal to latest_quotas'
    answer; subscriptions that no longer exist are left out. Two queries (two more when a
    stored reading lost its snapshot and is recomputed first)."""
    now = now or timezone.now()
    ids = list(subscription_ids)
    if not ids:
        return {}
    subs = Subscription.objects.filter(pk__in=ids).select_related("owner")
    quotas = {sub.pk: Quota(subscription=sub) for sub in subs}
    rows = _stored_rows(list(quotas))
    orphaned = {row.subscription_id for row in rows if row.snapshot is None}
    if orphaned:
        store_latest_readings(orphaned)
        rows = _stored_rows(list(quotas))
    for row in rows:
        source = row.snapshot
        # Orphaned rows were recomputed above; a snapshot deleted since is skipped.
        if source is None:
            continue
        reading = Reading(
            window=row.window,
            used_pct=row.used_pct,
            resets_at=row.resets_at,
            captured_at=row.captured_at,
            machine_id=source.machine_id,
            machine_name=source.machine.name,
            stale=row.stale_at <= now,
        )
        quota = quotas[row.subscription_id]
        if row.window == FIVE_HOUR:
            quota.five_hour = reading
        elif row.window == SEVEN_DAY:
            quota.seven_day = reading
        else:
            quota.windows[row.window] = reading
    return quotas


def _stored_rows(subscription_ids: list[int]) -> list[LatestQuotaReading]:
    return list(
        LatestQuotaReading.objects.filter(subscription_id__in=subscription_ids)
        .select_related("snapshot__machine")
        .only(
            "subscription_id",
            "window",
            "used_pct",
            "resets_at",
            "captured_at",
            "stale_at",
            "snapshot__machine_id",
            "snapshot__machine__name",
        )
        .order_by("subscription_id", "window")
    )


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


def headroom_ranking(team, now: datetime | None = None, *, readings_only: bool = False):
    """The team's subscription ids (a values_list QuerySet: slice it or hand it to a
    Paginator, and only that page is read), closest to a limit first; among equals the one
    whose window resets last (it hurts longest; no reset time counts as latest), then by
    owner email and label. Closeness is the highest current (non-stale) use of any window,
    0 without one (Quota.closeness). `readings_only` leaves out accounts without any quota
    reading, stale or not.

    Ranks the stored latest readings (LatestQuotaReading) in one query: a 1,000-member team is
    sorted by the database, not in Python."""
    now = now or timezone.now()
    repair_latest_readings()
    current = Q(latest_quota_readings__stale_at__gt=now)
    ranked = Subscription.objects.filter(owner__membership__team=team).annotate(
        closeness=Coalesce(
            Max("latest_quota_readings__used_pct", filter=current),
            Value(0.0),
            output_field=FloatField(),
        ),
        next_reset=Min("latest_quota_readings__resets_at", filter=current),
    )
    if readings_only:
        ranked = ranked.annotate(readings=Count("latest_quota_readings")).filter(readings__gt=0)
    return ranked.order_by(
        F("closeness").desc(),
        F("next_reset").desc(nulls_first=True),
        "owner__email",
        "label",
        "pk",
    ).values_list("pk", flat=True)


def headroom_rows(subscription_ids, now: datetime | None = None) -> list[HeadroomRow]:
    """HeadroomRows of these subscriptions (ids, or a page of `headroom_ranking`), in the
    order given, from the stored latest readings; ids that no longer exist are left out."""
    now = now or timezone.now()
    ids = list(subscription_ids)
    quotas = stored_quotas(ids, now)
    return [
        HeadroomRow(
            member_id=q.subscription.owner_id,
            member_email=q.subscription.owner.email,
            member_name=q.subscription.owner.display_name,
            quota=q,
        )
        for q in (quotas[pk] for pk in ids if pk in quotas)
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
