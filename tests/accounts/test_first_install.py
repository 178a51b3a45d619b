"""A fresh install: while no account exists, development's login page says so and shows the
adduser command; `make run`'s welcome prints it after the processes' banners."""

import io
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core.management import call_command

from accounts.management.commands.welcome import Command as WelcomeCommand
from telemetry_site import devserver
from telemetry_site.formatting import FIRST_OWNER_COMMAND
from tests.conftest import login

pytestmark = pytest.mark.django_db

COMMAND_HTML = "manage.py adduser you@example.com --team my-team --role owner"


def test_the_command_shown_is_the_real_one():
    # accounts/management/commands/adduser.py takes EMAIL, --team and --role.
    out = io.StringIO()
    call_command(*FIRST_OWNER_COMMAND.split()[2:], stdout=out)
    assert "you@example.com" in out.getvalue()


def test_development_login_page_shows_the_command_while_nobody_exists(settings):
    settings.DEBUG = True
    html = login(None).get("/accounts/login/").content.decode()
    assert "No user exists yet" in html
    assert COMMAND_HTML in html
    # After asking for a link, the page says the same instead of "a link is on its way" alone.
    answer = login(None).post("/accounts/login/", {"email": "x@example.com"}, follow=True)
    assert COMMAND_HTML in answer.content.decode()


def test_the_hint_goes_once_a_user_exists(settings, member):
    settings.DEBUG = True
    html = login(None).get("/accounts/login/").content.decode()
    assert "No user exists yet" not in html


def test_production_never_says_nobody_exists(settings):
    settings.DEBUG = False
    html = login(None).get("/accounts/login/").content.decode()
    assert "No user exists yet" not in html and "adduser" not in html


class _Ok(BaseHTTPRequestHandler):
    """Answers as the site's /healthz does (telemetry_site.health), so it can be stopped."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok", "checks": {"database": "ok"}}')

    def log_message(self, *args):
        pass


class _Other(_Ok):
    """Another program that happens to listen on the port `make run` was given."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html><body>some other dev server</body></html>")


@pytest.mark.django_db(transaction=True)
def test_the_sites_real_healthz_counts_as_this_site(live_server):
    assert devserver.answers(f"{live_server.url}/healthz")


def test_another_program_on_the_port_is_not_taken_for_the_site(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    server = HTTPServer(("127.0.0.1", 0), _Other)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    probe = f"http://127.0.0.1:{server.server_port}/healthz"
    settings.SITE_URL = f"http://127.0.0.1:{server.server_port}"
    err = io.StringIO()
    try:
        assert not devserver.answers(probe, timeout=1)
        assert devserver.running_site() is None
        assert WelcomeCommand(stdout=io.StringIO(), stderr=err)._wait(probe, 0.6) is False
    finally:
        server.shutdown()
        server.server_close()
    assert "another program using its port" in err.getvalue()


def test_welcome_waits_for_the_web_server_and_records_where_it_runs(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    server = HTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    probe = f"http://127.0.0.1:{server.server_port}/healthz"
    settings.SITE_URL = f"http://127.0.0.1:{server.server_port}"
    try:
        assert devserver.answers(probe)
        devserver.record_running(settings.SITE_URL, probe)
        assert devserver.running_site() == settings.SITE_URL
    finally:
        server.shutdown()
        server.server_close()
    # Nothing answers any more: the recorded site is not named.
    assert devserver.running_site() is None
    devserver.forget_running()
    assert not (tmp_path / "site-url").exists()


def test_welcome_prints_the_command_last_when_nobody_exists(settings):
    out = io.StringIO()
    call_command("welcome", stdout=out)
    text = out.getvalue()
    assert "No user exists yet" in text and FIRST_OWNER_COMMAND in text


def test_welcome_says_when_the_server_never_answers(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    err = io.StringIO()
    # A port nothing listens on (bound, then closed).
    probe_server = HTTPServer(("127.0.0.1", 0), _Ok)
    port = probe_server.server_port
    probe_server.server_close()
    assert not devserver.answers(f"http://127.0.0.1:{port}/healthz", timeout=0.5)
    command = WelcomeCommand(stdout=io.StringIO(), stderr=err)
    assert command._wait(f"http://127.0.0.1:{port}/healthz", 0.6) is False
    assert "did not answer" in err.getvalue()
