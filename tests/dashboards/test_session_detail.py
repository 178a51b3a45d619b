"""One session's page, reached from the sessions list, the blocks page and the search; who may
open it (the machine's owner, admins, colleagues only when the team shares figures)."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from tests.conftest import login
from tests.dashboards.conftest import NOW
from tests.factories import session
from usage.models import Block, SessionUsage

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _at_now():
    with time_machine.travel(NOW, tick=False):
        yield


def newest(machine) -> SessionUsage:
    return SessionUsage.objects.filter(machine=machine).order_by("-last_activity").first()


def url_of(item: SessionUsage) -> str:
    return reverse("session_detail", args=[item.machine.uuid, item.session_id])


def test_the_owner_sees_their_session(populated, member):
    machine = populated.machines["member"][0]
    item = newest(machine)
    response = login(member).get(url_of(item))
    assert response.status_code == 200
    html = response.content.decode()
    assert item.session_id in html
    assert item.project.display_name in html
    assert '<dd id="session-machine">member-laptop</dd>' in html
    assert 'title="claude-sonnet-4-5-20250929">Claude Sonnet 4.5</span>' in html
    assert '<span class="value" id="session-cost">$0.75</span>' in html
    # 14:00 to 14:30 on the 24th (the factory's 30 minutes before its last activity).
    assert response.context["duration"] == timedelta(minutes=30)
    # The machine's 13:00 hour is outside the session; the block from 13:00 covers it.
    assert response.context["hours"] == []
    assert [row["block"].start_time for row in response.context["blocks"]] == [
        NOW.replace(hour=13, minute=0)
    ]


def test_the_hours_of_the_machine_in_the_session_are_listed(populated, member):
    machine = populated.machines["member"][1]
    item = newest(machine)  # 13:00 to 13:30, the hour the fixture's hourly bucket covers
    hours = login(member).get(url_of(item)).context["hours"]
    assert [h.hour for h in hours] == [NOW.replace(hour=13, minute=0)]


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_open_a_members_session(populated, cast, role):
    item = newest(populated.machines["member"][0])
    response = login(cast[role]).get(url_of(item))
    assert response.status_code == 200
    assert "member-laptop (member@a.example)" in response.content.decode()


def test_a_member_cannot_open_a_colleagues_session_unless_the_team_shares(
    populated, member, team_a
):
    item = newest(populated.machines["admin"][0])
    assert login(member).get(url_of(item)).status_code == 404
    team_a.members_see_each_other = True
    team_a.save()
    assert login(member).get(url_of(item)).status_code == 200


def test_an_outsider_gets_a_404(populated, outsider):
    item = newest(populated.machines["member"][0])
    assert login(outsider).get(url_of(item)).status_code == 404


def test_anonymous_visitors_are_sent_to_the_login_page(populated):
    item = newest(populated.machines["member"][0])
    response = login(None).get(url_of(item))
    assert response.status_code == 302


def test_an_unknown_session_is_a_404(populated, member):
    machine = populated.machines["member"][0]
    missing = reverse("session_detail", args=[machine.uuid, "no-such-session"])
    assert login(member).get(missing).status_code == 404


def test_copies_are_the_same_id_on_other_visible_machines(populated, member, admin):
    original = newest(populated.machines["member"][0])
    session(populated.machines["member"][2], original.session_id, last_activity=NOW)
    session(populated.machines["admin"][0], original.session_id, last_activity=NOW)
    mine = login(member).get(url_of(original)).context["copies"]
    assert [c.machine.name for c in mine] == ["member-server"]
    everyone = login(admin).get(url_of(original)).context["copies"]
    assert sorted(c.machine.name for c in everyone) == ["admin-laptop", "member-server"]


def test_the_sessions_list_links_each_session(populated, member):
    html = login(member).get("/sessions/").content.decode()
    item = newest(populated.machines["member"][0])
    assert f'href="{url_of(item)}"' in html


def test_a_session_id_in_the_search_opens_the_session(populated, member):
    item = newest(populated.machines["member"][0])
    response = login(member).get("/sessions/", {"q": item.session_id})
    assert response.status_code == 302
    assert response["Location"] == url_of(item)


def test_the_search_finds_by_id_prefix_or_project(populated, member, outsider):
    client = login(member)
    item = newest(populated.machines["member"][0])
    by_prefix = client.get("/sessions/", {"q": item.session_id[:8]})
    assert [s.pk for s in by_prefix.context["page"].object_list] == [item.pk]
    project = populated.projects[1]
    by_project = client.get("/sessions/", {"q": project.display_name[:5]})
    found = list(by_project.context["page"].object_list)
    assert found and {s.project_id for s in found} == {project.pk}
    # An outsider's search never reaches team A's sessions.
    other = login(outsider).get("/sessions/", {"q": item.session_id})
    assert other.status_code == 200
    assert list(other.context["page"].object_list) == []


def test_a_block_links_to_the_sessions_in_it(populated, member):
    response = login(member).get("/blocks/")
    row = response.context["rows"][0]
    link = f"/sessions/?block={row['link']}"
    assert f'href="{link}"' in response.content.decode()
    listed = login(member).get("/sessions/", {"block": row["link"]})
    # The block (13:00-18:00) has the laptop's and desktop's sessions of the 24th.
    names = sorted(s.machine.name for s in listed.context["page"].object_list)
    assert names == ["member-desktop", "member-laptop"]
    assert listed.context["totals"]["cost_usd"] == Decimal("1.5")


def test_another_teams_block_is_a_message_not_its_sessions(populated, member, outsider):
    block = Block.objects.filter(subscription__owner=member).first()
    link = f"{block.subscription.public_id}/{int(block.start_time.timestamp())}"
    response = login(outsider).get("/sessions/", {"block": link})
    assert response.status_code == 200
    assert "block" in response.context["filters"].errors
    assert not any(s.machine.owner_id == member.pk for s in response.context["page"].object_list)
    broken = login(member).get("/sessions/", {"block": "nonsense"})
    assert "block" in broken.context["filters"].errors


def test_a_session_claude_code_exported_says_whose_prices_its_cost_uses(populated, member):
    from usage.models import IngestPath, Machine

    machine = populated.machines["member"][0]
    item = newest(machine)
    html = login(member).get(url_of(item)).content.decode()
    assert "ccusage's prices" in html
    Machine.objects.filter(pk=machine.pk).update(ingest_path=IngestPath.OTLP)
    html = login(member).get(url_of(item)).content.decode()
    assert "as Claude Code reported it" in html and "ccusage" not in html
