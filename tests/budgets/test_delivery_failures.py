"""Failure paths of delivery: retries with backoff, the sweep, disabling, refused and slow URLs."""

import ipaddress
import socket
import time
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from budgets import evaluate, notify, webhooks
from budgets.models import Channel, Delivery
from tests.budgets.conftest import spend
from tests.conftest import DEAD_BROKER_URL, celery_broker
from tests.factories import email_channel, machine_for, make_budget, webhook_channel

pytestmark = pytest.mark.django_db

NOV_20 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
Status = Delivery.Status


@pytest.fixture
def clock():
    with time_machine.travel(NOV_20, tick=True) as traveller:
        yield traveller


@pytest.fixture
def cross(team_a, member, django_capture_on_commit_callbacks):
    """Put the team past 90 % of a $100 budget wired to `channels` and evaluate once."""

    def _cross(*channels):
        make_budget(team_a, "100", channels=channels, forecast_alerts=False, thresholds=[90])
        spend(machine_for(member), date(2026, 11, 19), "95")
        with django_capture_on_commit_callbacks(execute=True):
            evaluate.evaluate_team(team_a.pk)
        return Delivery.objects.get()

    return _cross


def sweep_later(clock, django_capture_on_commit_callbacks, minutes=60):
    clock.shift(timedelta(minutes=minutes))
    with django_capture_on_commit_callbacks(execute=True):
        return notify.sweep()


def test_smtp_down_then_up_delivers_the_email_once_after_a_retry(
    team_a, smtp_down, cross, clock, django_capture_on_commit_callbacks
):
    delivery = cross(email_channel(team_a))
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING
    assert delivery.attempts == 1
    assert "refused" in delivery.last_error.lower()
    assert delivery.next_attempt_at > NOV_20
    assert Channel.objects.get().consecutive_failures == 1

    smtp_down.start()
    sweep_later(clock, django_capture_on_commit_callbacks)
    sweep_later(clock, django_capture_on_commit_callbacks)

    delivery.refresh_from_db()
    assert delivery.status == Status.SENT
    assert delivery.attempts == 2
    assert len(smtp_down.messages) == 1
    assert Channel.objects.get().consecutive_failures == 0


