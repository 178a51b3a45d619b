"""Subscriptions, machines, projects and the usage facts the agent reports for them.

Token counts are split the way real reports look: the fact factories take a `tokens` total and
a `split` (see SPLITS) and fill the five counters from them. The helpers at the end are thin
wrappers over the factories with the arguments the tests use most.
"""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory

from tests.factories.accounts import MembershipFactory
from usage.models import (
    DailyUsage,
    HourlyUsage,
    Machine,
    Project,
    RateLimitSnapshot,
    SessionUsage,
    Subscription,
)

SONNET = "claude-sonnet-4-5-20250929"
WEBAPP_KEY = "-home-dev-src-webapp"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _realistic(total: int) -> tuple[int, int, int]:
    # Mostly cache reads, as in the reports of a working day.
    return total // 100, total // 20, total // 10


def _block(total: int) -> tuple[int, int, int]:
    # A tenth input, a fifth output, no cache writes: the hourly buckets of the blocks tests.
    return total // 10, total // 5, 0


def _input_only(total: int) -> tuple[int, int, int]:
    return total, 0, 0


# How a total splits into (input, output, cache creation); cache reads take the rest.
# "total" leaves every counter but the total at zero.
SPLITS = {"realistic": _realistic, "block": _block, "input": _input_only}


def split_tokens(total: int, split: str = "realistic") -> dict[str, int]:
    """The five token counters of a fact row with `total` tokens."""
    if split == "total":
        return {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_tokens": 0,
            "cache_read_tokens": 0,
            "total_tokens": total,
        }
    inp, out, create = SPLITS[split](total)
    return {
        "input_tokens": inp,
        "output_tokens": out,
        "cache_creation_tokens": create,
        "cache_read_tokens": total - inp - out - create,
        "total_tokens": total,
    }


def _counter(name: str):
    return factory.LazyAttribute(lambda o: split_tokens(o.tokens, o.split)[name])


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    owner = factory.LazyFunction(lambda: MembershipFactory().user)
    label = factory.Sequence(lambda n: f"Claude account {n}")
    plan = "max5x"


class MachineFactory(factory.django.DjangoModelFactory):
    """A machine that synced a moment ago, on its owner's default subscription."""

    class Meta:
        model = Machine

    class Params:
        # A machine row as ingest first creates it: no agent details, never seen syncing.
        unseen = factory.Trait(os="", agent_version="", ccusage_version="", last_seen_at=None)

    owner = factory.LazyFunction(lambda: MembershipFactory().user)
    uuid = factory.LazyFunction(uuid.uuid4)
    name = factory.Sequence(lambda n: f"machine-{n}")
    team = factory.LazyAttribute(lambda o: o.owner.team)
    subscription = factory.LazyAttribute(lambda o: Subscription.default_for(o.owner))
    os = "Linux 6.1 x86_64"
    agent_version = "0.1.0"
    ccusage_version = "20.0.24"
    last_seen_at = factory.LazyFunction(lambda: datetime.now(UTC))


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        django_get_or_create = ("team", "key")

    team = factory.LazyFunction(lambda: MembershipFactory().team)
    key = factory.Sequence(lambda n: f"-home-dev-src-project{n}")
    display_name = factory.LazyAttribute(lambda o: o.key.rsplit("-", 1)[-1])


class _FactFactory(factory.django.DjangoModelFactory):
    """Token counters from `tokens` and `split`, the cost from `cost` (any number or string)."""

    class Meta:
        abstract = True

    class Params:
        tokens = 100_000
        split = "realistic"
        cost = "1.50"

    machine = factory.SubFactory(MachineFactory)
    input_tokens = _counter("input_tokens")
    output_tokens = _counter("output_tokens")
    cache_creation_tokens = _counter("cache_creation_tokens")
    cache_read_tokens = _counter("cache_read_tokens")
    total_tokens = _counter("total_tokens")
    cost_usd = factory.LazyAttribute(lambda o: Decimal(str(o.cost)))


def _webapp_of(o) -> Project:
    return ProjectFactory(team=o.machine.team, key=WEBAPP_KEY)


class DailyUsageFactory(_FactFactory):
    """One day, project and model of a machine (100,000 tokens and $1.50 unless told)."""

    class Meta:
        model = DailyUsage

    day = factory.LazyFunction(lambda: datetime.now(UTC).date())
    project = factory.LazyAttribute(_webapp_of)
    model = SONNET
    source = "claude-code"


