"""The team page: totals for every member, per member figures and headroom for those who may."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from budgets.models import EnforcementEvent
from tests.conftest import login
from tests.dashboards.conftest import NOW
from tests.factories import MachineFactory, daily, rate_limit

pytestmark = pytest.mark.django_db

URL = "/team/"


@pytest.fixture(autouse=True)
def _at_now():
    with time_machine.travel(NOW, tick=False):
        yield


def test_anonymous_visitors_are_sent_to_the_login_page():
    response = login(None).get(URL)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_see_every_member_with_this_months_cost(populated, cast, role):
    response = login(cast[role]).get(URL)
    assert response.status_code == 200
    members = {m["user"].email: m for m in response.context["members"]}
    assert set(members) == {"owner@a.example", "admin@a.example", "member@a.example"}
    assert members["member@a.example"]["cost_usd"] == Decimal("22.5")
    assert members["member@a.example"]["today_usd"] == Decimal("4.5")
    assert members["member@a.example"]["machines"] == 3
    assert response.context["summary"].month.cost_usd == Decimal("67.5")
    html = response.content.decode()
    assert "outsider" not in html
    assert 'id="team-data"' in html


def test_a_member_sees_the_team_totals_but_nobody_elses_figures(populated, member):
    response = login(member).get(URL)
    assert response.context["summary"].month.cost_usd == Decimal("67.5")
    assert response.context["members"] == []
    html = response.content.decode()
    assert "admin@a.example" not in html
    assert "each member's figures are for admins" in html


def test_members_see_each_other_when_the_team_allows_it(populated, member, team_a):
    team_a.members_see_each_other = True
    team_a.save()
    response = login(member).get(URL)
    assert len(response.context["members"]) == 3


def test_an_outsider_sees_their_own_team_only(populated, outsider):
    response = login(outsider).get(URL)
    assert response.context["summary"].month.cost_usd == Decimal("99")
    assert [m["user"].email for m in response.context["members"]] == ["outsider@b.example"]


def test_the_headroom_list_puts_the_closest_to_a_limit_first(populated, admin):
    rate_limit(
        populated.subscriptions["member"],
        populated.machines["member"][0],
        NOW - timedelta(minutes=5),
        five_hour=92,
        seven_day=40,
    )
    rate_limit(
        populated.subscriptions["owner"],
        populated.machines["owner"][0],
        NOW - timedelta(minutes=5),
        five_hour=20,
        seven_day=35,
    )
    response = login(admin).get(URL)
    headroom = response.context["headroom"]
    assert headroom[0]["row"].member_email == "member@a.example"
    html = response.content.decode()
    assert "92% used</strong> · near the limit" in html


def test_an_admin_drills_down_into_a_member(populated, admin, member):
    response = login(admin).get(URL, {"member": str(member.public_id)})
    assert response.status_code == 200
    assert response.context["target"] == member
    assert response.context["summary"].month.cost_usd == Decimal("22.5")
    assert {m["machine"].name for m in response.context["machines"]} == {
        "member-laptop",
        "member-desktop",
        "member-server",
    }
    assert len(response.context["by_project"]) == 3
    assert b'id="member-data"' in response.content


def test_a_member_may_open_their_own_drill_down(populated, member):
    response = login(member).get(URL, {"member": str(member.public_id)})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("role", "target"),
    [("member", "admin"), ("outsider", "member"), ("admin", "outsider")],
)
def test_a_drill_down_into_someone_not_visible_is_404(populated, cast, role, target):
    response = login(cast[role]).get(URL, {"member": str(cast[target].public_id)})
    assert response.status_code == 404


@pytest.mark.parametrize("value", ["nobody", "00000000-0000-0000-0000-000000000000", "x" * 300])
def test_a_drill_down_into_an_unknown_member_is_404(populated, admin, value):
    assert login(admin).get(URL, {"member": value}).status_code == 404


def test_the_page_runs_a_bounded_number_of_queries(
    populated, admin, team_a, django_assert_max_num_queries
):
    from tests.conftest import make_member

    for n in range(8):
        person = make_member(team_a, f"extra{n}@a.example", "member")
        machine = MachineFactory(owner=person)
        daily(machine, NOW.date(), project=populated.projects[0])
        rate_limit(machine.subscription, machine, NOW - timedelta(minutes=n))
    client = login(admin)
    # +1: allow-list check per request; +1: the warnings and stops in Claude Code;
    # +2: the productivity card (its figures and their cost); +2: the members named after
    # their rollup rows are summed, for the period and the productivity card's cost; members
    # ranked from light rows, then the page's members and their figures for today loaded;
    # quota headroom ranked in one query, then the page's subscriptions and readings loaded.
    with django_assert_max_num_queries(23):
        response = client.get(URL)
    assert len(response.context["members"]) == 11
    with django_assert_max_num_queries(19):  # +1: allow-list check per request
        client.get(URL, {"member": str(populated.machines["member"][0].owner.public_id)})


@pytest.fixture
def events(cast, team_a, team_b):
    """A stop of the member and a warning of the admin in team A; one of team B's owner."""
    for user, kind, label in (
        (cast["member"], "stop", "Member budget"),
        (cast["admin"], "warn", "Team budget"),
    ):
        EnforcementEvent.objects.create(
            team=team_a,
            member=user,
            kind=kind,
            subject=f"budget:{label}",
            label=label,
            period_key="2026-11",
            threshold=100 if kind == "stop" else 80,
            data={"spent_usd": "101.00", "cap_usd": "100.00"},
        )
    EnforcementEvent.objects.create(
        team=team_b,
        member=cast["outsider"],
        kind="stop",
        subject="budget:b",
        label="Outsider budget",
        period_key="2026-11",
        threshold=100,
    )


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_see_every_warning_and_stop_in_claude_code_on_the_team_page(events, cast, role):
    html = login(cast[role]).get(URL).content.decode()
    assert "Warnings and stops in Claude Code" in html
    assert "Member budget" in html and "Team budget" in html
    assert "Outsider budget" not in html


