"""GET /api/v1/productivity/: who sees which productivity figures, and cost per commit."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.conftest import api_client, token_for
from tests.usage.ingest.otlp_helpers import LOGS_URL, PROTOBUF, api_request, logs_body
from tests.usage.ingest.otlp_metric_helpers import post_metrics
from tests.usage.ingest.test_otlp_productivity import work
from usage.models import Machine

pytestmark = pytest.mark.django_db

URL = "/api/v1/productivity/"
AT = datetime(2026, 11, 20, 9, 31, tzinfo=UTC)
DAY = {"since": "2026-11-01", "until": "2026-11-30"}


def send_work(user, cost_usd: str):
    """One request of `cost_usd` (an event) and one stretch of work: 2 commits, 1 pull request,
    120 lines added and 30 removed, 135.75 s active, 3 edits accepted and 1 rejected."""
    client = api_client(token_for(user, ["ingest"]))
    body = logs_body([api_request(AT, request_id=f"req-{user.pk}", cost_usd=cost_usd)])
    assert client.post(LOGS_URL, data=body, content_type=PROTOBUF).status_code == 200
    assert post_metrics(user, work(AT + timedelta(minutes=1))).status_code == 200


def get(user, scopes=("read",), **params):
    return api_client(token_for(user, scopes)).get(URL, {**DAY, **params})


@pytest.fixture
def worked(owner, member, outsider):
    send_work(owner, "3.00")
    send_work(member, "1.00")
    send_work(outsider, "5.00")


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_see_each_members_figures_and_cost_per_commit(cast, worked, role):
    response = get(cast[role], group_by="member", scope="team")
    assert response.status_code == 200, response.content
    rows = {row["label"]: row for row in response.json()["results"]}
    assert set(rows) == {cast["owner"].display_name, cast["member"].display_name}
    mine = rows[cast["member"].display_name]
    assert mine["key"] == str(cast["member"].public_id)
    assert (mine["commits"], mine["pull_requests"]) == (2, 1)
    assert (mine["lines_added"], mine["lines_removed"]) == (120, 30)
    assert mine["active_seconds"] == 136  # 95.5 + 40.25, rounded to whole seconds
    assert mine["accept_rate"] == 0.75  # 3 of 4 decided edits
    assert Decimal(mine["cost_usd"]) == Decimal("1")
    assert Decimal(mine["cost_per_commit"]) == Decimal("0.5")
    assert Decimal(mine["cost_per_pull_request"]) == Decimal("1")
    totals = response.json()["totals"]
    assert totals["commits"] == 4 and Decimal(totals["cost_usd"]) == Decimal("4")
    assert Decimal(totals["cost_per_commit"]) == Decimal("1")


def test_a_member_sees_their_own_figures_by_day_but_not_the_team_by_member(member, worked):
    response = get(member)
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["key"] == "2026-11-20" and row["commits"] == 2
    assert Decimal(row["cost_per_commit"]) == Decimal("0.5")
    assert get(member, group_by="member", scope="team").status_code == 403
    assert get(member, group_by="machine", scope="team").status_code == 403


def test_a_member_cannot_read_a_teammates_figures(member, owner, worked):
    assert get(member, member=owner.email).status_code == 403
    machine = Machine.objects.get(owner=owner, ingest_path="otlp")
    assert get(member, machine=str(machine.uuid)).status_code == 403


def test_an_outsider_sees_only_their_own_team(outsider, member, worked):
    team = get(outsider, scope="team")
    assert team.status_code == 200
    assert team.json()["totals"]["commits"] == 2  # their own work only
    assert get(outsider, member=member.email).status_code == 404
    machine = Machine.objects.get(owner=member, ingest_path="otlp")
    assert get(outsider, machine=str(machine.uuid)).status_code == 404


def test_no_token_a_token_without_read_and_bad_parameters(member, worked):
    assert api_client().get(URL).status_code == 401
    assert get(member, scopes=("ingest",)).status_code == 403
    response = get(member, group_by="model")
    assert response.status_code == 400 and "group_by" in response.json()["errors"]
    response = get(member, since="2026-11-30", until="2026-11-01")
    assert response.status_code == 400 and "until" in response.json()["errors"]


def test_without_commits_or_decisions_the_rates_are_null(member):
    response = get(member)
    assert response.status_code == 200
    totals = response.json()["totals"]
    assert totals["commits"] == 0
    assert totals["cost_per_commit"] is None and totals["accept_rate"] is None
