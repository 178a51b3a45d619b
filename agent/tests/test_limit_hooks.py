"""The UserPromptSubmit and SessionStart hooks and the status line segment, run as Claude Code
runs them (a subprocess, the documented JSON on stdin) against a live server."""

from __future__ import annotations

import io
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command

from accounts.models import User
from budgets.models import Enforcement, EnforcementEvent, EnforcementExemption
from tests.budgets.conftest import spend
from tests.factories import make_budget
from tests.factories.usage import machine_for

MEMBER = "dev@a.example"
OWNER = "owner@a.example"


def prompt_input(session: str = "session-1", prompt: str = "refactor the parser") -> bytes:
    return json.dumps(
        {
            "session_id": session,
            "transcript_path": "/tmp/transcript.jsonl",
            "cwd": "/tmp/project",
            "hook_event_name": "UserPromptSubmit",
            "prompt": prompt,
        }
    ).encode()


def start_input(session: str = "session-1") -> bytes:
    return json.dumps(
        {
            "session_id": session,
            "transcript_path": "/tmp/transcript.jsonl",
            "cwd": "/tmp/project",
            "hook_event_name": "SessionStart",
            "source": "startup",
        }
    ).encode()


# Another event's input given to the prompt hook (a miswired settings.json).
SESSION_START_AS_PROMPT = start_input()


def answer(done) -> dict | None:
    assert done.code == 0, done.output
    return json.loads(done.stdout) if done.stdout.strip() else None


@pytest.fixture
def team(server):
    call_command("adduser", OWNER, "--team", "team-a", "--role", "owner", stdout=io.StringIO())
    call_command("adduser", MEMBER, "--team", "team-a", "--role", "member", stdout=io.StringIO())
    return User.objects.get(email=MEMBER).team


@pytest.fixture
def connected(server, team, cli):
    out = io.StringIO()
    # The agent's usual token: ingest only.
    call_command("create_api_token", MEMBER, "--name", "laptop", "--scopes", "ingest", stdout=out)
    done = cli(
        "setup",
        "--server",
        server.url,
        "--token",
        out.getvalue().strip(),
        "--name",
        "laptop",
        "--non-interactive",
        "--skip-ccusage-check",
    )
    assert done.code == 0, done.output
    return User.objects.get(email=MEMBER)


@pytest.fixture
def machine(connected):
    return machine_for(connected, "desk")


def refresh(cli) -> None:
    cache.clear()  # the server's few seconds of cache would hide the test's new spend
    done = cli("limits", "--refresh")
    assert done.code == 0, done.output


def today():
    return datetime.now(UTC).date()


def test_under_at_and_past_a_stop_budget_the_prompt_is_let_through_warned_once_then_refused(
    team, machine, cli
):
    make_budget(team, amount="100", name="Team cap", thresholds=[90], enforcement="stop")
    spend(machine, today(), "50")
    refresh(cli)
    assert answer(cli("hook-prompt-submit", stdin=prompt_input())) is None

    spend(machine, today(), "90")
    refresh(cli)
    warned = answer(cli("hook-prompt-submit", stdin=prompt_input()))
    assert warned is not None and "decision" not in warned
    assert warned["hookSpecificOutput"]["hookEventName"] == "UserPromptSubmit"
    assert "Team cap" in warned["hookSpecificOutput"]["additionalContext"]
    assert "$90.00 spent of $100.00" in warned["systemMessage"]
    # Once per session: the next prompt of the same session goes through quietly.
    assert answer(cli("hook-prompt-submit", stdin=prompt_input())) is None
    assert answer(cli("hook-prompt-submit", stdin=prompt_input("session-2"))) is not None

    spend(machine, today(), "100.01")
    refresh(cli)
    refused = answer(cli("hook-prompt-submit", stdin=prompt_input()))
    assert refused["decision"] == "block"
    reason = refused["reason"]
    assert "Team cap" in reason and "$100.01 spent of $100.00" in reason
    assert "resets" in reason and OWNER in reason
    kinds = sorted(EnforcementEvent.objects.values_list("kind", "threshold"))
    assert kinds == [("stop", 100), ("warn", 90)]