def test_a_receiver_answering_500_then_200_gets_the_message_after_a_retry(
    team_a, receiver, cross, clock, django_capture_on_commit_callbacks
):
    receiver.answer(500)
    delivery = cross(webhook_channel(team_a, receiver))
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING
    assert delivery.last_error == "The receiver answered 500: receiver says no"

    sweep_later(clock, django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == Status.SENT
    assert [r.verified for r in receiver.requests] == [False, True]
    assert len(receiver.accepted) == 1


def test_a_410_disables_the_channel_and_later_alerts_skip_it(
    team_a, member, receiver, cross, clock, django_capture_on_commit_callbacks
):
    receiver.answer(410)
    delivery = cross(webhook_channel(team_a, receiver))
    delivery.refresh_from_db()
    channel = Channel.objects.get()
    assert delivery.status == Status.FAILED
    assert channel.disabled_at is not None
    assert "410" in channel.disabled_reason
    assert "410 Gone" in channel.last_error

    spend(machine_for(member, "desk"), date(2026, 11, 20), "20")  # now past 100 %
    budget = channel.budgets.get()
    budget.thresholds = [90, 100]
    budget.save()
    with django_capture_on_commit_callbacks(execute=True):
        fired = evaluate.evaluate_team(team_a.pk)
    assert [a.threshold for a in fired] == [100]
    assert Delivery.objects.count() == 1
    assert len(receiver.requests) == 1


def test_a_private_url_is_refused_when_the_operator_does_not_allow_it(
    team_a, receiver, cross, settings
):
    channel = webhook_channel(team_a, receiver)
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = False
    delivery = cross(channel)
    delivery.refresh_from_db()
    channel.refresh_from_db()
    assert delivery.status == Status.FAILED
    assert "127.0.0.1 is a private, loopback or reserved address" in delivery.last_error
    assert channel.disabled_at is not None
    assert receiver.requests == []


def test_a_host_name_that_resolves_to_loopback_is_refused(receiver, settings):
    # This machine's own name resolves through the system resolver, usually to loopback.
    name = socket.gethostname()
    try:
        address = ipaddress.ip_address(socket.getaddrinfo(name, 80)[0][4][0])
    except (OSError, ValueError):
        pytest.skip(f"this machine's name {name!r} does not resolve")
    if webhooks.is_public_address(address):
        pytest.skip(f"{name!r} resolves to a public address here")
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = False
    url = f"http://{name}:{receiver.port}/hooks"
    with pytest.raises(webhooks.UnsafeURL, match="resolves to a private"):
        webhooks.post(url, "whsec_" + "A" * 44, "msg_1", {"text": "hi"})
    assert receiver.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.8/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/",
        "http://[::ffff:192.168.1.1]/",
        # IPv4 carried inside IPv6: compatible, mapped, SIIT, NAT64 (RFC 6052 and 8215), 6to4,
        # Teredo (its client part is obfuscated 192.0.2.45, a documentation address).
        "http://[::127.0.0.1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:0:7f00:1]/",
        "http://[64:ff9b::127.0.0.1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[64:ff9b:1::a00:1]/",
        "http://[2002:7f00:1::]/",
        "http://[2002:a00:1::1]/",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
        "http://[::8.8.8.8]/",
        "http://localhost:9000/",
        "http://printer.local/",
        "ftp://example.com/hook",
    ],
)
def test_private_and_odd_urls_are_refused_before_any_lookup(url, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = False
    assert webhooks.check_url_shape(url) is not None


def test_a_public_https_url_passes_the_shape_check(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = False
    assert webhooks.check_url_shape("https://hooks.slack.com/services/T0/B0/x") is None


@pytest.mark.parametrize(
    "host", ["[64:ff9b::808:808]", "[2002:808:808::1]", "[2606:4700:4700::1111]"]
)
def test_ipv6_forms_of_public_addresses_pass_the_shape_check(host, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = False
    assert webhooks.check_url_shape(f"https://{host}/hook") is None


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "[::127.0.0.1]", "2130706433", "0x7f.1"])
def test_loopback_in_any_spelling_never_reaches_the_receiver(host, receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_IPS = False
    url = f"http://{host}:{receiver.port}/hooks"
    with pytest.raises(webhooks.UnsafeURL):
        webhooks.post(url, "whsec_" + "A" * 44, "msg_1", {"text": "hi"})
    assert receiver.requests == []


def test_a_slow_receiver_times_out_and_the_retry_carries_the_same_webhook_id(
    team_a, receiver, cross, clock, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    receiver.delay = 2.5
    delivery = cross(webhook_channel(team_a, receiver))
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING
    assert delivery.last_error.startswith("Timed out after 1 s")

    receiver.delay = 0
    sweep_later(clock, django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == Status.SENT
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert ids == {f"msg_{delivery.public_id.hex}"}


def test_a_webhook_failing_every_attempt_fails_for_good_and_disables_its_channel(
    team_a, receiver, cross, clock, settings, django_capture_on_commit_callbacks
):
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 3
    receiver.answer(502, 502, 502, 502)
    delivery = cross(webhook_channel(team_a, receiver))
    for _ in range(4):
        sweep_later(clock, django_capture_on_commit_callbacks, minutes=90)

    delivery.refresh_from_db()
    channel = Channel.objects.get()
    assert delivery.status == Status.FAILED
    assert delivery.attempts == 3
    assert len(receiver.requests) == 3
    assert channel.disabled_reason == "3 failed attempts in a row."
    assert channel.last_error == "The receiver answered 502: receiver says no"
    assert channel.consecutive_failures == 3


def test_failures_of_several_alerts_in_a_row_disable_the_channel_too(
    team_a, receiver, cross, settings
):
    # Two earlier alerts each failed once, then were sent elsewhere or dropped: the channel's
    # count says so, and this alert's first failure is the third in a row.
    settings.ALERT_DELIVERY_MAX_ATTEMPTS = 3
    receiver.answer(502)
    channel = webhook_channel(team_a, receiver)
    Channel.objects.filter(pk=channel.pk).update(consecutive_failures=2)
    delivery = cross(channel)
    delivery.refresh_from_db()
    channel.refresh_from_db()
    assert delivery.status == Status.PENDING and delivery.attempts == 1
    assert channel.consecutive_failures == 3
    assert channel.disabled_reason == "3 failed attempts in a row."
    assert not channel.is_enabled


def test_a_delivery_is_claimed_by_one_worker_only(team_a, smtp_down, cross):
    delivery = cross(email_channel(team_a))
    delivery.refresh_from_db()
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=NOV_20 - timedelta(hours=1))
    assert notify.claim(delivery.pk) is not None
    assert notify.claim(delivery.pk) is None
    assert notify.deliver(delivery.pk) is None


def test_a_delivery_left_sending_by_a_killed_worker_is_sent_by_the_sweep(
    team_a, smtp_down, cross, clock, django_capture_on_commit_callbacks
):
    delivery = cross(email_channel(team_a))
    smtp_down.start()
    clock.shift(timedelta(hours=1))
    # A worker claims the row and dies before sending.
    assert notify.claim(delivery.pk) is not None

    assert sweep_later(clock, django_capture_on_commit_callbacks, minutes=5)["reset"] == 0
    assert smtp_down.messages == []
    assert sweep_later(clock, django_capture_on_commit_callbacks, minutes=15)["reset"] == 1
    assert len(smtp_down.messages) == 1
    sweep_later(clock, django_capture_on_commit_callbacks, minutes=60)
    assert len(smtp_down.messages) == 1


def test_backoff_doubles_with_jitter_and_stays_below_the_brokers_visibility_timeout(settings):
    settings.ALERT_RETRY_BASE_SECONDS = 30
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    first = [notify.backoff_seconds(1) for _ in range(50)]
    assert all(15 <= w <= 30 for w in first)
    assert len(set(first)) > 1, "jitter spreads retries"
    assert all(60 <= notify.backoff_seconds(3) <= 120 for _ in range(20))
    assert max(notify.backoff_seconds(n) for n in range(1, 30)) <= 1800

    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
    assert max(notify.backoff_seconds(n) for n in range(1, 30)) <= 300


def test_the_admin_resend_puts_a_failed_delivery_back_and_it_is_sent_once(
    team_a, receiver, cross, django_capture_on_commit_callbacks
):
    receiver.answer(410)
    delivery = cross(webhook_channel(team_a, receiver))
    Channel.objects.get().enable()
    with django_capture_on_commit_callbacks(execute=True):
        assert notify.resend([delivery.pk]) == 1
    delivery.refresh_from_db()
    assert delivery.status == Status.SENT
    with django_capture_on_commit_callbacks(execute=True):
        assert notify.resend([delivery.pk]) == 0
    assert len(receiver.accepted) == 1


def test_the_request_goes_to_the_vetted_address_and_keeps_the_real_host_header(receiver):
    name = socket.gethostname()
    try:
        socket.getaddrinfo(name, receiver.port)
    except OSError:
        pytest.skip(f"this machine's name {name!r} does not resolve")
    receiver.secret = "whsec_" + "QUJD" * 11
    result = webhooks.post(
        f"http://{name}:{receiver.port}/hooks/alerts", receiver.secret, "msg_1", {"text": "hi"}
    )
    assert result.status_code == 200
    (hook,) = receiver.requests
    assert hook.verified
    assert hook.headers["host"] == f"{name}:{receiver.port}"
    assert hook.headers["webhook-id"] == "msg_1"


def test_redirects_are_not_followed(receiver):
    receiver.secret = "whsec_" + "QUJD" * 11
    receiver.answer(307)
    with pytest.raises(webhooks.WebhookError, match="redirects are not followed"):
        webhooks.post(receiver.url, receiver.secret, "msg_1", {"text": "hi"})
    assert len(receiver.requests) == 1


def test_a_broker_outage_when_queueing_loses_nothing_the_sweep_sends_it(
    team_a, smtp_server, cross, clock, django_capture_on_commit_callbacks
):
    # A broker nobody listens on: publishing fails after kombu's short retry policy.
    with celery_broker(DEAD_BROKER_URL):
        delivery = cross(email_channel(team_a))
    delivery.refresh_from_db()
    assert delivery.status == Status.PENDING
    assert delivery.attempts == 0
    assert smtp_server.messages == []

    sweep_later(clock, django_capture_on_commit_callbacks, minutes=3)
    delivery.refresh_from_db()
    assert delivery.status == Status.SENT
    assert len(smtp_server.messages) == 1


def test_a_receiver_that_drips_bytes_is_cut_off_at_one_deadline_per_delivery(receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    receiver.drip = 0.2  # well inside the per-read timeout, forever
    started = time.monotonic()
    with pytest.raises(webhooks.WebhookError, match="Timed out after 1 s"):
        webhooks.post(receiver.url, "whsec_" + "A" * 44, "msg_1", {"text": "hi"})
    assert time.monotonic() - started < 2.5
    assert len(receiver.requests) == 1
