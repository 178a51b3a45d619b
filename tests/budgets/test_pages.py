"""The Budgets and Channels pages: who may see and change what."""

import time
import uuid
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from budgets import tasks
from budgets.models import Budget, Channel, Delivery, QuotaAlertSetting, StaleAgentSetting
from tests.budgets.conftest import spend
from tests.factories import email_channel, machine_for, make_budget, project_for, webhook_channel
from usage.models import Subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(team_a, team_b, admin, member, owner, outsider):
    project = project_for(team_a, "-home-dev-src-webapp", display_name="webapp")
    mail = email_channel(team_a, members=[admin])
    return {
        "team": make_budget(team_a, "500", name="Team month", channels=[mail]),
        "project": make_budget(team_a, "100", name="Webapp", scope="project", project=project),
        "mine": make_budget(team_a, "50", name="Member cap", scope="member", member=member),
        "admins": make_budget(team_a, "80", name="Admin cap", scope="member", member=admin),
        "other_team": make_budget(team_b, "999", name="Team B month"),
        "channel": mail,
        "other_channel": email_channel(team_b, addresses=["b@b.example"]),
        "project_obj": project,
    }


ADMIN_PAGES = ["budget_create", "channels", "channel_create"]
OBJECT_PAGES = [
    ("budget_edit", "team"),
    ("budget_delete", "team"),
    ("channel_edit", "channel"),
    ("channel_delete", "channel"),
]
POST_ACTIONS = ["channel_test", "channel_enable", "channel_rotate_secret"]


