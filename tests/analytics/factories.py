"""Factories for analytics tests: machines on subscriptions and their usage facts."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

# The model factories are shared; the area's tests import them from here too.
from tests.factories import MachineFactory, ProjectFactory, SubscriptionFactory  # noqa: F401
from usage.models import (
    DailyUsage,
    HourlyUsage,
    RateLimitSnapshot,
    SessionUsage,
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hour(
    machine,
    start,
    *,
    tokens=1000,
    cost="0.10",
    minutes=30,
    entries=3,
    models=None,
    limit_reset_at=None,
    batch=None,
) -> HourlyUsage:
    """One hourly bucket; its last activity lies `minutes` into the hour."""
    inp, out = tokens // 10, tokens // 5
    return HourlyUsage.objects.create(
        machine=machine,
        hour=start,
        input_tokens=inp,
        output_tokens=out,
        cache_creation_tokens=0,
        cache_read_tokens=tokens - inp - out,
        total_tokens=tokens,
        cost_usd=Decimal(cost),
        entries=entries,
        last_activity=start + timedelta(minutes=minutes),
        models_used=models or ["claude-sonnet-4-5-20250929"],
        limit_reset_at=limit_reset_at,
        batch=batch,
    )


def daily(machine, day, cost, *, project=None, source="claude-code", tokens=1000) -> DailyUsage:
    project = project or ProjectFactory(team=machine.team, key="-home-dev-src-webapp")
    return DailyUsage.objects.create(
        machine=machine,
        day=day,
        project=project,
        model="claude-sonnet-4-5-20250929",
        source=source,
        cost_usd=Decimal(str(cost)),
        input_tokens=tokens,
        total_tokens=tokens,
    )


def session(machine, session_id, *, cost="1.00", tokens=1000, project=None) -> SessionUsage:
    project = project or ProjectFactory(team=machine.team, key="-home-dev-src-webapp")
    return SessionUsage.objects.create(
        machine=machine,
        session_id=session_id,
        project=project,
        last_activity=utc(2026, 11, 20, 12),
        total_tokens=tokens,
        cost_usd=Decimal(cost),
    )


def snapshot(
    machine,
    captured_at,
    *,
    five=None,
    five_resets=None,
    seven=None,
    seven_resets=None,
    extra=None,
    subscription=None,
) -> RateLimitSnapshot:
    return RateLimitSnapshot.objects.create(
        subscription=subscription or machine.subscription,
        machine=machine,
        captured_at=captured_at,
        five_hour_used_pct=None if five is None else Decimal(str(five)),
        five_hour_resets_at=five_resets,
        seven_day_used_pct=None if seven is None else Decimal(str(seven)),
        seven_day_resets_at=seven_resets,
        extra_windows=extra or {},
    )
