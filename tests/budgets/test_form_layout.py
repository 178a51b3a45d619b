"""Budget and channel forms in the dashboard filter forms' layout (issue 14): label above the
field, help text below it, no empty groups, no `---------`; a new channel can be attached to
budgets as it is made, and chat channels are made from the same form."""

import re

import pytest
from django.urls import reverse

from budgets.models import Budget, Channel
from tests.factories import make_budget

pytestmark = pytest.mark.django_db


def field_html(html: str, name: str) -> str:
    match = re.search(rf'<div class="field[^"]*" data-field="{name}">(.*?)\n  </div>', html, re.S)
    assert match, f"no field {name}"
    return match.group(1)


@pytest.mark.parametrize("url_name", ["budget_create", "channel_create"])
def test_labels_come_first_and_help_text_after_the_field(client, admin, url_name):
    make_budget(admin.team, "10", name="Existing")
    client.force_login(admin)
    html = client.get(reverse(url_name)).content.decode()
    assert "---------" not in html
    name = field_html(html, "name")
    assert name.index("<label") < name.index("<input")
    for field in ("thresholds",) if url_name == "budget_create" else ("url", "addresses"):
        part = field_html(html, field)
        control = re.search(r"<(input|textarea|select)", part).start()
        assert part.index("<label") < control < part.index('class="hint"'), field
        assert f'aria-describedby="id_{field}_helptext"' in part
    # Every group has a title and something to choose.
    for group in re.findall(r"<fieldset.*?</fieldset>", html, re.S):
        assert "<legend" in group and "<input" in group


def test_a_list_with_nothing_to_choose_says_so_instead_of_an_empty_group(client, admin):
    client.force_login(admin)  # no channels yet
    html = client.get(reverse("budget_create")).content.decode()
    assert "None to choose from yet." in field_html(html, "channels")
    assert 'name="channels"' not in html


def test_selects_name_what_to_choose(client, admin):
    client.force_login(admin)
    html = client.get(reverse("budget_create")).content.decode()
    assert '<option value="" selected>Choose a project</option>' in html
    assert '<option value="" selected>Choose a member</option>' in html


def test_errors_show_under_their_field(client, admin):
    client.force_login(admin)
    response = client.post(reverse("channel_create"), {"name": "Ops", "kind": "slack"})
    assert response.status_code == 400
    part = field_html(response.content.decode(), "url")
    assert part.index("<input") < part.index("A Slack channel needs a URL.")


@pytest.mark.parametrize("kind", ["slack", "discord", "teams"])
def test_a_new_chat_channel_is_attached_to_budgets_as_it_is_made(client, admin, team_a, kind):
    first = make_budget(team_a, "10", name="First")
    make_budget(team_a, "20", name="Second")
    client.force_login(admin)
    response = client.post(
        reverse("channel_create"),
        {
            "name": "Ops room",
            "kind": kind,
            "url": "https://chat.example/hooks/abc",
            "budgets": [first.pk],
            "weekly_digest": "on",
        },
    )
    assert response.status_code == 302
    channel = Channel.objects.get(name="Ops room")
    assert (channel.kind, channel.url, channel.weekly_digest) == (
        kind,
        "https://chat.example/hooks/abc",
        True,
    )
    assert channel.secret == ""  # only signed webhooks have one
    assert list(channel.budgets.all()) == [first]
    # Editing shows the attachment and can undo it.
    edit = client.get(reverse("channel_edit", args=[channel.public_id])).content.decode()
    assert re.search(rf'value="{first.pk}"[^>]*checked', edit)
    client.post(
        reverse("channel_edit", args=[channel.public_id]),
        {"name": "Ops room", "url": "https://chat.example/hooks/abc"},
    )
    assert list(channel.budgets.all()) == []


def test_another_teams_budget_cannot_be_attached(client, admin, team_b):
    theirs = make_budget(team_b, "10", name="Theirs")
    client.force_login(admin)
    response = client.post(
        reverse("channel_create"),
        {"name": "Ops", "kind": "slack", "url": "https://chat.example/x", "budgets": [theirs.pk]},
    )
    assert response.status_code == 400
    assert not Channel.objects.filter(name="Ops").exists()
    assert not Budget.objects.get(pk=theirs.pk).channels.exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1/hook", "http://[::ffff:10.0.0.1]/hook"])
def test_a_chat_channel_to_a_private_address_is_refused_in_the_form(client, admin, url, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = False
    client.force_login(admin)
    response = client.post(
        reverse("channel_create"), {"name": "Ops", "kind": "discord", "url": url}
    )
    assert response.status_code == 400
    assert "This URL is refused" in response.content.decode()
    assert "WEBHOOK_ALLOW_PRIVATE_IPS=1" in response.content.decode()  # the operator's way out