def test_a_member_sees_only_their_own_warnings_and_stops(events, member):
    html = login(member).get(URL).content.decode()
    assert "Member budget" in html
    assert "Team budget" not in html and "Outsider budget" not in html


def test_an_outsider_sees_only_their_own_teams_warnings_and_stops(events, outsider):
    html = login(outsider).get(URL).content.decode()
    assert "Outsider budget" in html
    assert "Member budget" not in html


@pytest.fixture
def crowd(populated, team_a):
    """27 more members in team A: person n spends n + 1 USD today and its account's 5-hour
    window is 70 + n % used, its weekly one 10 % (the 3 populated members make 30 rows)."""
    from tests.conftest import make_member

    people = []
    for n in range(27):
        person = make_member(team_a, f"person{n:02}@a.example", "member")
        machine = MachineFactory(owner=person)
        daily(machine, NOW.date(), Decimal(n + 1), project=populated.projects[0])
        rate_limit(
            machine.subscription,
            machine,
            NOW - timedelta(minutes=1),
            five_hour=70 + n,
            seven_day=10,
        )
        people.append(person)
    return people


def test_the_members_table_shows_the_biggest_spenders_a_page_at_a_time(crowd, admin):
    client = login(admin)
    first = client.get(URL, {"preset": "7d"})
    page = first.context["members_page"]
    assert page.paginator.count == 30
    shown = first.context["members"]
    assert len(shown) == 25
    costs = [m["cost_usd"] for m in shown]
    assert costs == sorted(costs, reverse=True)
    assert shown[0]["user"].email == "person26@a.example"
    assert shown[0]["today_usd"] == Decimal(27)
    html = first.content.decode()
    # The next page keeps the period chosen; the chart shows the rows on the page.
    assert "?preset=7d&amp;members_page=2#members-title" in html
    assert len(first.context["chart"]["labels"]) == 25
    second = client.get(URL, {"preset": "7d", "members_page": 2})
    rest = second.context["members"]
    assert len(rest) == 5
    everyone = {m["user"].email for m in shown} | {m["user"].email for m in rest}
    assert len(everyone) == 30
    # The totals row covers everyone, not the page: 1 + … + 27 USD today plus the fixture's.
    totals = second.context["members_totals"]
    assert totals["cost_usd"] == second.context["summary"].period.cost_usd
    assert totals["today_usd"] == sum(m["today_usd"] for m in shown + rest)
    assert "All 30 members" in second.content.decode()


def test_a_members_page_out_of_range_shows_the_last_one(crowd, admin):
    response = login(admin).get(URL, {"members_page": "99"})
    assert response.context["members_page"].number == 2
    assert login(admin).get(URL, {"members_page": "x"}).context["members_page"].number == 1


def test_the_headroom_list_shows_the_closest_to_a_limit_a_page_at_a_time(crowd, admin):
    client = login(admin)
    first = client.get(URL)
    from usage.analytics import ratelimits
    from usage.models import Subscription

    team = admin.membership.team
    accounts = Subscription.objects.filter(owner__membership__team=team).count()
    assert first.context["headroom_page"].paginator.count == accounts >= 30
    used = [item["row"].quota.closeness for item in first.context["headroom"]]
    assert used == [96.0, 95.0, 94.0, 93.0, 92.0, 91.0, 90.0, 89.0, 88.0, 87.0]
    assert "headroom_page=2#headroom-title" in first.content.decode()
    last = first.context["headroom_page"].paginator.num_pages
    pages = [first] + [client.get(URL, {"headroom_page": n}) for n in range(2, last + 1)]
    rows = [item["row"] for page in pages for item in page.context["headroom"]]
    # The pages together are the whole list, in the order the full readings give: closest
    # to a limit, then the latest reset, then email and label.
    quotas = ratelimits.latest_quotas(
        Subscription.objects.filter(owner__membership__team=team).select_related("owner"), NOW
    ).values()
    later = NOW + timedelta(days=3650)
    expected = sorted(
        quotas,
        key=lambda q: (
            -q.closeness,
            -(q.next_reset or later).timestamp(),
            q.subscription.owner.email,
            q.subscription.label,
        ),
    )
    assert [r.subscription.pk for r in rows] == [q.subscription.pk for q in expected]


