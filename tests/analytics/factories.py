"""Factories for analytics tests: machines on subscriptions and their usage facts."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory

from usage.models import (
    DailyUsage,
    HourlyUsage,
    Machine,
    Project,
    RateLimitSnapshot,
    SessionUsage,
    Subscription,
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    label = factory.Sequence(lambda n: f"Claude account {n}")
    plan = "max5x"


class MachineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Machine

    uuid = factory.LazyFunction(uuid.uuid4)
    name = factory.Sequence(lambda n: f"pc-{n}")
    team = factory.LazyAttribute(lambda o: o.owner.team)
    subscription = factory.LazyAttribute(lambda o: Subscription.default_for(o.owner))
    ccusage_version = "20.0.24"


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        django_get_or_create = ("team", "key")

    key = factory.Sequence(lambda n: f"-home-alice-src-app{n}")
    display_name = factory.LazyAttribute(lambda o: o.key.rsplit("-", 1)[-1])


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
    project = project or ProjectFactory(team=machine.team, key="-home-alice-src-webapp")
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
    project = project or ProjectFactory(team=machine.team, key="-home-alice-src-webapp")
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
