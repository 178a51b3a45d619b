"""Many budgets' statuses at once (budgets.status.statuses, what the overview and the budgets
page show) equal each budget's own status_of, in a number of queries that does not grow with
the budgets."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from budgets.models import Budget, ScopeKind
from budgets.status import status_of, statuses
from tests.factories import MachineFactory, ProjectFactory, daily

NOW = datetime(2026, 11, 18, 12, tzinfo=UTC)


@pytest.fixture
def budgets(cast, team_a):
    api, web, old = (ProjectFactory(team=team_a, key=f"-home-dev-src-{k}") for k in "abc")
    old.set_alias(api)
    for n, role in enumerate(("owner", "admin", "member")):
        machine = MachineFactory(owner=cast[role])
        for offset in range(0, 70, 2 + n):
            day = NOW.date() - timedelta(days=offset)
            project = (api, web, old)[(offset + n) % 3]
            daily(machine, day, project=project, cost=Decimal(offset % 7) + Decimal("0.25"))
    made = [
        Budget.objects.create(team=team_a, name="Team", scope=ScopeKind.TEAM, amount_usd=80),
        Budget.objects.create(
            team=team_a, name="Api", scope=ScopeKind.PROJECT, project=api, amount_usd=30
        ),
        Budget.objects.create(
            team=team_a,
            name="Web",
            scope=ScopeKind.PROJECT,
            project=web,
            period="week",
            amount_usd=5,
        ),
    ]
    for role in ("admin", "member"):
        made.append(
            Budget.objects.create(
                team=team_a,
                name=role,
                scope=ScopeKind.MEMBER,
                member=cast[role],
                period="week",
                amount_usd=12,
            )
        )
    return made


@pytest.mark.django_db
def test_statuses_of_many_budgets_equal_each_budgets_own_status(budgets):
    with time_machine.travel(NOW, tick=False):
        one_by_one = [status_of(b) for b in budgets]
        with CaptureQueriesContext(connection) as captured:
            together = statuses(budgets)
    assert together == one_by_one
    assert any(s.spent for s in together) and any(s.projected_day for s in together)
    # One alias lookup, then two reads per kind of budget (team, project, member).
    assert len(captured) == 1 + 2 * 3
    assert together[0].today == date(2026, 11, 18)
