"""Slack, Discord and Microsoft Teams channels: native bodies checked against each service's
documented shape (tests/budgets/chat_shapes.py) by real HTTP receivers on loopback, and the
delivery rules every channel follows (once, retries, disabling, the SSRF guard, send test)."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from budgets import discord, notify, slack, teams
from budgets.chat import Card, Section
from budgets.models import Channel, Delivery
from tests.budgets.chat_shapes import PROBLEMS, all_text, discord_embed_chars
from tests.budgets.conftest import spend
from tests.factories import chat_channel, machine_for, make_budget, project_for

pytestmark = pytest.mark.django_db

KINDS = ["slack", "discord", "teams"]
NOV_20 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
Status = Delivery.Status


@pytest.fixture
def clock():
    with time_machine.travel(NOV_20, tick=True) as traveller:
        yield traveller


@pytest.fixture
def crossed(team_a, member, admin, run, clock):
    """A $100 team budget at 95 %: $60 by the member, $35 by the admin, in two projects."""

    def _crossed(*channels, name="API server"):
        make_budget(
            team_a, "100", channels=channels, name=name, thresholds=[90], forecast_alerts=False
        )
        api = project_for(team_a, "-src-api", display_name="api-server")
        web = project_for(team_a, "-src-web", display_name="web-app")
        spend(machine_for(member), date(2026, 11, 18), "60", project=api)
        spend(machine_for(admin, name="desk"), date(2026, 11, 19), "35", project=web)
        run(team_a)

    return _crossed


@pytest.mark.parametrize("kind", KINDS)
def test_a_crossed_threshold_arrives_in_the_native_shape_with_what_how_much_and_who(
    kind, team_a, chat_receiver, crossed, member
):
    channel = chat_channel(team_a, kind, chat_receiver.url())
    crossed(channel)
    (body,) = chat_receiver.bodies
    assert PROBLEMS[kind](body) == []
    text = all_text(body)
    assert "Budget 'API server' at 95%" in text  # what crossed
    assert "$95.00 of $100.00" in text  # how much
    assert "90%" in text  # the threshold
    assert f"{member.display_name}: $60.00" in text  # by whom, biggest first
    assert text.index(member.display_name) < text.index("$35.00")
    assert "http://testserver/budgets/" in text or "/budgets/" in text  # a link
    delivery = Delivery.objects.get()
    assert delivery.status == Status.SENT
    assert delivery.attempts == 1
    assert chat_receiver.headers[0]["content-type"] == "application/json"
    assert "webhook-signature" not in chat_receiver.headers[0]


def test_every_channel_of_one_alert_names_the_same_top_spenders(team_a, chat_receiver, crossed):
    crossed(*(chat_channel(team_a, kind, chat_receiver.url(f"/{kind}")) for kind in KINDS))
    assert len(chat_receiver.bodies) == 3
    spenders = [t for t in (all_text(b) for b in chat_receiver.bodies)]
    assert all("$60.00" in t and "$35.00" in t for t in spenders)


def huge_card() -> Card:
    long = "x" * 5000
    return Card(
        title="T" * 400,
        summary=long,
        link="https://telemetry.example/budgets/",
        link_label="L" * 120,
        context="c" * 3000,
        timestamp=NOV_20,
        level="critical",
        facts=[(f"label {i} " + "y" * 300, "v" * 3000) for i in range(40)],
        sections=[Section(f"section {i}", ["line " + "z" * 200] * 30) for i in range(60)],
    )


@pytest.mark.parametrize(
    ("kind", "render"),
    [("slack", slack.render), ("discord", discord.render), ("teams", teams.render)],
)
def test_oversized_content_is_cut_to_each_services_limits(kind, render):
    body = render(huge_card())
    assert PROBLEMS[kind](body) == []


def test_discord_counts_every_embed_character_against_6000():
    (embed,) = discord.render(huge_card())["embeds"]
    assert discord_embed_chars(embed) <= 6000
    assert embed["title"].endswith("…") and len(embed["title"]) == 256


def test_names_cannot_mention_everyone_or_forge_links(team_a, chat_receiver, crossed):
    slack_channel = chat_channel(team_a, "slack", chat_receiver.url("/slack"))
    discord_channel = chat_channel(team_a, "discord", chat_receiver.url("/discord"))
    crossed(slack_channel, discord_channel, name="<!channel> @everyone <https://evil.example|x>")
    slack_body, discord_body = sorted(chat_receiver.bodies, key=lambda b: "blocks" not in b)
    mrkdwn = all_text([b for b in slack_body["blocks"] if b["type"] != "header"])
    assert "<!channel>" not in mrkdwn and "<https://evil" not in mrkdwn
    assert "&lt;!channel&gt;" in mrkdwn
    assert "<!channel>" not in slack_body["text"]
    assert discord_body["allowed_mentions"] == {"parse": []}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("code", [404, 403, 410])
def test_a_deleted_webhook_fails_at_once_and_disables_the_channel(
    kind, code, team_a, chat_receiver, crossed
):
    chat_receiver.answer(code)
    channel = chat_channel(team_a, kind, chat_receiver.url())
    crossed(channel)
    delivery = Delivery.objects.get()
    assert delivery.status == Status.FAILED
    assert delivery.attempts == 1
    channel.refresh_from_db()
    assert not channel.is_enabled
    assert str(code) in channel.disabled_reason
    assert len(chat_receiver.bodies) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_server_error_is_retried_with_backoff_and_sent_once(
    kind, team_a, chat_receiver, crossed, clock, django_capture_on_commit_callbacks
):
    chat_receiver.answer(500, 429)
    crossed(chat_channel(team_a, kind, chat_receiver.url()))
    delivery = Delivery.objects.get()
    assert delivery.status == Status.PENDING
    assert delivery.next_attempt_at > NOV_20
    for _ in range(2):
        clock.shift(timedelta(hours=1))
        with django_capture_on_commit_callbacks(execute=True):
            notify.sweep()
    delivery.refresh_from_db()
    assert delivery.status == Status.SENT
    assert delivery.attempts == 3
    assert len(chat_receiver.bodies) == 3
    # A delivery that is sent is never sent again, however often it is queued.
    assert notify.deliver(delivery.pk) is None
    assert len(chat_receiver.bodies) == 3
    assert Channel.objects.get().consecutive_failures == 0


def test_repeated_failures_disable_a_chat_channel(
    team_a, chat_receiver, crossed, clock, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 3
    chat_receiver.ok_status = 503
    crossed(chat_channel(team_a, "slack", chat_receiver.url()))
    for _ in range(3):
        clock.shift(timedelta(hours=1))
        with django_capture_on_commit_callbacks(execute=True):
            notify.sweep()
    delivery = Delivery.objects.get()
    assert delivery.status == Status.FAILED
    assert delivery.attempts == 3
    channel = Channel.objects.get()
    assert channel.disabled_reason == "3 failed attempts in a row."


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/services/x",
        "http://[::ffff:127.0.0.1]:{port}/services/x",
        "http://[::1]:{port}/services/x",
        "http://10.0.0.8/services/x",
    ],
)
def test_private_addresses_are_refused_and_disable_the_channel(
    url, team_a, chat_receiver, crossed, settings
):
    channel = chat_channel(team_a, "discord", url.format(port=chat_receiver.port))
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = False
    crossed(channel)
    assert chat_receiver.bodies == []
    delivery = Delivery.objects.get()
    assert delivery.status == Status.FAILED
    assert "Refused webhook URL" in delivery.last_error
    channel.refresh_from_db()
    assert channel.disabled_reason == "The URL points to a private address."


@pytest.mark.parametrize("kind", KINDS)
def test_send_test_posts_a_native_test_message(kind, client, admin, team_a, chat_receiver):
    channel = chat_channel(team_a, kind, chat_receiver.url(), name="Ops room")
    client.force_login(admin)
    response = client.post(reverse("channel_test", args=[channel.public_id]), follow=True)
    assert "<dt>Last test</dt><dd>sent " in response.content.decode()
    (body,) = chat_receiver.bodies
    assert PROBLEMS[kind](body) == []
    assert "Test message from claude-telemetry channel 'Ops room'" in all_text(body)


def test_a_slow_chat_service_fails_at_the_deadline(team_a, chat_receiver, settings):
    import threading
    import time

    from budgets.webhooks import WebhookError

    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    hold = threading.Event()
    # Accept the connection but never answer: a listening socket that is never read.
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        started = time.monotonic()
        with pytest.raises(WebhookError, match="Timed out after 1 s"):
            slack.send(f"http://127.0.0.1:{sock.getsockname()[1]}/x", huge_card())
        assert time.monotonic() - started < 2.5
    finally:
        hold.set()
        sock.close()


@pytest.mark.parametrize("role", ["member", "outsider"])
def test_only_admins_of_the_team_send_tests_through_a_chat_channel(
    role, client, cast, team_a, chat_receiver
):
    channel = chat_channel(team_a, "teams", chat_receiver.url())
    client.force_login(cast[role])
    response = client.post(reverse("channel_test", args=[channel.public_id]))
    assert response.status_code == (403 if role == "member" else 404)
    assert chat_receiver.bodies == []