def flashed(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def names_on(response) -> list[str]:
    return [s.budget.name for s in response.context["statuses"]]


# --- anonymous --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["budgets", *ADMIN_PAGES])
def test_anonymous_visitors_are_sent_to_the_login_page(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_anonymous_posts_change_nothing(client, objects):
    response = client.post(reverse("budget_delete", args=[objects["team"].public_id]))
    assert response.status_code == 302
    assert Budget.objects.filter(pk=objects["team"].pk).exists()


# --- members -----------------------------------------------------------------------------------


def test_members_see_team_project_and_their_own_budgets_read_only(client, member, objects):
    client.force_login(member)
    response = client.get(reverse("budgets"))
    assert response.status_code == 200
    assert sorted(names_on(response)) == ["Member cap", "Team month", "Webapp"]
    html = response.content.decode()
    assert reverse("budget_create") not in html
    assert reverse("budget_edit", args=[objects["team"].public_id]) not in html
    assert "<progress" in html
    assert 'style="' not in html, "CSP forbids inline styles"


def test_members_see_each_others_budgets_when_the_team_allows_it(client, member, objects, team_a):
    team_a.members_see_each_other = True
    team_a.save()
    client.force_login(member)
    response = client.get(reverse("budgets"))
    assert "Admin cap" in names_on(response)


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_members_may_not_open_the_management_pages(client, member, objects, name):
    client.force_login(member)
    assert client.get(reverse(name)).status_code == 403


@pytest.mark.parametrize(("name", "key"), OBJECT_PAGES)
def test_members_may_not_change_or_delete_budgets_and_channels(client, member, objects, name, key):
    client.force_login(member)
    target = objects[key]
    assert client.get(reverse(name, args=[target.public_id])).status_code == 403
    assert client.post(reverse(name, args=[target.public_id]), {"name": "x"}).status_code == 403
    assert type(target).objects.get(pk=target.pk).name == target.name


def test_members_may_not_create_budgets_by_posting(client, member, objects):
    client.force_login(member)
    response = client.post(
        reverse("budget_create"),
        {"name": "Sneaky", "scope": "team", "period": "month", "amount_usd": "1"},
    )
    assert response.status_code == 403
    assert not Budget.objects.filter(name="Sneaky").exists()


@pytest.mark.parametrize("name", POST_ACTIONS)
def test_members_may_not_use_channel_actions(client, member, objects, name):
    client.force_login(member)
    url = reverse(name, args=[objects["channel"].public_id])
    assert client.post(url).status_code == 403


# --- outsiders -----------------------------------------------------------------------------------


def test_outsiders_see_only_their_own_teams_budgets(client, outsider, objects):
    client.force_login(outsider)
    assert names_on(client.get(reverse("budgets"))) == ["Team B month"]


@pytest.mark.parametrize(("name", "key"), OBJECT_PAGES)
def test_other_teams_objects_are_404_even_for_an_owner(client, outsider, objects, name, key):
    client.force_login(outsider)
    url = reverse(name, args=[objects[key].public_id])
    assert client.get(url).status_code == 404
    assert client.post(url, {"name": "taken"}).status_code == 404
    assert type(objects[key]).objects.filter(pk=objects[key].pk).exists()


@pytest.mark.parametrize("name", POST_ACTIONS)
def test_other_teams_channels_are_404_for_actions(client, outsider, objects, name):
    client.force_login(outsider)
    assert client.post(reverse(name, args=[objects["channel"].public_id])).status_code == 404


def test_an_unknown_id_is_404(client, admin, objects):
    client.force_login(admin)
    assert client.get(reverse("budget_edit", args=[uuid.uuid4()])).status_code == 404


# --- admins and owners -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_admins_and_owners_see_every_budget_of_their_team(client, cast, objects, role):
    client.force_login(cast[role])
    response = client.get(reverse("budgets"))
    assert sorted(names_on(response)) == ["Admin cap", "Member cap", "Team month", "Webapp"]
    assert reverse("budget_create") in response.content.decode()


def test_an_admin_creates_a_project_budget_with_thresholds_and_channels(
    client, admin, objects, django_capture_on_commit_callbacks
):
    client.force_login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("budget_create"),
            {
                "name": "Webapp weekly",
                "scope": "project",
                "project": objects["project_obj"].pk,
                "member": objects["mine"].member_id,  # ignored: not a member budget
                "period": "week",
                "amount_usd": "120.50",
                "thresholds": "50, 90 ,100, 90",
                "forecast_alerts": "on",
                "channels": [objects["channel"].pk],
                "active": "on",
            },
        )
    assert response.status_code == 302
    budget = Budget.objects.get(name="Webapp weekly")
    assert budget.thresholds == [50, 90, 100]
    assert budget.member is None
    assert budget.project == objects["project_obj"]
    assert budget.amount_usd == Decimal("120.50")
    assert list(budget.channels.all()) == [objects["channel"]]
    assert budget.created_by == admin


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"thresholds": "90, lots"}, "thresholds", "'lots' is not a whole percentage"),
        ({"thresholds": ""}, "thresholds", "Give at least one threshold"),
        ({"thresholds": "0"}, "thresholds", "'0' is not a whole percentage"),
        # isdigit() says yes to these; int() then raised (a 500).
        ({"thresholds": "²"}, "thresholds", "'²' is not a whole percentage"),
        ({"thresholds": "90, ٣"}, "thresholds", "'٣' is not a whole percentage"),
        ({"amount_usd": "0"}, "amount_usd", "greater than or equal to 0.01"),
        ({"amount_usd": "-5"}, "amount_usd", "greater than or equal to 0.01"),
        ({"scope": "project"}, "project", "Choose the project"),
        ({"scope": "member"}, "member", "Choose the member"),
        ({"scope": "galaxy"}, "scope", "Select a valid choice"),
    ],
)
def test_bad_budget_input_is_refused_with_a_clear_error_and_saves_nothing(
    client, admin, objects, changes, field, message
):
    client.force_login(admin)
    data = {"name": "Bad", "scope": "team", "period": "month", "amount_usd": "10"}
    data["thresholds"] = "90, 100"
    data.update(changes)
    response = client.post(reverse("budget_create"), data)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not Budget.objects.filter(name="Bad").exists()


def test_another_teams_project_member_or_channel_cannot_be_chosen(
    client, admin, objects, outsider, team_b
):
    client.force_login(admin)
    foreign = project_for(team_b, "-home-other-src-secret")
    data = {"name": "Bad", "period": "month", "amount_usd": "10", "thresholds": "90"}
    for extra, field in [
        ({"scope": "project", "project": foreign.pk}, "project"),
        ({"scope": "member", "member": outsider.pk}, "member"),
        ({"scope": "team", "channels": [objects["other_channel"].pk]}, "channels"),
    ]:
        response = client.post(reverse("budget_create"), {**data, **extra})
        assert response.status_code == 400
        assert "Select a valid choice" in response.context["form"].errors[field][0]
    assert not Budget.objects.filter(name="Bad").exists()


def test_an_admin_edits_thresholds_and_deletes_a_budget(client, admin, objects):
    client.force_login(admin)
    budget = objects["team"]
    page = client.get(reverse("budget_edit", args=[budget.public_id]))
    assert 'value="90, 100"' in page.content.decode()
    response = client.post(
        reverse("budget_edit", args=[budget.public_id]),
        {
            "name": "Team month",
            "scope": "team",
            "period": "month",
            "amount_usd": "600",
            "thresholds": "75,100",
            "active": "on",
        },
    )
    assert response.status_code == 302
    budget.refresh_from_db()
    assert (budget.amount_usd, budget.thresholds) == (Decimal("600"), [75, 100])
    assert not budget.forecast_alerts
    assert list(budget.channels.all()) == []

    assert client.post(reverse("budget_delete", args=[budget.public_id])).status_code == 302
    assert not Budget.objects.filter(pk=budget.pk).exists()


