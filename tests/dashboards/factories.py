"""Factories for dashboard data: machines, subscriptions, projects and usage facts in bulk."""

import uuid
from datetime import timedelta
from decimal import Decimal

# The model factories are shared; the area's tests import them from here too.
from tests.factories import MachineFactory, ProjectFactory, SubscriptionFactory  # noqa: F401
from usage.models import (
    DailyUsage,
    HourlyUsage,
    RateLimitSnapshot,
    SessionUsage,
)


def _counts(total: int) -> dict:
    """Split a token total the way real reports look: mostly cache reads."""
    inp, out, create = total // 100, total // 20, total // 10
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_creation_tokens": create,
        "cache_read_tokens": total - inp - out - create,
        "total_tokens": total,
    }


def daily(
    machine,
    day,
    *,
    project,
    model="claude-sonnet-4-5-20250929",
    tokens=100_000,
    cost="1.50",
    source="claude-code",
) -> DailyUsage:
    return DailyUsage.objects.create(
        machine=machine,
        day=day,
        project=project,
        model=model,
        source=source,
        cost_usd=Decimal(cost),
        **_counts(tokens),
    )


def session(
    machine,
    *,
    project,
    last_activity,
    minutes=30,
    tokens=50_000,
    cost="0.75",
    session_id=None,
    models=("claude-sonnet-4-5-20250929",),
    source="claude-code",
):
    return SessionUsage.objects.create(
        machine=machine,
        project=project,
        source=source,
        session_id=session_id or str(uuid.uuid4()),
        first_activity=last_activity - timedelta(minutes=minutes),
        last_activity=last_activity,
        models_used=list(models),
        cost_usd=Decimal(cost),
        **_counts(tokens),
    )


def hourly(machine, hour, *, tokens=40_000, cost="0.60", last_minute=40, limit_reset_at=None):
    return HourlyUsage.objects.create(
        machine=machine,
        hour=hour,
        last_activity=hour + timedelta(minutes=last_minute),
        entries=10,
        models_used=["claude-sonnet-4-5-20250929"],
        cost_usd=Decimal(cost),
        limit_reset_at=limit_reset_at,
        **_counts(tokens),
    )


def rate_limit(subscription, machine, captured_at, *, five_hour=42.5, seven_day=61.0):
    return RateLimitSnapshot.objects.create(
        subscription=subscription,
        machine=machine,
        captured_at=captured_at,
        five_hour_used_pct=Decimal(str(five_hour)),
        five_hour_resets_at=captured_at + timedelta(hours=2),
        seven_day_used_pct=Decimal(str(seven_day)),
        seven_day_resets_at=captured_at + timedelta(days=3),
    )
