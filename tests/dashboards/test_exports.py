"""The pages' CSV buttons: the explorer's chargeback, sessions and blocks, with the page's
filters and its visibility rules, names instead of ids and no formulas."""

import csv
import io
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from tests.conftest import login
from tests.dashboards.conftest import NOW

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _at_now():
    with time_machine.travel(NOW, tick=False):
        yield


def rows_of(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


@pytest.mark.parametrize(
    "url", ["/usage/chargeback.csv", "/sessions/export.csv", "/blocks/export.csv"]
)
def test_anonymous_visitors_are_sent_to_the_login_page(url):
    response = login(None).get(url)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_the_explorer_links_the_chargeback_with_its_filters(populated, admin):
    html = login(admin).get("/usage/", {"scope": "team", "range": "7d"}).content.decode()
    assert 'id="explorer-chargeback" href="/usage/chargeback.csv?scope=team&amp;range=7d"' in html


def test_an_admin_gets_the_team_by_project_and_member(populated, admin):
    rows = rows_of(
        login(admin).get(
            "/usage/chargeback.csv",
            {"scope": "team", "range": "custom", "since": "2026-11-20", "until": "2026-11-24"},
        )
    )
    # 3 people x 3 machines x 5 days x $1.50; each machine's project rotates over 3 projects.
    assert sum(Decimal(r["cost_usd"]) for r in rows) == Decimal("67.50")
    assert {r["email"] for r in rows} == {
        "owner@a.example",
        "admin@a.example",
        "member@a.example",
    }
    assert {r["project"] for r in rows} == {p.display_name for p in populated.projects}
    # The explorer's period (day by default) is the chargeback's.
    assert len({r["period_start"] for r in rows}) == 5


def test_a_member_gets_the_team_without_names(populated, member):
    rows = rows_of(login(member).get("/usage/chargeback.csv", {"scope": "team"}))
    assert {r["member"] for r in rows} == {"All members"}
    assert sum(Decimal(r["cost_usd"]) for r in rows) == Decimal("67.50")


def test_the_chargeback_never_reaches_another_team(populated, outsider):
    rows = rows_of(login(outsider).get("/usage/chargeback.csv", {"scope": "team"}))
    assert {r["email"] for r in rows} == {"outsider@b.example"}


def test_sessions_csv_follows_the_filters_and_visibility(populated, member, admin):
    mine = rows_of(login(member).get("/sessions/export.csv"))
    # 3 machines x 5 sessions, every page of them.
    assert len(mine) == 15
    assert {r["email"] for r in mine} == {"member@a.example"}
    # A member cannot widen it to the team: the filter is refused, their own rows stay.
    assert len(rows_of(login(member).get("/sessions/export.csv", {"scope": "team"}))) == 15
    team = rows_of(login(admin).get("/sessions/export.csv", {"scope": "team"}))
    assert len(team) == 45
    one_machine = populated.machines["owner"][0]
    picked = rows_of(
        login(admin).get("/sessions/export.csv", {"scope": "team", "machine": one_machine.uuid})
    )
    assert {r["machine"] for r in picked} == {"owner-laptop"}
    assert set(picked[0]) >= {"session_id", "project", "machine", "member", "models", "cost_usd"}


def test_blocks_csv_follows_the_filters_and_visibility(populated, member, admin):
    mine = rows_of(login(member).get("/blocks/export.csv"))
    assert mine and {r["email"] for r in mine} == {"member@a.example"}
    assert {r["machines"] for r in mine} == {"member-desktop; member-laptop"}
    team = rows_of(login(admin).get("/blocks/export.csv", {"scope": "team"}))
    assert {r["email"] for r in team} == {
        "owner@a.example",
        "admin@a.example",
        "member@a.example",
    }
    assert rows_of(login(admin).get("/blocks/export.csv", {"range": "last_month"})) == []


def test_names_that_look_like_formulas_are_text_in_every_export(populated, admin):
    machine = populated.machines["admin"][0]
    machine.name = "=cmd|calc"
    machine.save()
    sessions = rows_of(login(admin).get("/sessions/export.csv"))
    assert "'=cmd|calc" in {r["machine"] for r in sessions}
    blocks = rows_of(login(admin).get("/blocks/export.csv"))
    assert any(r["machines"].startswith("'=cmd|calc") for r in blocks)


def test_an_outsider_exports_only_their_own_sessions_and_blocks(populated, outsider):
    sessions = rows_of(login(outsider).get("/sessions/export.csv", {"scope": "team"}))
    assert {r["email"] for r in sessions} == {"outsider@b.example"}
    blocks = rows_of(login(outsider).get("/blocks/export.csv", {"scope": "team"}))
    assert all(r["email"] == "outsider@b.example" for r in blocks)
    # Another team's machine as a filter is refused, never a way in.
    foreign = populated.machines["member"][0]
    refused = rows_of(login(outsider).get("/sessions/export.csv", {"machine": foreign.uuid}))
    assert {r["email"] for r in refused} == {"outsider@b.example"}


def test_a_member_of_a_team_that_shares_figures_exports_colleagues(populated, member, team_a):
    team_a.members_see_each_other = True
    team_a.save()
    rows = rows_of(login(member).get("/usage/chargeback.csv", {"scope": "team"}))
    assert {r["email"] for r in rows} == {
        "owner@a.example",
        "admin@a.example",
        "member@a.example",
    }
    sessions = rows_of(login(member).get("/sessions/export.csv", {"scope": "team"}))
    assert len(sessions) == 45
