"""Login-link secrets never reach a log: not the access log of runserver or gunicorn, not the
app's own lines (a 404 for a used link logs its path). Real servers, real requests."""

import logging
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from telemetry_site.jsonlog import JsonFormatter, TextFormatter, redact_secrets
from tests.conftest import ROOT

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQ:1tSiGnAtUrE"
LINK = f"/accounts/login/link/{SECRET}/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server_env(tmp_path_factory):
    folder = tmp_path_factory.mktemp("logs-server")
    env = {
        **os.environ,
        "VAR_DIR": str(folder),
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "DEBUG": "1",
        "LOG_FORMAT": "text",
        "REDIS_URL": "",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return env


def serve_and_open_a_link(command: list[str], env: dict, port: int) -> str:
    """Start a server, ask it for a login link (also as the referer), stop it: its output."""
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}{LINK}"
        response = httpx.get(url, headers={"Referer": url}, timeout=20)
        assert response.status_code == 404  # an unknown link, as a used one would be
        time.sleep(0.5)  # access lines are written after the response
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    return output


def test_runserver_logs_the_request_without_the_link_secret(server_env):
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    output = serve_and_open_a_link(command, server_env, port)
    assert "GET /accounts/login/link/[redacted]/" in output
    assert "Not Found: /accounts/login/link/[redacted]/" in output
    assert SECRET not in output and SECRET.split(":")[0] not in output


def test_gunicorn_logs_the_request_without_the_link_secret(server_env):
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "telemetry_site.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--access-logfile",
        "-",
        "--access-logformat",
        '%(h)s "%(r)s" %(s)s "%(f)s" %(U)s',
        "--logger-class",
        "telemetry_site.gunicorn_logging.Logger",
    ]
    output = serve_and_open_a_link(command, server_env, port)
    assert '"GET /accounts/login/link/[redacted]/ HTTP/1.1" 404' in output
    assert SECRET not in output and SECRET.split(":")[0] not in output


@pytest.mark.parametrize("formatter", [TextFormatter("%(message)s"), JsonFormatter()])
def test_the_apps_log_lines_leave_out_link_secrets_in_messages_and_extra_fields(formatter):
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "Not Found: %s", (LINK,), None)
    record.path = f"https://telemetry.example.com{LINK}?next=/"
    line = formatter.format(record)
    assert SECRET not in line
    assert "/accounts/login/link/[redacted]/" in line


def test_other_paths_are_left_alone():
    assert redact_secrets("GET /accounts/login/ 200") == "GET /accounts/login/ 200"
