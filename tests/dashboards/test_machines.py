"""The machines page: who sees which machine, status words, flags, and the manage forms."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from tests.conftest import DEAD_BROKER_URL, celery_broker, login
from tests.dashboards.conftest import NOW
from tests.factories import MachineFactory, daily, session
from usage.models import Machine, SharedRequest
from usage.tasks import refresh_blocks

pytestmark = pytest.mark.django_db

URL = "/machines/"


def names_on_page(response) -> set[str]:
    return {row["machine"].name for row in response.context["rows"]}


def test_anonymous_visitors_are_sent_to_the_login_page():
    response = login(None).get(URL)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_a_member_sees_only_their_own_machines(populated, member):
    response = login(member).get(URL)
    assert response.status_code == 200
    assert names_on_page(response) == {"member-laptop", "member-desktop", "member-server"}
    assert b"admin-laptop" not in response.content


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_see_every_machine_of_their_team_and_none_of_another(populated, cast, role):
    response = login(cast[role]).get(URL)
    names = names_on_page(response)
    assert len(names) == 9
    assert "outsider-box" not in names
    assert b"outsider-box" not in response.content


def test_an_outsider_sees_only_their_own_team(populated, outsider):
    response = login(outsider).get(URL)
    assert names_on_page(response) == {"outsider-box"}


def test_members_see_colleagues_machines_when_the_team_allows_it(populated, member, team_a):
    team_a.members_see_each_other = True
    team_a.save()
    response = login(member).get(URL)
    assert len(names_on_page(response)) == 9
    # Seeing is not managing: no forms for a colleague's machine.
    admin_row = next(r for r in response.context["rows"] if r["machine"].name == "admin-laptop")
    assert admin_row["may_manage"] is False


def test_the_page_runs_a_bounded_number_of_queries(populated, owner, django_assert_max_num_queries):
    for n in range(10):
        MachineFactory(owner=owner, name=f"extra-{n}")
    client = login(owner)
    # +1: allow-list check per request; +1: requests other machines reported first;
    # +1: models ccusage could not price, per machine; +2: the page's counts and the names
    # of the machines its flags name (copies are looked for among all pages).
    with django_assert_max_num_queries(14):
        response = client.get(URL)
    assert len(response.context["rows"]) == 19


def test_status_words_follow_the_last_sync_time():
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    machine = Machine(last_seen_at=now - timedelta(minutes=19))
    assert machine.status(now) == "online"
    machine.last_seen_at = now - timedelta(minutes=21)
    assert machine.status(now) == "idle"
    machine.last_seen_at = now - timedelta(hours=25)
    assert machine.status(now) == "offline"
    machine.last_seen_at = None
    assert machine.status(now) == "offline"
    machine.retired_at = now
    assert machine.status(now) == "retired"


def test_each_machine_shows_its_status_in_words(populated, member):
    desktop = populated.machines["member"][1]
    Machine.objects.filter(pk=desktop.pk).update(
        last_seen_at=datetime.now(UTC) - timedelta(hours=3)
    )
    html = login(member).get(URL).content.decode()
    assert 'class="badge status-online">Online<' in html
    assert 'class="badge status-idle">Idle<' in html


def test_lost_history_is_flagged_with_the_number_of_days(populated, member):
    laptop = populated.machines["member"][0]
    laptop.lost_history_at = datetime.now(UTC)
    laptop.lost_history_days = ["2026-10-01", "2026-10-02"]
    laptop.save()
    html = login(member).get(URL).content.decode()
    assert "Lost history" in html
    assert "no longer had 2 days" in html


def test_a_copied_agent_folder_is_flagged_with_where_both_run(populated, member):
    laptop = populated.machines["member"][0]
    laptop.hostname, laptop.os_user = "pc1.local", "dev"
    laptop.save()
    copy = MachineFactory(
        owner=member,
        name=laptop.name,
        subscription=laptop.subscription,
        hostname="pc2.local",
        os_user="dev2",
        copied_from=laptop,
    )
    response = login(member).get(URL)
    html = response.content.decode()
    assert "Copied folder" in html
    assert "from a copy of the agent folder of member-laptop (pc1.local, dev)" in html
    # Two machines of one name stay apart by hostname and OS user.
    copy_card = html[html.index(f'id="machine-{copy.uuid}"') :]
    assert "pc2.local" in copy_card and "dev2" in copy_card
    laptop_card = html[html.index(f'id="machine-{laptop.uuid}"') :]
    assert "Copied folder" not in laptop_card[: laptop_card.index("</li>")]


def test_a_copy_of_a_machine_the_viewer_may_not_see_does_not_name_it(populated, member, owner):
    original = populated.machines["owner"][0]
    MachineFactory(owner=member, name="member-copy", copied_from=original)
    html = login(member).get(URL).content.decode()
    assert "from a copy of another machine's agent folder" in html
    assert original.name not in html


def test_requests_another_machine_reported_first_are_listed_per_machine(populated, member):
    laptop, desktop, _server = populated.machines["member"]
    for key in range(3):
        SharedRequest.objects.create(machine=desktop, owner=laptop, key=key, hour=NOW)
    rows = {r["machine"].name: r for r in login(member).get(URL).context["rows"]}
    desktop_findings = rows["member-desktop"]["findings"]
    assert (desktop_findings.shared_requests, desktop_findings.shared_with) == (
        3,
        ["member-laptop"],
    )
    assert rows["member-laptop"]["findings"].shared_requests == 0
    html = login(member).get(URL).content.decode()
    assert "3 requests in its logs were reported first by member-laptop; counted once" in html


def test_a_shared_request_of_a_machine_the_viewer_may_not_see_does_not_name_it(populated, member):
    laptop = populated.machines["member"][0]
    theirs = populated.machines["owner"][0]
    SharedRequest.objects.create(machine=laptop, owner=theirs, key=1, hour=NOW)
    html = login(member).get(URL).content.decode()
    assert "1 request in its logs was reported first by another machine" in html
    assert theirs.name not in html


def test_a_session_reported_by_two_machines_is_flagged_on_both(populated, member):
    laptop, desktop, _server = populated.machines["member"]
    for machine in (laptop, desktop):
        session(
            machine,
            project=populated.projects[0],
            last_activity=NOW,
            session_id="copied-session",
            cost="2.00",
        )
    response = login(member).get(URL)
    rows = {r["machine"].name: r for r in response.context["rows"]}
    assert rows["member-laptop"]["findings"].duplicate_with == ["member-desktop"]
    assert rows["member-desktop"]["findings"].duplicate_with == ["member-laptop"]
    assert rows["member-server"]["findings"].duplicate_sessions == 0
    html = response.content.decode()
    assert "1 session also reported by member-desktop" in html
    assert "($2.00 counted twice)" in html


def test_the_onboarding_panel_shows_the_exact_commands(member, settings, tmp_path):
    settings.SITE_URL = "https://telemetry.example.com"
    settings.VAR_DIR = tmp_path
    html = login(member).get(URL).content.decode()
    assert "Add your first machine" in html
    wheel = "https://telemetry.example.com/agent/claude_telemetry-0.1.0-py3-none-any.whl"
    assert f"pipx install {wheel}" in html
    # Without pipx: a venv of its own, since PEP 668 systems refuse `pip install --user`.
    assert f"~/.local/share/claude-telemetry/bin/pip install {wheel}" in html
    assert "pip install --user http" not in html
    assert "Node.js 20 or later" in html and "ccusage comes with it" not in html
    assert (
        "claude-telemetry setup --server https://telemetry.example.com --token &lt;token&gt;"
        in html
    )
    assert "claude-telemetry sync" in html
    assert "claude-telemetry install-service" in html


# --- Rename, move, retire ---------------------------------------------------------------------


def rename_url(machine) -> str:
    return reverse("machine_rename", args=[machine.uuid])


def test_an_owner_renames_their_machine(populated, member):
    laptop = populated.machines["member"][0]
    response = login(member).post(rename_url(laptop), {"name": "  work laptop "})
    assert response.status_code == 302
    laptop.refresh_from_db()
    assert laptop.name == "work laptop"


def test_an_admin_renames_a_members_machine(populated, admin):
    laptop = populated.machines["member"][0]
    login(admin).post(rename_url(laptop), {"name": "renamed by admin"})
    laptop.refresh_from_db()
    assert laptop.name == "renamed by admin"


@pytest.mark.parametrize("role", ["member", "outsider"])
def test_others_cannot_rename_a_machine_and_get_404(populated, cast, role):
    target = populated.machines["admin"][0]
    response = login(cast[role]).post(rename_url(target), {"name": "mine now"})
    assert response.status_code == 404
    target.refresh_from_db()
    assert target.name == "admin-laptop"


def test_a_colleague_who_may_see_a_machine_still_cannot_rename_it(populated, member, team_a):
    team_a.members_see_each_other = True
    team_a.save()
    target = populated.machines["admin"][0]
    assert login(member).post(rename_url(target), {"name": "x"}).status_code == 404


def test_anonymous_rename_is_sent_to_login_and_changes_nothing(populated):
    target = populated.machines["member"][0]
    response = login(None).post(rename_url(target), {"name": "x"})
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.name == "member-laptop"


def test_an_empty_name_is_refused_with_a_message(populated, member):
    laptop = populated.machines["member"][0]
    response = login(member).post(rename_url(laptop), {"name": "   "}, follow=True)
    assert "must be 1 to 100 characters" in response.content.decode()
    laptop.refresh_from_db()
    assert laptop.name == "member-laptop"


def test_rename_needs_a_post(populated, member):
    laptop = populated.machines["member"][0]
    assert login(member).get(rename_url(laptop)).status_code == 405


def test_a_machine_moves_to_another_subscription_of_its_owner(
    populated, owner, django_capture_on_commit_callbacks
):
    laptop = populated.machines["owner"][0]
    spare = populated.subscriptions["owner_spare"]
    with django_capture_on_commit_callbacks(execute=True):
        response = login(owner).post(
            reverse("machine_move", args=[laptop.uuid]), {"subscription": str(spare.public_id)}
        )
    assert response.status_code == 302
    laptop.refresh_from_db()
    assert laptop.subscription == spare
    # Blocks follow the machine: its hours now belong to the spare subscription's blocks.
    assert spare.blocks.filter(contributions__machine=laptop).exists()
    assert (
        not populated.subscriptions["owner"].blocks.filter(contributions__machine=laptop).exists()
    )


def test_a_move_while_the_broker_is_down_is_saved_and_the_refresh_repairs_the_blocks(
    populated, owner, django_capture_on_commit_callbacks, caplog
):
    laptop = populated.machines["owner"][0]
    spare = populated.subscriptions["owner_spare"]
    with celery_broker(DEAD_BROKER_URL), django_capture_on_commit_callbacks(execute=True):
        response = login(owner).post(
            reverse("machine_move", args=[laptop.uuid]), {"subscription": str(spare.public_id)}
        )
    assert response.status_code == 302
    laptop.refresh_from_db()
    assert laptop.subscription == spare
    assert "could not queue usage.tasks.recompute_subscription_blocks" in caplog.text
    # The beat's refresh finds the subscriptions out of step and recomputes them.
    assert refresh_blocks()["repaired"] == 2
    assert spare.blocks.filter(contributions__machine=laptop).exists()


@pytest.mark.parametrize("value", ["not-a-uuid", "", "00000000-0000-0000-0000-000000000000"])
def test_moving_to_an_unknown_subscription_changes_nothing(populated, owner, value):
    laptop = populated.machines["owner"][0]
    response = login(owner).post(
        reverse("machine_move", args=[laptop.uuid]), {"subscription": value}, follow=True
    )
    assert "Choose one of the owner" in response.content.decode()
    laptop.refresh_from_db()
    assert laptop.subscription == populated.subscriptions["owner"]


def test_a_machine_cannot_move_to_someone_elses_subscription(populated, owner):
    laptop = populated.machines["owner"][0]
    theirs = populated.subscriptions["member"]
    login(owner).post(
        reverse("machine_move", args=[laptop.uuid]), {"subscription": str(theirs.public_id)}
    )
    laptop.refresh_from_db()
    assert laptop.subscription == populated.subscriptions["owner"]


def test_retiring_and_restoring_a_machine(populated, member):
    laptop = populated.machines["member"][0]
    client = login(member)
    url = reverse("machine_retire", args=[laptop.uuid])
    client.post(url)
    laptop.refresh_from_db()
    assert laptop.retired_at is not None
    html = client.get(URL).content.decode()
    assert 'class="badge status-retired">Retired<' in html
    client.post(url, {"action": "restore"})
    laptop.refresh_from_db()
    assert laptop.retired_at is None


def test_an_outsider_cannot_retire_a_machine(populated, outsider):
    laptop = populated.machines["member"][0]
    response = login(outsider).post(reverse("machine_retire", args=[laptop.uuid]))
    assert response.status_code == 404
    laptop.refresh_from_db()
    assert laptop.retired_at is None


ACTIONS = [
    ("machine_rename", {"name": "taken"}),
    ("machine_move", {"subscription": "00000000-0000-0000-0000-000000000000"}),
    ("machine_retire", {}),
]


@pytest.mark.parametrize(("action", "data"), ACTIONS)
@pytest.mark.parametrize("role", ["member", "outsider"])
def test_no_action_reaches_a_machine_that_is_not_yours(populated, cast, role, action, data):
    target = populated.machines["owner"][0]
    response = login(cast[role]).post(reverse(action, args=[target.uuid]), data)
    assert response.status_code == 404
    target.refresh_from_db()
    assert (target.name, target.retired_at) == ("owner-laptop", None)


@pytest.mark.parametrize(("action", "data"), ACTIONS)
def test_anonymous_actions_are_sent_to_login(populated, action, data):
    target = populated.machines["member"][0]
    response = login(None).post(reverse(action, args=[target.uuid]), data)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


@pytest.mark.parametrize(("action", "data"), ACTIONS)
def test_an_unknown_machine_is_404(populated, owner, action, data):
    url = reverse(action, args=["00000000-0000-0000-0000-000000000000"])
    assert login(owner).post(url, data).status_code == 404


@pytest.mark.parametrize(
    ("role", "status"), [("member", 200), ("admin", 200), ("owner", 200), ("outsider", 404)]
)
def test_retiring_a_machine_is_confirmed_by_those_who_manage_it(populated, cast, role, status):
    laptop = populated.machines["member"][0]
    response = login(cast[role]).get(reverse("machine_retire_confirm", args=[laptop.uuid]))
    assert response.status_code == status
    if status == 200:
        html = response.content.decode()
        assert f"Retire the machine “{laptop.name}”?" in html
        assert "no alert is sent when its agent stops syncing" in html
        # What retiring does to the agent (usage.ingest refuses a retired machine's sync).
        assert "A sync from it is refused" in html and "still accepted" not in html
        assert f'action="{reverse("machine_retire", args=[laptop.uuid])}"' in html
    laptop.refresh_from_db()
    assert laptop.retired_at is None


def test_a_member_cannot_confirm_retiring_a_colleagues_machine(populated, member):
    theirs = populated.machines["owner"][0]
    url = reverse("machine_retire_confirm", args=[theirs.uuid])
    assert login(member).get(url).status_code == 404
    assert login(None).get(url).status_code == 302


def test_the_machines_page_links_to_the_retire_confirmation(populated, member):
    laptop = populated.machines["member"][0]
    html = login(member).get(URL).content.decode()
    assert reverse("machine_retire_confirm", args=[laptop.uuid]) in html


def test_a_model_ccusage_could_not_price_is_flagged_on_its_machine(populated, member):
    _laptop, desktop, _server = populated.machines["member"]
    daily(desktop, NOW.date(), project=populated.projects[0], model="model-nobody-priced", cost="0")
    rows = {r["machine"].name: r for r in login(member).get(URL).context["rows"]}
    assert rows["member-desktop"]["findings"].unpriced_models == ["model-nobody-priced"]
    assert rows["member-laptop"]["findings"].unpriced_models == []
    html = login(member).get(URL).content.decode()
    # An id model_name does not know is shown as it is, without a tooltip.
    assert (
        '<span class="model">model-nobody-priced</span>: ccusage could not price this model' in html
    )


def test_each_card_acts_on_its_own_machine(populated, admin):
    html = login(admin).get(URL).content.decode()
    for machine in Machine.objects.filter(team=admin.team):
        # From this card's start to the next card's.
        card = html.split(f'id="machine-{machine.uuid}"', 1)[1].split('class="card machine"')[0]
        assert reverse("machine_rename", args=[machine.uuid]) in card
        retire = "machine_retire" if machine.retired_at else "machine_retire_confirm"
        assert reverse(retire, args=[machine.uuid]) in card
        others = Machine.objects.exclude(pk=machine.pk)
        assert not any(str(other.uuid) in card for other in others)