def test_the_page_shows_progress_as_text_and_a_progress_element(client, admin, member, objects):
    spend(machine_for(member), date.today(), "46")
    client.force_login(admin)
    html = client.get(reverse("budgets")).content.decode()
    assert "$46.00 of $50.00" in html
    assert 'max="50.00" value="46.00"' in html


def test_the_budgets_page_needs_a_bounded_number_of_queries(
    client, admin, member, objects, django_assert_max_num_queries
):
    for n in range(5):
        make_budget(member.team, "10", name=f"Extra {n}", forecast_alerts=False)
    client.force_login(admin)
    # Three queries per budget (spend, first day, daily costs for the pace) plus the page, and
    # five for the Claude Code section (events, quota levels, exemptions, the form's two lists).
    with django_assert_max_num_queries(53):
        assert client.get(reverse("budgets")).status_code == 200


# --- channels ----------------------------------------------------------------------------------


def test_a_new_webhook_channel_shows_its_secret_once(client, admin, team_a, settings):
    client.force_login(admin)
    response = client.post(
        reverse("channel_create"),
        {"name": "Chat", "kind": "webhook", "url": "https://hooks.example.com/alerts"},
    )
    assert response.status_code == 302
    channel = Channel.objects.get(name="Chat")
    assert channel.secret.startswith("whsec_")
    first = client.get(reverse("channels")).content.decode()
    assert channel.secret in first
    second = client.get(reverse("channels")).content.decode()
    assert channel.secret not in second
    assert "https://hooks.example.com/…" in second  # the path may be a credential


def test_rotating_a_secret_shows_the_new_one_once(client, admin, team_a, receiver):
    channel = webhook_channel(team_a, receiver)
    old = channel.secret
    client.force_login(admin)
    client.post(reverse("channel_rotate_secret", args=[channel.public_id]))
    channel.refresh_from_db()
    assert channel.secret != old
    assert channel.secret in client.get(reverse("channels")).content.decode()
    assert channel.secret not in client.get(reverse("channels")).content.decode()


def test_an_email_channel_takes_members_of_the_team_and_addresses(client, admin, member):
    client.force_login(admin)
    response = client.post(
        reverse("channel_create"),
        {
            "name": "Mail",
            "kind": "email",
            "members": [member.pk],
            "addresses": "Ops@Example.com\nfinance@example.com, ops@example.com",
            "url": "https://ignored.example.com/",
        },
    )
    assert response.status_code == 302
    channel = Channel.objects.get(name="Mail")
    assert channel.addresses == ["ops@example.com", "finance@example.com"]
    assert channel.url == ""
    assert channel.recipients() == ["finance@example.com", "member@a.example", "ops@example.com"]
    assert channel.secret == ""


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"kind": "email"}, "addresses", "Choose at least one member"),
        ({"kind": "email", "addresses": "not-an-address"}, "addresses", "is not an email"),
        ({"kind": "webhook"}, "url", "needs a URL"),
        ({"kind": "webhook", "url": "http://127.0.0.1:8000/x"}, "url", "private"),
        ({"kind": "webhook", "url": "http://localhost/x"}, "url", "local name"),
        ({"kind": "webhook", "url": "http://vm:8150/x"}, "url", "WEBHOOK_ALLOW_PRIVATE_IPS"),
        ({"kind": "webhook", "url": "http://vm:8150/a b"}, "url", "valid URL"),
        ({"kind": "webhook", "url": "ftp://example.com/x"}, "url", "must start with http"),
    ],
)
def test_bad_channel_input_is_refused_and_saves_nothing(
    client, admin, settings, data, field, message
):
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = False
    client.force_login(admin)
    response = client.post(reverse("channel_create"), {"name": "Bad", **data})
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert not Channel.objects.filter(name="Bad").exists()


def test_a_single_label_receiver_is_taken_where_private_receivers_are_allowed(
    client, admin, settings
):
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = True
    client.force_login(admin)
    data = {"name": "Own network", "kind": "webhook", "url": "http://vm:8150/hook"}
    assert client.post(reverse("channel_create"), data).status_code == 302
    assert Channel.objects.get(name="Own network").url == "http://vm:8150/hook"
    bad = {**data, "name": "Bad", "url": "http://vm:99999/hook"}
    assert client.post(reverse("channel_create"), bad).status_code == 400
    assert not Channel.objects.filter(name="Bad").exists()


