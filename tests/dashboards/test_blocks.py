"""The blocks page: whose blocks, the active block card, overlaps, limit hits, query counts."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from tests.conftest import login
from tests.dashboards.conftest import NOW
from tests.factories import MachineFactory, hourly
from usage.analytics.blocks import recompute_blocks
from usage.models import HourlyUsage

pytestmark = pytest.mark.django_db

URL = "/blocks/"


@pytest.fixture(autouse=True)
def _at_now():
    with time_machine.travel(NOW, tick=False):
        yield


def subscriptions_shown(response) -> set[str]:
    return {row["block"].subscription.owner.email for row in response.context["rows"]}


def test_anonymous_visitors_are_sent_to_the_login_page():
    response = login(None).get(URL)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_a_member_sees_the_blocks_of_their_own_subscription(populated, member):
    response = login(member).get(URL)
    assert response.status_code == 200
    rows = response.context["rows"]
    assert len(rows) == 1
    block = rows[0]["block"]
    assert block.overlap is True
    assert {part["machine"].name for part in rows[0]["machines"]} == {
        "member-laptop",
        "member-desktop",
    }
    assert [part["share"] for part in rows[0]["machines"]] == [50.0, 50.0]


def test_a_member_cannot_pick_a_colleagues_subscription(populated, member):
    theirs = populated.subscriptions["admin"]
    response = login(member).get(URL, {"subscription": str(theirs.public_id)})
    assert response.context["filters"].errors
    assert subscriptions_shown(response) == {"member@a.example"}


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_see_every_subscription_of_the_team_when_asked(populated, cast, role):
    client = login(cast[role])
    assert subscriptions_shown(client.get(URL)) == {cast[role].email}
    team = client.get(URL, {"scope": "team"})
    assert subscriptions_shown(team) == {"owner@a.example", "admin@a.example", "member@a.example"}
    one = client.get(URL, {"subscription": str(populated.subscriptions["member"].public_id)})
    assert subscriptions_shown(one) == {"member@a.example"}


def test_an_outsider_sees_no_block_of_team_a(populated, outsider):
    response = login(outsider).get(URL, {"scope": "team"})
    assert subscriptions_shown(response) == set()


def test_the_running_block_is_shown_on_top_with_its_burn_rate_and_projection(populated, member):
    response = login(member).get(URL)
    [card] = response.context["active"]
    assert card.block.start_time == NOW.replace(hour=13, minute=0)
    assert card.remaining == timedelta(hours=2, minutes=30)
    # 80,000 tokens from 13:00 to the last activity at 13:40.
    assert card.burn.tokens_per_minute == pytest.approx(2000)
    assert card.projected.total_tokens == 80_000 + 2000 * 150
    html = response.content.decode()
    assert "Running now" in html
    assert "Overlap: 2 machines" in html
    assert "2K tokens/min" in html


def test_without_first_requests_the_burn_rate_says_it_runs_from_the_blocks_start(populated, member):
    html = login(member).get(URL).content.decode()
    assert "over 40 min of use, from the block's start" in html


def test_the_burn_rate_runs_from_the_first_request_and_the_card_says_over_how_long(
    populated, member
):
    # The agents said the 13:00 hour's first requests were at 13:10 and 13:25.
    hours = HourlyUsage.objects.filter(machine__owner=member, hour=NOW.replace(hour=13, minute=0))
    for row, minute in zip(hours.order_by("machine__name"), (25, 10), strict=True):
        row.first_activity = NOW.replace(hour=13, minute=minute)
        row.save()
    recompute_blocks(populated.subscriptions["member"].pk, now=NOW)
    response = login(member).get(URL)
    [card] = response.context["active"]
    assert card.elapsed == timedelta(hours=2, minutes=30)  # the block's clock: from 13:00
    assert card.measured == timedelta(minutes=30)  # the rate's: 13:10 to 13:40
    assert card.burn.tokens_per_minute == pytest.approx(80_000 / 30)
    assert card.projected.total_tokens == round(80_000 + 80_000 / 30 * 150)
    html = response.content.decode()
    assert "2.7K tokens/min" in html
    assert "over 30 min of use, from the first request at" in html
    assert "2 h 30 min gone" in html


def test_a_block_that_hit_a_limit_is_marked(populated, member):
    server = populated.machines["member"][2]
    hour = NOW.replace(hour=2, minute=0)
    hourly(server, hour, limit_reset_at=hour + timedelta(hours=3))
    recompute_blocks(populated.subscriptions["member"].pk, now=NOW)
    response = login(member).get(URL)
    html = response.content.decode()
    assert "Limit hit 02:00" in html
    chart = json.loads(response.context["chart"] and json.dumps(response.context["chart"]))
    assert chart["limit_hit"] == [True, False]


def test_the_chart_data_stacks_blocks_by_machine(populated, member):
    response = login(member).get(URL)
    html = response.content.decode()
    assert 'id="blocks-data"' in html
    chart = response.context["chart"]
    assert [s["label"] for s in chart["series"]] == ["member-desktop", "member-laptop"]
    assert chart["series"][0]["tokens"] == [40_000]
    assert chart["overlap"] == [True]


def test_without_machines_the_page_says_how_to_get_data_in(member):
    html = login(member).get(URL).content.decode()
    assert "No blocks yet" in html
    assert "/machines/#onboarding" in html


def test_the_page_runs_a_bounded_number_of_queries(populated, admin, django_assert_max_num_queries):
    sub = populated.subscriptions["admin"]
    extra = [MachineFactory(owner=admin, subscription=sub, name=f"extra-{n}") for n in range(6)]
    for day in range(1, 6):
        for machine in extra:
            hourly(machine, (NOW - timedelta(days=day)).replace(minute=0))
    recompute_blocks(sub.pk, now=NOW)
    client = login(admin)
    # +1: the page's count of blocks; +1: how many blocks run in all (a few are cards).
    with django_assert_max_num_queries(13):
        response = client.get(URL, {"scope": "team"})
    assert len(response.context["rows"]) == 8


@pytest.fixture
def many_blocks(populated, admin):
    """The admin's account gets a block every 6 hours for 15 days (60 blocks), so the
    history needs two pages."""
    from dashboards.views.blocks import BLOCKS_PER_PAGE

    sub = populated.subscriptions["admin"]
    machine = populated.machines["admin"][0]
    for n in range(1, BLOCKS_PER_PAGE + 11):
        hourly(machine, (NOW - timedelta(hours=6 * n)).replace(minute=0))
    recompute_blocks(sub.pk, now=NOW)
    return sub


def test_the_history_comes_a_page_at_a_time_keeping_the_filters(many_blocks, admin):
    from dashboards.views.blocks import BLOCKS_PER_PAGE

    client = login(admin)
    first = client.get(URL, {"scope": "team", "range": "30d"})
    page = first.context["page"]
    assert page.paginator.count > BLOCKS_PER_PAGE
    assert len(first.context["rows"]) == BLOCKS_PER_PAGE
    starts = [r["block"].start_time for r in first.context["rows"]]
    assert starts == sorted(starts, reverse=True)
    # The chart shows the page's blocks.
    assert len(first.context["chart"]["labels"]) == BLOCKS_PER_PAGE
    assert "?scope=team&amp;range=30d&amp;page=2" in first.content.decode()
    second = client.get(URL, {"scope": "team", "range": "30d", "page": "2"})
    older = second.context["rows"]
    assert len(older) == page.paginator.count - BLOCKS_PER_PAGE
    assert older[0]["block"].start_time < starts[-1]


def test_the_subscription_menu_is_short_but_any_visible_one_can_be_chosen(populated, admin, team_a):
    from tests.conftest import make_member
    from usage.models import Subscription

    others = []
    for n in range(5):
        person = make_member(team_a, f"quiet{n}@a.example", "member")
        others.append(Subscription.default_for(person))
    client = login(admin)
    response = client.get(URL, {"scope": "team"})
    offered = {
        value for value, _ in response.context["filters"]["subscription"].field.widget.choices
    }
    # Own, and those with a block on the page; not the five accounts without blocks.
    assert str(populated.subscriptions["admin"].public_id) in offered
    assert str(populated.subscriptions["member"].public_id) in offered
    assert not offered & {str(s.public_id) for s in others}
    html = response.content.decode()
    menu = html.split('name="subscription"', 1)[1].split("</select>", 1)[0]
    assert menu.count("<option") == len(offered) == 4  # "All subscriptions" and three
    # One outside the menu still validates for someone who may see it, and is then offered.
    chosen = client.get(URL, {"subscription": str(others[0].public_id)})
    assert not chosen.context["filters"].errors
    assert f'value="{others[0].public_id}" selected' in chosen.content.decode()
    # …and the menu still offers the way back to every subscription.
    chosen_menu = chosen.content.decode().split('name="subscription"', 1)[1].split("</select>")[0]
    assert '<option value="">All subscriptions</option>' in chosen_menu
    # The table's subscription names link to their filter.
    member_sub = populated.subscriptions["member"].public_id
    assert f"?scope=team&amp;subscription={member_sub}" in html


def test_a_member_cannot_pick_a_colleagues_subscription_outside_the_menu(populated, member):
    theirs = populated.subscriptions["owner_spare"]
    response = login(member).get(URL, {"subscription": str(theirs.public_id)})
    assert response.context["filters"].errors
    menu = response.content.decode().split('name="subscription"', 1)[1].split("</select>")[0]
    assert f'value="{theirs.public_id}"' not in menu
    assert subscriptions_shown(response) == {"member@a.example"}


def test_the_whole_teams_blocks_are_read_through_a_subquery(populated, admin, team_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.conftest import make_member

    for n in range(30):
        make_member(team_a, f"quiet{n}@a.example", "member")
    with CaptureQueriesContext(connection) as captured:
        response = login(admin).get(URL, {"scope": "team"})
    assert subscriptions_shown(response) == {
        "owner@a.example",
        "admin@a.example",
        "member@a.example",
    }
    reads = [q["sql"] for q in captured.captured_queries if 'FROM "usage_block"' in q["sql"]]
    assert reads
    # A thousand-member team's ids are not sent one by one.
    assert all("IN (SELECT" in sql for sql in reads)


def test_the_menu_lists_own_chosen_and_shown_subscriptions_by_owner_email(populated, admin):
    response = login(admin).get(URL, {"scope": "team"})
    choices = response.context["filters"]["subscription"].field.widget.choices
    labels = [label for value, label in choices if value]
    emails = [
        label.rsplit("(", 1)[1].rstrip(")") if "(" in label else admin.email for label in labels
    ]
    assert emails == sorted(emails)
    assert set(emails) == {"owner@a.example", "admin@a.example", "member@a.example"}
