"""factory_boy factories for every model the tests build by hand, and thin helpers over them.

Import from here: `from tests.factories import MachineFactory, daily`. The modules follow the
apps: accounts (teams, users, memberships), usage (subscriptions, machines, projects and the
usage facts), budgets (channels and budgets).
"""

from tests.factories.accounts import MembershipFactory, TeamFactory, UserFactory
from tests.factories.budgets import (
    BudgetFactory,
    ChannelFactory,
    chat_channel,
    email_channel,
    make_budget,
    webhook_channel,
)
from tests.factories.usage import (
    DailyUsageFactory,
    HourlyUsageFactory,
    MachineFactory,
    ProjectFactory,
    RateLimitSnapshotFactory,
    SessionUsageFactory,
    SubscriptionFactory,
    daily,
    hour,
    hourly,
    machine_for,
    project_for,
    rate_limit,
    session,
    snapshot,
    split_tokens,
    utc,
)

__all__ = [
    "BudgetFactory",
    "ChannelFactory",
    "DailyUsageFactory",
    "HourlyUsageFactory",
    "MachineFactory",
    "MembershipFactory",
    "ProjectFactory",
    "RateLimitSnapshotFactory",
    "SessionUsageFactory",
    "SubscriptionFactory",
    "TeamFactory",
    "UserFactory",
    "chat_channel",
    "daily",
    "email_channel",
    "hour",
    "hourly",
    "machine_for",
    "make_budget",
    "project_for",
    "rate_limit",
    "session",
    "snapshot",
    "split_tokens",
    "utc",
    "webhook_channel",
]