def test_session_start_tells_the_member_before_the_first_prompt(team, machine, cli):
    make_budget(team, amount="10", name="Team cap", enforcement="stop")
    spend(machine, today(), "11")
    refresh(cli)
    said = answer(cli("hook-session-start", stdin=start_input()))
    assert said["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    assert "Prompts will be refused" in said["hookSpecificOutput"]["additionalContext"]
    assert "decision" not in said  # SessionStart cannot block; it only informs
    status = cli("status")
    assert "Limits:" in status.stdout and "STOPPED" in status.stdout
    shown = cli("limits")
    assert shown.code == 0 and "STOP  Team cap" in shown.stdout


def test_an_exempt_member_is_warned_not_stopped(team, machine, connected, cli):
    make_budget(team, amount="10", name="Team cap", enforcement=Enforcement.STOP)
    spend(machine, today(), "11")
    EnforcementExemption.objects.create(team=team, member=connected)
    refresh(cli)
    said = answer(cli("hook-prompt-submit", stdin=prompt_input()))
    assert "decision" not in said
    assert "Exempt" in said["systemMessage"]


def age_status(agent_env, seconds: float) -> None:
    path = Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "limits-status.json"
    record = json.loads(path.read_text())
    record["fetched_at"] -= seconds
    path.write_text(json.dumps(record))


def test_a_stale_status_never_refuses_a_prompt_and_says_why(team, machine, cli, agent_env):
    make_budget(team, amount="10", name="Team cap", enforcement="stop")
    spend(machine, today(), "11")
    refresh(cli)
    age_status(agent_env, 3 * 3600)
    said = answer(cli("hook-prompt-submit", stdin=prompt_input()))
    assert "decision" not in said
    assert "180 min old" in said["systemMessage"]
    assert "not enforced" in said["systemMessage"]


def test_with_the_server_down_refresh_gives_up_in_seconds_and_the_hooks_fail_open(
    server, team, machine, cli, agent_env
):
    make_budget(team, amount="10", name="Team cap", enforcement="stop")
    spend(machine, today(), "11")
    server.stop()
    started = time.monotonic()
    done = cli("limits", "--refresh")
    assert done.code == 1 and "Could not refresh" in done.output
    assert time.monotonic() - started < 30  # bounded by the 5 s timeout, plus start-up
    # No status was ever fetched: the prompt goes through, the session start says why.
    assert answer(cli("hook-prompt-submit", stdin=prompt_input())) is None
    said = answer(cli("hook-session-start", stdin=start_input()))
    assert "not checked" in said["systemMessage"]


@pytest.mark.parametrize(
    "stdin",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe",
        b"{" * 5000,
        b'{"session_id": "s"}',
        SESSION_START_AS_PROMPT,
    ],
)
def test_malformed_input_never_blocks(team, machine, cli, stdin):
    make_budget(team, amount="10", name="Team cap", enforcement="stop")
    spend(machine, today(), "11")
    refresh(cli)
    done = cli("hook-prompt-submit", stdin=stdin)
    assert done.code == 0
    assert '"block"' not in done.stdout


def test_a_damaged_status_file_fails_open(cli, agent_env):
    home = Path(agent_env["CLAUDE_TELEMETRY_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    (home / "limits-status.json").write_text('{"fetched_at": 1e30, "status": {"checks": 7}}')
    assert answer(cli("hook-prompt-submit", stdin=prompt_input())) is None


@pytest.mark.skipif(os.name == "nt", reason="a FIFO and an interval timer are POSIX")
def test_a_status_file_that_never_answers_is_given_up_within_the_hard_timeout(cli, agent_env):
    home = Path(agent_env["CLAUDE_TELEMETRY_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    os.mkfifo(home / "limits-status.json")  # reading it blocks forever: no writer
    started = time.monotonic()
    done = cli("hook-prompt-submit", stdin=prompt_input())
    elapsed = time.monotonic() - started
    assert done.code == 0 and done.stdout == ""
    assert elapsed < 10, elapsed  # the hook gives up after 0.5 s; the rest is start-up


def test_the_status_line_leads_with_the_limits_and_keeps_the_users_own_output(
    team, machine, cli, agent_env
):
    settings = Path(agent_env["CLAUDE_CONFIG_DIR"].split(",")[0]) / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text('{"statusLine": {"type": "command", "command": "printf \'my line\'"}}\n')
    make_budget(team, amount="100", name="Team cap", enforcement="warn")
    spend(machine, today(), "42")
    refresh(cli)
    assert cli("install-statusline", "--limits").code == 0
    payload = json.dumps({"session_id": "s", "model": {"id": "claude-opus-4"}}).encode()
    done = cli("statusline-capture", stdin=payload)
    assert done.code == 0
    first_line = done.stdout.splitlines()[0]
    assert first_line.startswith("budget 42%")
    assert first_line.endswith(" | my line")
    before = settings.read_bytes()
    assert cli("install-statusline", "--uninstall").code == 0
    assert settings.read_bytes() != before
    assert settings.read_text() == (
        '{"statusLine": {"type": "command", "command": "printf \'my line\'"}}\n'
    )
    done = cli("statusline-capture", stdin=payload)
    assert done.stdout == ""  # uninstalled: no original command is recorded any more


def test_each_sync_refreshes_the_status(team, machine, cli, agent_env):
    make_budget(team, amount="10", name="Team cap", enforcement="stop")
    spend(machine, today(), "11")
    cache.clear()
    done = cli("sync")
    assert done.code == 0, done.output
    said = answer(cli("hook-prompt-submit", stdin=prompt_input()))
    assert said["decision"] == "block"
