"""Analytics fixtures: one subscription with two machines of the team A member."""

import pytest

from tests.analytics.factories import MachineFactory, SubscriptionFactory


@pytest.fixture
def subscription(member):
    return SubscriptionFactory(owner=member, is_default=True, label="Work account")


@pytest.fixture
def laptop(member, subscription):
    return MachineFactory(owner=member, subscription=subscription, name="laptop")


@pytest.fixture
def desktop(member, subscription):
    return MachineFactory(owner=member, subscription=subscription, name="desktop")