def test_outsiders_cannot_be_added_to_an_email_channel(client, admin, outsider):
    client.force_login(admin)
    response = client.post(
        reverse("channel_create"), {"name": "Bad", "kind": "email", "members": [outsider.pk]}
    )
    assert response.status_code == 400
    assert not Channel.objects.filter(name="Bad").exists()


def test_send_test_delivers_a_signed_webhook_and_reports_success(client, admin, team_a, receiver):
    channel = webhook_channel(team_a, receiver)
    client.force_login(admin)
    response = client.post(reverse("channel_test", args=[channel.public_id]), follow=True)
    assert flashed(response) == [
        "Test message queued for 'Chat hook'. Reload to see its result under Last test."
    ]
    assert "<dt>Last test</dt><dd>sent " in response.content.decode()
    (hook,) = receiver.accepted
    assert hook.json["type"] == "test"
    assert hook.json["text"].startswith("Test message from claude-telemetry channel 'Chat hook'")


def test_send_test_reports_the_receivers_error_without_disabling_the_channel(
    client, admin, team_a, receiver
):
    channel = webhook_channel(team_a, receiver)
    receiver.answer(410)
    client.force_login(admin)
    response = client.post(reverse("channel_test", args=[channel.public_id]), follow=True)
    assert "failed: The receiver answered 410 Gone" in response.content.decode()
    channel.refresh_from_db()
    assert channel.is_enabled


def test_send_test_answers_at_once_and_a_dripping_receiver_fails_at_the_deadline(
    client, admin, team_a, receiver, settings
):
    from telemetry_site.celery import app

    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    receiver.drip = 0.2
    channel = webhook_channel(team_a, receiver)
    client.force_login(admin)
    conf = app.conf
    saved = (conf.task_always_eager, conf.broker_url, conf.broker_transport_options)
    conf.task_always_eager, conf.broker_url, conf.broker_transport_options = (
        False,
        "memory://",
        {},
    )
    app._pool = None
    app.amqp._producer_pool = None
    try:
        started = time.monotonic()
        response = client.post(reverse("channel_test", args=[channel.public_id]))
        assert time.monotonic() - started < 0.9
    finally:
        conf.task_always_eager, conf.broker_url, conf.broker_transport_options = saved
        app._pool = None
        app.amqp._producer_pool = None
    assert response.status_code == 302
    assert receiver.requests == []
    assert "waiting for a worker" in client.get(reverse("channels")).content.decode()

    delivery = Delivery.objects.get(channel=channel)
    started = time.monotonic()
    tasks.send_test_delivery(delivery.pk)  # what the worker runs
    assert time.monotonic() - started < 2.5
    page = client.get(reverse("channels")).content.decode()
    assert "failed: Timed out after 1 s (the whole delivery)." in page


def test_send_test_by_email_reaches_the_smtp_server(client, admin, team_a, smtp_server):
    channel = email_channel(team_a, addresses=["ops@a.example"])
    client.force_login(admin)
    client.post(reverse("channel_test", args=[channel.public_id]))
    assert smtp_server.subjects() == ["Test message from claude-telemetry channel 'Team mail'"]


def test_a_disabled_channel_shows_why_and_can_be_re_enabled(client, admin, team_a, receiver):
    channel = webhook_channel(team_a, receiver)
    Channel.objects.filter(pk=channel.pk).update(
        disabled_at="2026-11-20T10:00:00Z",
        disabled_reason="The receiver answered 410 Gone.",
        last_error="The receiver answered 410 Gone: it no longer wants these messages.",
    )
    client.force_login(admin)
    html = client.get(reverse("channels")).content.decode()
    assert "Disabled" in html
    assert "it no longer wants these messages" in html
    client.post(reverse("channel_enable", args=[channel.public_id]))
    channel.refresh_from_db()
    assert channel.is_enabled
    assert channel.consecutive_failures == 0


def test_the_channel_list_never_shows_a_webhooks_secret_path_or_credentials(client, admin, team_a):
    secret = "https://bot:hunter2@hooks.slack.com/services/T0/B0/s3cr3tT0k3n?x=1"
    Channel.objects.create(team=team_a, name="Slack", kind=Channel.Kind.SLACK, url=secret)
    client.force_login(admin)
    html = client.get(reverse("channels")).content.decode()
    assert "https://hooks.slack.com/…" in html
    for part in ("hunter2", "bot:", "s3cr3tT0k3n", "/services/"):
        assert part not in html


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://chat.example:8443/hooks/abc", "https://chat.example:8443/…"),
        ("https://chat.example", "https://chat.example/"),
        ("http://[2001:db8::1]/x", "http://[2001:db8::1]/…"),
        ("not a url", "…"),
    ],
)
def test_masked_urls_keep_only_scheme_host_and_port(url, shown):
    from budgets.models import masked_url

    assert masked_url(url) == shown


