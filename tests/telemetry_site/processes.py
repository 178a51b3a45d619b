"""Real server processes for the fault tests: gunicorn with its default settings (one sync worker,
30 s timeout) and a Celery worker, both on the test's PostgreSQL database and a broker of the
test's own (Celery's filesystem transport in a temporary folder, so no Redis is shared)."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from tests.conftest import ROOT

WAIT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "DATABASE_URL is not PostgreSQL: a server process cannot share this test database "
            "(set DATABASE_URL=postgres://… to run the fault tests)"
        )


def database_url() -> str:
    """The test database, as another process reaches it."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"])
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return f"postgres://{auth}@{host}:{port}/{quote(db['NAME'])}"


def production_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """What an operator runs with: DEBUG=0, a real secret, the test database, no Redis.

    Without Redis the cache is a database table; the test database has it only when this test
    run itself has no REDIS_URL, so it is created here (createcachetable is idempotent).
    """
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SITE_URL": "http://127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": database_url(),
        # Unset: the embedded broker (files under VAR_DIR), shared by the worker below.
        "REDIS_URL": "",
        "VAR_DIR": str(var_dir),
        "TESTING": "0",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "LOG_FORMAT": "text",
        "INGEST_THROTTLE_RATE": "1000/minute",
        **extra,
    }
    subprocess.run([sys.executable, "manage.py", "createcachetable"], cwd=ROOT, env=env, check=True)
    return env


class Process:
    """A child process in its own session, its output in a file."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, condition, what: str, seconds: float = WAIT_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"the process exited while waiting for {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}:\n{self.output()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


class Gunicorn(Process):
    """`gunicorn telemetry_site.wsgi` with nothing but a bind address: the default sync
    worker and its 30-second timeout, as an operator who changes nothing runs it."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "gunicorn", "telemetry_site.wsgi"]
        super().__init__([*command, "--bind", f"127.0.0.1:{self.port}"], env, log)
        self.wait_for(self._listening, "gunicorn to listen")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True


class CeleryWorker(Process):
    """`celery -A telemetry_site worker` (solo pool) on the same environment as the server."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        command = [sys.executable, "-m", "celery", "-A", "telemetry_site", "worker"]
        options = ["--pool", "solo", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
        super().__init__([*command, *options], env, log)
        self.wait_for(lambda: "ready." in self.output(), "the worker to start")
