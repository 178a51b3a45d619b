"""The login answer does not depend on the mail system: the email is sent by a worker, so known
and unknown addresses get the same answer in the same time whether SMTP is fast, slow or down."""

import asyncio
import logging
import time
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
import time_machine
from aiosmtpd.controller import Controller
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from accounts import tasks
from accounts.models import LoginMail
from telemetry_site.celery import app
from tests.accounts.conftest import ask_for_link, link_path
from tests.budgets.conftest import free_port
from tests.conftest import celery_broker

pytestmark = pytest.mark.django_db(transaction=True)

SMTP_DELAY = 3.0
# Far below SMTP_DELAY: the request must not wait for the mail server.
FAST = 1.5


class SlowSmtp:
    """aiosmtpd that takes SMTP_DELAY seconds to accept each message."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list = []
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(SMTP_DELAY)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"

    def __enter__(self):
        self._controller.start()
        return self

    def __exit__(self, *exc):
        self._controller.stop()


@pytest.fixture
def queued_tasks():
    """Tasks go through a broker (in memory) to a real worker thread, not inline."""
    conf = app.conf
    saved = (conf.task_always_eager, conf.broker_url, conf.broker_transport_options)
    conf.task_always_eager = False
    conf.broker_url = "memory://"
    conf.broker_transport_options = {}
    app._pool = None
    app.amqp._producer_pool = None
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        yield
    conf.task_always_eager, conf.broker_url, conf.broker_transport_options = saved
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def smtp_at(settings):
    def point_at(port: int) -> None:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_TIMEOUT = 10

    return point_at


def timed_ask(client, email):
    started = time.monotonic()
    response = ask_for_link(client, email)
    return response, time.monotonic() - started


def test_a_slow_smtp_server_does_not_slow_or_change_the_answer(
    client, member, queued_tasks, smtp_at
):
    with SlowSmtp() as smtp:
        smtp_at(smtp.port)
        known, known_seconds = timed_ask(client, member.email)
        unknown, unknown_seconds = timed_ask(client, "nobody@nowhere.example")
        assert known.status_code == unknown.status_code == 302
        assert known["Location"] == unknown["Location"]
        assert known_seconds < FAST and unknown_seconds < FAST
        deadline = time.monotonic() + SMTP_DELAY + 10
        while not smtp.messages and time.monotonic() < deadline:
            time.sleep(0.1)
    assert [m["To"] for m in smtp.messages] == [member.email]


def test_an_smtp_server_that_is_down_gives_the_same_answer(client, member, queued_tasks, smtp_at):
    smtp_at(free_port())  # nothing listens there
    known, known_seconds = timed_ask(client, member.email)
    unknown, unknown_seconds = timed_ask(client, "nobody@nowhere.example")
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    assert known_seconds < FAST and unknown_seconds < FAST


def test_a_broker_that_is_down_gives_the_same_answer_and_logs_no_secret(
    client, member, caplog, settings
):
    conf = app.conf
    saved = (conf.task_always_eager, conf.broker_url, conf.broker_transport_options)
    conf.task_always_eager = False
    conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"
    conf.broker_transport_options = {"max_retries": 0}
    app._pool = None
    app.amqp._producer_pool = None
    caplog.set_level(logging.INFO)
    try:
        known = ask_for_link(client, member.email)
    finally:
        conf.task_always_eager, conf.broker_url, conf.broker_transport_options = saved
        app._pool = None
        app.amqp._producer_pool = None
    assert known.status_code == 302
    assert known["Location"] == ask_for_link(client, "nobody@nowhere.example")["Location"]
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "could not queue accounts.tasks.deliver_login_mail" in logged
    assert "/accounts/login/link/" not in logged


def test_a_login_mail_written_while_the_broker_is_down_is_sent_once_it_is_back(
    client, member, mailoutbox
):
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0", transport_options={"max_retries": 0}):
        assert ask_for_link(client, member.email).status_code == 302
    assert mailoutbox == []
    waiting = LoginMail.objects.get()
    # The outbox row carries the link encrypted: a copy of the database alone logs nobody in.
    assert b"/accounts/login/link/" not in bytes(waiting.message)
    assert member.email.encode() not in bytes(waiting.message)

    # The broker is back (tasks run inline here); beat's next sweep sends it, once.
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        assert tasks.sweep_login_mail() == 1
        assert tasks.sweep_login_mail() == 0
    assert [m.to for m in mailoutbox] == [[member.email]]
    waiting.refresh_from_db()
    assert waiting.sent_at is not None and bytes(waiting.message) == b""
    # The link in it works.
    confirm = client.post(link_path(mailoutbox[0]))
    assert confirm.status_code == 302
    assert client.get("/").wsgi_request.user == member


def test_a_login_mail_whose_link_expired_before_the_broker_came_back_is_not_sent(
    client, member, mailoutbox
):
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0", transport_options={"max_retries": 0}):
        ask_for_link(client, member.email)
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert tasks.sweep_login_mail() == 0
        assert tasks.deliver_login_mail(LoginMail.objects.get().pk) is False
        assert tasks.purge_expired_login_links() >= 1
    assert mailoutbox == [] and not LoginMail.objects.exists()


def test_a_login_mail_is_retried_until_smtp_answers_and_sent_once(
    client, member, smtp_at, settings
):
    smtp_at(free_port())  # nothing listens there yet
    ask_for_link(client, member.email)  # the inline task fails every retry: the row waits
    mail = LoginMail.objects.get()
    assert mail.sent_at is None and mail.claimed_at is None and mail.attempts >= 1
    assert "ConnectionRefusedError" in mail.last_error
    with SlowSmtp() as smtp:
        smtp_at(smtp.port)
        with time_machine.travel(timezone.now() + timedelta(minutes=1)):
            assert tasks.sweep_login_mail() == 1
            assert tasks.sweep_login_mail() == 0
    assert [m["To"] for m in smtp.messages] == [member.email]
