"""The pages issue 13 measures at a 1,000-member team cost a fixed number of SQL queries: adding
members, machines, days, sessions and budgets adds none (bench-scale measures the time)."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from budgets.models import Budget, ScopeKind
from tests.conftest import login, make_member
from tests.dashboards.conftest import NOW
from tests.factories import MachineFactory, ProjectFactory, daily, rate_limit, session
from usage.models import Subscription

PAGES = [
    "/",
    "/?scope=team",
    "/team/",
    "/usage/",
    "/usage/?scope=team",
    "/machines/",
    "/blocks/?scope=team",
    "/api/v1/usage/?scope=team&group_by=member",
    "/api/v1/usage/?scope=team&group_by=project",
    "/api/v1/usage/?scope=team&group_by=day",
]


def add_members(team, first: int, count: int, projects) -> None:
    """`count` more members, each with two machines, a quota reading, facts over 40 days (two
    months), sessions (one copied between their machines) and a weekly budget."""
    for n in range(first, first + count):
        user = make_member(team, f"person{n}@a.example", Role.MEMBER)
        sub = Subscription.default_for(user)
        machines = [
            MachineFactory(owner=user, subscription=sub, name=f"pc{n}-{k}") for k in range(2)
        ]
        rate_limit(sub, machines[0], NOW - timedelta(hours=1))
        for k, machine in enumerate(machines):
            for offset in range(0, 40, 3):
                day = (NOW - timedelta(days=offset)).date()
                daily(machine, day, project=projects[(n + k + offset) % len(projects)])
            session(machine, f"copied-{n}", project=projects[0], last_activity=NOW)
        Budget.objects.create(
            team=team,
            name=f"Person {n}",
            scope=ScopeKind.MEMBER,
            member=user,
            period="week",
            amount_usd=50,
        )


def counts(viewer) -> dict[str, int]:
    client = login(viewer)
    out = {}
    # A member may not break the team down by member (403): the rest they may ask.
    pages = PAGES if viewer.membership.role == Role.OWNER else PAGES[:7] + PAGES[8:]
    for url in pages:
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        out[url] = len(captured)
    return out


@pytest.mark.django_db
def test_the_pages_cost_the_same_queries_at_any_team_size(cast, team_a):
    projects = [ProjectFactory(team=team_a, key=f"-home-dev-src-p{i}") for i in range(4)]
    projects[3].set_alias(projects[2])
    Budget.objects.create(team=team_a, name="Team", scope=ScopeKind.TEAM, amount_usd=900)
    Budget.objects.create(
        team=team_a, name="P2", scope=ScopeKind.PROJECT, project=projects[2], amount_usd=90
    )
    with time_machine.travel(NOW, tick=False):
        add_members(team_a, 0, 2, projects)
        small = {who: counts(cast[who]) for who in ("owner", "member")}
        add_members(team_a, 2, 5, projects)
        large = {who: counts(cast[who]) for who in ("owner", "member")}
    grown = {
        (who, url): (small[who][url], n)
        for who in large
        for url, n in large[who].items()
        if n > small[who][url]
    }
    assert not grown, grown


@pytest.mark.django_db
def test_a_big_teams_machines_come_a_page_at_a_time_own_first(cast, team_a, monkeypatch):
    from dashboards.views import machines as machines_view

    monkeypatch.setattr(machines_view, "MACHINES_PER_PAGE", 2)
    projects = [ProjectFactory(team=team_a, key="-home-dev-src-p0")]
    with time_machine.travel(NOW, tick=False):
        add_members(team_a, 0, 2, projects)
        mine = MachineFactory(owner=cast["owner"], name="owner-pc")
        client = login(cast["owner"])
        first = client.get("/machines/")
        last = client.get("/machines/?page=3")
    names = [r["machine"].name for r in first.context["rows"]]
    assert names[0] == mine.name and len(names) == 2
    assert first.context["machine_count"] == 5
    later = [r for r in last.context["rows"]]
    assert [r["machine"].name for r in later] == ["pc1-1"]
    # The copy on another page is still found and named (the viewer may see both machines).
    assert later[0]["findings"].duplicate_with == ["pc1-0"]
    assert "Page 3 of 3" in last.content.decode()
