"""Usage fixtures: the team A member's subscription with two machines, an owner's API client,
and the real ccusage's hourly blocks of the fixture input."""

import shutil

import pytest

from tests.conftest import api_client, token_for
from tests.factories import MachineFactory, SubscriptionFactory
from tests.usage.ingest.helpers import need_ccusage, run_ccusage


@pytest.fixture
def subscription(member):
    return SubscriptionFactory(owner=member, is_default=True, label="Work account")


@pytest.fixture
def laptop(member, subscription):
    return MachineFactory(owner=member, subscription=subscription, name="laptop")


@pytest.fixture
def desktop(member, subscription):
    return MachineFactory(owner=member, subscription=subscription, name="desktop")


@pytest.fixture
def owner_client(owner):
    return api_client(token_for(owner))


@pytest.fixture(scope="session")
def hourly_blocks(tmp_path_factory, fixture_input_home):
    """`ccusage blocks --json --session-length 1` of the fixture input (real binary)."""
    need_ccusage()
    home = tmp_path_factory.mktemp("fixture") / "home"
    shutil.copytree(fixture_input_home, home)
    return run_ccusage(home, "blocks", "--session-length", "1")
