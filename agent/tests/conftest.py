"""Fixtures for the agent's tests: a copy of the fixture's synthetic Claude/Codex logs as $HOME,
the real ccusage binary, an agent home, the CLI in a subprocess, and a live server that can be
stopped and started again."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, django_db_setup, write_fixture_input  # noqa: F401

CCUSAGE_BIN = ROOT / "node_modules" / ".bin" / "ccusage"


@pytest.fixture
def ccusage_bin() -> Path:
    if not CCUSAGE_BIN.exists() or shutil.which("node") is None:
        pytest.skip(f"the pinned ccusage is not installed at {CCUSAGE_BIN} (run: npm ci)")
    return CCUSAGE_BIN


@pytest.fixture(scope="session")
def fixture_input_home(tmp_path_factory) -> Path:
    """The fixtures' input logs, written once per run; tests get copies."""
    return write_fixture_input(tmp_path_factory.mktemp("ccusage-input") / "home")


@pytest.fixture
def fixture_home(tmp_path, fixture_input_home) -> Path:
    home = tmp_path / "home"
    shutil.copytree(fixture_input_home, home)
    return home


@pytest.fixture
def agent_env(fixture_home, ccusage_bin, tmp_path) -> dict[str, str]:
    """The environment of a PC whose only Claude Code and Codex data are the fixture logs."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLAUDE_", "CODEX_", "XDG_", "DJANGO_"))
    }
    env.update(
        HOME=str(fixture_home),
        CLAUDE_CONFIG_DIR=f"{fixture_home}/.claude,{fixture_home}/.config/claude",
        CODEX_HOME=str(fixture_home / ".codex"),
        CLAUDE_TELEMETRY_HOME=str(tmp_path / "agent"),
        CLAUDE_TELEMETRY_CCUSAGE=str(ccusage_bin),
        XDG_CONFIG_HOME=str(fixture_home / ".config"),
        TZ="UTC",
        NO_COLOR="1",
        COLUMNS="200",
    )
    return env


@pytest.fixture
def use_agent_env(agent_env, monkeypatch) -> dict[str, str]:
    """The same environment for code run inside the test process."""
    for key in list(os.environ):
        if key.startswith(("CLAUDE_", "CODEX_")):
            monkeypatch.delenv(key)
    for key, value in agent_env.items():
        monkeypatch.setenv(key, value)
    return agent_env


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(env: dict[str, str], *args: str, stdin: bytes | None = None) -> CliResult:
    done = subprocess.run(
        [sys.executable, "-m", "claude_telemetry", *args],
        env=env,
        input=stdin,
        capture_output=True,
        timeout=300,
        check=False,
        cwd=env.get("HOME"),
    )
    return CliResult(
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


@pytest.fixture
def cli(agent_env):
    def run(*args: str, stdin: bytes | None = None, env: dict | None = None) -> CliResult:
        return run_cli({**agent_env, **(env or {})}, *args, stdin=stdin)

    return run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StoppableServer:
    """Django's live server thread on a fixed port, so a test can stop it and start it again."""

    def __init__(self):
        self.port = free_port()
        self._server = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from pytest_django.live_server_helper import LiveServer

        self._server = LiveServer(f"127.0.0.1:{self.port}")

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


@pytest.fixture
def server(transactional_db, settings):
    from django.core.cache import cache

    # Throttle counts live in the cache; no test inherits another's.
    cache.clear()
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    srv = StoppableServer()
    yield srv
    srv.stop()


@pytest.fixture
def tls_contexts(monkeypatch) -> list[dict]:
    """The keyword arguments of each ssl.create_default_context call during the test (a TLS
    context made is a CA bundle loaded)."""
    import ssl

    made: list[dict] = []
    real = ssl.create_default_context

    def spy(*args, **kwargs):
        made.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", spy)
    return made