@pytest.mark.parametrize("params", [{}, {"members_page": "2"}, {"headroom_page": "2"}])
def test_a_member_gets_no_page_of_other_members_whatever_they_ask(crowd, member, params):
    response = login(member).get(URL, params)
    assert response.status_code == 200
    assert response.context["members"] == []
    assert response.context["headroom"] == []
    assert "person26@a.example" not in response.content.decode()


def test_an_outsider_pages_only_their_own_team(crowd, outsider):
    response = login(outsider).get(URL, {"members_page": "2", "headroom_page": "2"})
    emails = [m["user"].email for m in response.context["members"]]
    assert emails == ["outsider@b.example"]
    assert all(i["row"].member_email.endswith("@b.example") for i in response.context["headroom"])


def test_headroom_ranks_per_model_windows_and_skips_stale_readings(populated, admin, team_a):
    """The light ranking follows the full readings: a per-model weekly window (reset given
    as unix seconds or ISO text) counts, a reading past its reset does not."""
    from tests.conftest import make_member
    from tests.factories import snapshot
    from usage.analytics import ratelimits

    expected = {}
    for n, (five, five_resets, extra) in enumerate(
        [
            # 99 % but reset an hour ago: stale, counts as nothing.
            (99, NOW - timedelta(hours=1), {}),
            # 30 % on the 5-hour window, 97 % on Opus this week (reset as unix seconds).
            (
                30,
                NOW + timedelta(hours=1),
                {
                    "seven_day_opus": {
                        "used_percentage": 97,
                        "resets_at": (NOW + timedelta(days=2)).timestamp(),
                    }
                },
            ),
            # 50 %, Opus 98 % but that window reset yesterday (ISO text): 50 % counts.
            (
                50,
                NOW + timedelta(hours=1),
                {
                    "seven_day_opus": {
                        "used_percentage": 98,
                        "resets_at": (NOW - timedelta(days=1)).isoformat(),
                    }
                },
            ),
        ]
    ):
        person = make_member(team_a, f"quota{n}@a.example", "member")
        machine = MachineFactory(owner=person)
        snapshot(
            machine,
            NOW - timedelta(minutes=10),
            subscription=machine.subscription,
            five=five,
            five_resets=five_resets,
            extra=extra,
        )
        expected[person.email] = machine.subscription.pk
    ranking = ratelimits.headroom_ranking(team_a, NOW)
    position = {pk: i for i, pk in enumerate(ranking)}
    opus, half, stale = (expected[f"quota{n}@a.example"] for n in (1, 2, 0))
    assert position[opus] < position[half] < position[stale]
    rows = {r.subscription.pk: r for r in ratelimits.headroom_rows([opus, half, stale], NOW)}
    assert [rows[pk].quota.closeness for pk in (opus, half, stale)] == [97.0, 50.0, 0.0]


def test_member_figures_for_a_page_are_for_those_who_may_see_others(populated, cast):
    from django.core.exceptions import PermissionDenied

    from usage import queries

    ids = [cast[r].pk for r in ("owner", "admin", "member")]
    figures = queries.team_member_usage(cast["admin"], ids, NOW.date(), NOW.date())
    full = queries.aggregate_usage(
        cast["admin"], group_by="member", since=NOW.date(), until=NOW.date(), scope="team"
    )
    by_key = {row["key"]: row["cost_usd"] for row in full["results"]}
    for role in ("owner", "admin", "member"):
        assert figures.get(cast[role].pk, {}).get("cost_usd", Decimal(0)) == by_key.get(
            str(cast[role].public_id), Decimal(0)
        )
    assert figures[cast["member"].pk]["cost_usd"] == Decimal("4.5")
    # A member may ask about themselves only; an outsider's ids read their own team's rows.
    own = queries.team_member_usage(cast["member"], [cast["member"].pk], NOW.date(), NOW.date())
    assert own[cast["member"].pk]["cost_usd"] == Decimal("4.5")
    with pytest.raises(PermissionDenied):
        queries.team_member_usage(cast["member"], ids, NOW.date(), NOW.date())
    assert queries.team_member_usage(cast["outsider"], [cast["member"].pk]) == {}
