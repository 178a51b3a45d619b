"""A populated team A for dashboard tests: several machines, projects, days and sessions each."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from accounts.models import Role
from dashboards import forms as dashboard_forms
from tests.conftest import make_member
from tests.factories import (
    MachineFactory,
    ProjectFactory,
    SubscriptionFactory,
    daily,
    hourly,
    session,
)
from usage.analytics.blocks import recompute_blocks
from usage.models import Machine, Project, Subscription

# Fixed so figures are predictable; tests that need "now" travel here with time-machine.
NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)


@dataclass
class Populated:
    machines: dict[str, list[Machine]] = field(default_factory=dict)
    projects: list[Project] = field(default_factory=list)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)


@pytest.fixture
def populated(cast, team_a) -> Populated:
    """Each of owner/admin/member has 3 machines with daily rows, sessions and hourly buckets.

    Costs: every daily row is $1.50 and 100,000 tokens, so figures are easy to check. The
    owner's first two machines share one subscription and both work 13:00-14:00 on the 24th
    (an overlapping block).
    """
    data = Populated()
    data.projects = [
        ProjectFactory(team=team_a, key=key)
        for key in ("-home-dev-src-webapp", "-home-dev-src-api-server", "-home-dev-src-infra")
    ]
    for role in ("owner", "admin", "member"):
        user = cast[role]
        sub = Subscription.default_for(user)
        data.subscriptions[role] = sub
        machines = [
            MachineFactory(owner=user, name=f"{role}-{kind}", subscription=sub)
            for kind in ("laptop", "desktop", "server")
        ]
        data.machines[role] = machines
        for m_index, machine in enumerate(machines):
            for day_offset in range(5):
                day = (NOW - timedelta(days=day_offset)).date()
                project = data.projects[(m_index + day_offset) % 3]
                daily(machine, day, project=project)
                session(
                    machine,
                    project=project,
                    last_activity=NOW - timedelta(days=day_offset, hours=m_index + 1),
                )
        for machine in machines[:2]:
            hourly(machine, NOW.replace(hour=13, minute=0))
        recompute_blocks(sub.pk, now=NOW)
    data.subscriptions["owner_spare"] = SubscriptionFactory(owner=cast["owner"], label="Spare")
    # The outsider has data of their own, which team A must never see.
    outsider_machine = MachineFactory(owner=cast["outsider"], name="outsider-box")
    outsider_project = ProjectFactory(team=cast["outsider"].team, key="-home-x-secret")
    daily(outsider_machine, NOW.date(), project=outsider_project, cost="99.00")
    session(outsider_machine, project=outsider_project, last_activity=NOW, cost="99.00")
    data.machines["outsider"] = [outsider_machine]
    return data


@pytest.fixture
def short_menus(monkeypatch):
    """Menus of more than two options are searched (the same code path as 3,000 machines)."""
    monkeypatch.setattr(dashboard_forms, "MENU_LIMIT", 2)


def menu_html(html: str, name: str) -> str:
    start = html.index(f'name="{name}"')
    return html[html.rindex("<select", 0, start) : html.index("</select>", start)]


@pytest.fixture
def at_now():
    """The clock stands still at NOW for the test."""
    with time_machine.travel(NOW, tick=False):
        yield


def add_people(team, first: int, count: int, usage) -> None:
    """`count` more members (person<first>… @a.example) with two machines each, and
    `usage(machine)` called on each: a big team's menus and lists."""
    for n in range(first, first + count):
        person = make_member(team, f"person{n}@a.example", Role.MEMBER)
        for k in range(2):
            usage(MachineFactory(owner=person, name=f"pc{n}-{k}"))