class SessionUsageFactory(_FactFactory):
    """One Claude Code session of `minutes` ending at `last_activity` (50,000 tokens, $0.75)."""

    class Meta:
        model = SessionUsage

    class Params:
        tokens = 50_000
        cost = "0.75"
        minutes = 30

    session_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    project = factory.LazyAttribute(_webapp_of)
    source = "claude-code"
    last_activity = factory.LazyFunction(lambda: datetime.now(UTC))
    first_activity = factory.LazyAttribute(
        lambda o: None if o.minutes is None else o.last_activity - timedelta(minutes=o.minutes)
    )
    models_used = factory.LazyFunction(lambda: [SONNET])


class HourlyUsageFactory(_FactFactory):
    """One hour bucket of `ccusage blocks --session-length 1` (40,000 tokens, $0.60).

    Its last activity lies `minutes` into the hour. The `small` trait is the unit of the blocks
    and quota tests: 1,000 tokens, $0.10, three entries, last activity at half past.
    """

    class Meta:
        model = HourlyUsage

    class Params:
        tokens = 40_000
        cost = "0.60"
        minutes = 40
        small = factory.Trait(tokens=1000, split="block", cost="0.10", minutes=30, entries=3)

    hour = factory.LazyFunction(
        lambda: datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    )
    last_activity = factory.LazyAttribute(lambda o: o.hour + timedelta(minutes=o.minutes))
    entries = 10
    models_used = factory.LazyFunction(lambda: [SONNET])
    limit_reset_at = None


def _pct(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


class RateLimitSnapshotFactory(factory.django.DjangoModelFactory):
    """One statusline reading of the official quota; `five` and `seven` are percentages."""

    class Meta:
        model = RateLimitSnapshot

    class Params:
        five = None
        seven = None

    machine = factory.SubFactory(MachineFactory)
    subscription = factory.LazyAttribute(lambda o: o.machine.subscription)
    captured_at = factory.LazyFunction(lambda: datetime.now(UTC))
    five_hour_used_pct = factory.LazyAttribute(lambda o: _pct(o.five))
    five_hour_resets_at = None
    seven_day_used_pct = factory.LazyAttribute(lambda o: _pct(o.seven))
    seven_day_resets_at = None
    extra_windows = factory.LazyFunction(dict)


# --- thin helpers ----------------------------------------------------------------------------


def machine_for(user, name: str = "laptop", **extra) -> Machine:
    """A machine of `user` as ingest creates it (no agent details, never seen)."""
    return MachineFactory(owner=user, name=name, unseen=True, **extra)


def project_for(team, key: str = "-home-dev-src-api-server", **extra) -> Project:
    return ProjectFactory(team=team, key=key, **extra)


def daily(machine, day, cost=None, *, project=None, **extra) -> DailyUsage:
    if cost is not None:
        extra["cost"] = cost
    if project is not None:
        extra["project"] = project
    return DailyUsageFactory(machine=machine, day=day, **extra)


def session(machine, session_id=None, *, models=None, **extra) -> SessionUsage:
    if session_id is not None:
        extra["session_id"] = session_id
    if models is not None:
        extra["models_used"] = list(models)
    return SessionUsageFactory(machine=machine, **extra)


def hourly(machine, start, *, models=None, **extra) -> HourlyUsage:
    if models is not None:
        extra["models_used"] = list(models)
    return HourlyUsageFactory(machine=machine, hour=start, **extra)


def hour(machine, start, **extra) -> HourlyUsage:
    """A small hourly bucket (HourlyUsageFactory's `small` trait)."""
    return hourly(machine, start, small=True, **extra)


def rate_limit(subscription, machine, captured_at, *, five_hour=42.5, seven_day=61.0):
    """A reading with both windows: the 5-hour one resets in 2 hours, the weekly in 3 days."""
    return RateLimitSnapshotFactory(
        subscription=subscription,
        machine=machine,
        captured_at=captured_at,
        five=five_hour,
        five_hour_resets_at=captured_at + timedelta(hours=2),
        seven=seven_day,
        seven_day_resets_at=captured_at + timedelta(days=3),
    )


def snapshot(
    machine,
    captured_at,
    *,
    five_resets=None,
    seven_resets=None,
    extra=None,
    subscription=None,
    **fields,
) -> RateLimitSnapshot:
    if subscription is not None:
        fields["subscription"] = subscription
    return RateLimitSnapshotFactory(
        machine=machine,
        captured_at=captured_at,
        five_hour_resets_at=five_resets,
        seven_day_resets_at=seven_resets,
        extra_windows=extra or {},
        **fields,
    )