def test_an_admin_edits_and_deletes_a_channel_but_cannot_change_its_kind(
    client, admin, team_a, receiver
):
    channel = webhook_channel(team_a, receiver)
    client.force_login(admin)
    response = client.post(
        reverse("channel_edit", args=[channel.public_id]),
        {"name": "Renamed", "kind": "email", "url": "https://hooks.example.com/new"},
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.kind, channel.url) == (
        "Renamed",
        "webhook",
        "https://hooks.example.com/new",
    )
    client.post(reverse("channel_delete", args=[channel.public_id]))
    assert not Channel.objects.filter(pk=channel.pk).exists()


# --- a member's own alert settings -------------------------------------------------------------


def test_a_member_sets_the_quota_threshold_of_their_own_subscriptions(client, member, objects):
    sub = Subscription.default_for(member)
    client.force_login(member)
    page = client.get(reverse("budgets")).content.decode()
    assert f"quota_{sub.public_id}_threshold" in page
    response = client.post(
        reverse("alert_settings"),
        {
            f"quota_{sub.public_id}_enabled": "on",
            f"quota_{sub.public_id}_threshold": "75",
            "stale_enabled": "",
            "stale_hours": "36",
        },
    )
    assert response.status_code == 302
    setting = QuotaAlertSetting.objects.get(subscription=sub)
    assert (setting.enabled, setting.threshold) == (True, 75)
    stale = StaleAgentSetting.objects.get(user=member)
    assert (stale.enabled, stale.hours) == (False, 36)


def test_alert_settings_only_touch_the_viewers_own_subscriptions(client, member, admin, objects):
    theirs = Subscription.default_for(admin)
    client.force_login(member)
    client.post(
        reverse("alert_settings"),
        {
            f"quota_{theirs.public_id}_enabled": "",
            f"quota_{theirs.public_id}_threshold": "5",
            "stale_hours": "24",
        },
    )
    assert not QuotaAlertSetting.objects.filter(subscription=theirs).exists()


def test_a_bad_alert_setting_is_refused_and_saves_nothing(client, member, objects):
    sub = Subscription.default_for(member)
    client.force_login(member)
    response = client.post(
        reverse("alert_settings"),
        {f"quota_{sub.public_id}_threshold": "150", "stale_hours": "0"},
    )
    assert response.status_code == 400
    form = response.context["settings_form"]
    assert "less than or equal to 100" in form.errors[f"quota_{sub.public_id}_threshold"][0]
    assert "greater than or equal to 1" in form.errors["stale_hours"][0]
    assert not QuotaAlertSetting.objects.exists()
    assert not StaleAgentSetting.objects.exists()


def test_an_overspent_budget_says_so_in_words_and_colour(client, member, objects):
    spend(machine_for(member), date.today(), "51")
    client.force_login(member)
    response = client.get(reverse("budgets"))
    (status,) = [s for s in response.context["statuses"] if s.budget.name == "Member cap"]
    assert status.level == "over"
    html = response.content.decode()
    assert "Over budget" in html
    assert 'class="bar bar-bad" max="50.00" value="50.00"' in html


def test_a_member_who_left_the_team_no_longer_gets_its_channel_emails(team_a, member, team_b):
    channel = email_channel(team_a, addresses=["ops@a.example"], members=[member])
    assert channel.recipients() == ["member@a.example", "ops@a.example"]
    member.membership.team = team_b
    member.membership.save()
    assert channel.recipients() == ["ops@a.example"]


def test_recent_alerts_name_the_threshold_each_one_crossed(
    client, team_a, admin, member, django_capture_on_commit_callbacks
):
    import time_machine

    from budgets import evaluate

    make_budget(team_a, "100", name="Team month", thresholds=[50, 90, 100], forecast_alerts=False)
    laptop = machine_for(member)
    with time_machine.travel("2026-11-20 12:00Z", tick=True):
        spend(laptop, date(2026, 11, 19), "130")
        with django_capture_on_commit_callbacks(execute=True):
            evaluate.evaluate_team(team_a.pk)
        client.force_login(admin)
        html = client.get(reverse("budgets")).content.decode()
    section = html.split('id="recent-alerts"')[1].split("</table>")[0]
    for threshold in (50, 90, 100):
        assert f'<span class="cell-sub">{threshold}% threshold</span>' in section
