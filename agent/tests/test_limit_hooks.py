"""The UserPromptSubmit and SessionStart hooks and the status line segment, run as Claude Code
runs them (a subprocess, the documented JSON on stdin) against a live server."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from claude_telemetry.projects import hashed_name
from django.core.cache import cache
from django.core.management import call_command

from accounts.models import User
from budgets.models import Enforcement, EnforcementEvent, EnforcementExemption, ScopeKind
from tests.budgets.conftest import spend
from tests.factories import make_budget, project_for
from tests.factories.usage import machine_for

MEMBER = "dev@a.example"
OWNER = "owner@a.example"


def prompt_input(
    session: str = "session-1",
    prompt: str = "refactor the parser",
    cwd: str = "/tmp/project",
    transcript: str = "/tmp/transcript.jsonl",
) -> bytes:
    return json.dumps(
        {
            "session_id": session,
            "transcript_path": transcript,
            "cwd": cwd,
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
    assert warned["systemMessage"].startswith("Near a limit.")
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
    crossings = EnforcementEvent.objects.filter(kind__in=["warn", "stop"])
    assert sorted(crossings.values_list("kind", "threshold")) == [("stop", 100), ("warn", 90)]


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
    make_budget(team, amount="1000", name="Team cap", enforcement=Enforcement.STOP)
    spend(machine, today(), "1234.5")
    EnforcementExemption.objects.create(team=team, member=connected)
    refresh(cli)
    said = answer(cli("hook-prompt-submit", stdin=prompt_input()))
    assert "decision" not in said
    assert "Exempt" in said["systemMessage"]
    # Past the cap is not "near" it; amounts are grouped as everywhere else.
    assert said["systemMessage"].startswith("Over a limit.")
    assert "$1,234.50 spent of $1,000.00" in said["systemMessage"]


def age_status(agent_env, seconds: float) -> None:
    path = Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "limits-status.json"
    record = json.loads(path.read_text())
    record["fetched_at"] -= seconds
    path.write_text(json.dumps(record))


def test_a_stale_status_is_refreshed_on_demand_by_the_hook(team, machine, cli, agent_env):
    make_budget(team, amount="10", name="Team cap", enforcement="stop")
    spend(machine, today(), "5")
    refresh(cli)
    spend(machine, today(), "11")
    cache.clear()
    age_status(agent_env, 3 * 3600)
    said = answer(cli("hook-prompt-submit", stdin=prompt_input()))
    assert said["decision"] == "block"  # the hook asked the server itself
    assert "$11.00 spent of $10.00" in said["reason"]


def test_a_stale_status_never_refuses_a_prompt_and_says_why(server, team, machine, cli, agent_env):
    make_budget(team, amount="10", name="Team cap", enforcement="stop")
    spend(machine, today(), "11")
    refresh(cli)
    server.stop()
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
    # No status was ever fetched, and the hook's own attempt fails: the prompt goes through
    # with a note, and the session start (not asking again so soon) says why too.
    said = answer(cli("hook-prompt-submit", stdin=prompt_input()))
    assert "decision" not in said
    assert "the server is unreachable: Connection refused" in said["systemMessage"]
    assert "not checked" in said["systemMessage"]
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


@pytest.mark.skipif(os.name == "nt", reason="a FIFO is POSIX (the thread timeout is not)")
def test_a_status_file_that_never_answers_is_given_up_within_the_hard_timeout(cli, agent_env):
    home = Path(agent_env["CLAUDE_TELEMETRY_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    os.mkfifo(home / "limits-status.json")  # reading it blocks forever: no writer
    started = time.monotonic()
    done = cli("hook-prompt-submit", stdin=prompt_input())
    elapsed = time.monotonic() - started
    assert done.code == 0
    assert "decision" not in answer(done)
    assert answer(done)["systemMessage"] == (
        "claude-telemetry: the limits check took over 0.5 s, so limits are not checked this time."
    )
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


# --- a server that accepts and never answers ---------------------------------------------------


@pytest.fixture
def stalled_server():
    """A real socket that accepts connections and never says a word (a hung server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", held
    done.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def point_at(agent_env, url: str) -> None:
    config = Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "config.toml"
    text = config.read_text()
    start = text.index("url = ")
    end = text.index("\n", start)
    config.write_text(text[:start] + f'url = "{url}"' + text[end:])


def test_a_server_that_never_answers_is_given_up_and_the_prompt_goes_through_with_a_note(
    team, machine, cli, agent_env, stalled_server
):
    url, held = stalled_server
    make_budget(team, amount="10", name="Team cap", enforcement="stop")
    spend(machine, today(), "11")
    point_at(agent_env, url)
    started = time.monotonic()
    done = cli("hook-prompt-submit", stdin=prompt_input())
    elapsed = time.monotonic() - started
    said = answer(done)
    assert held, "the hook never reached the server"
    assert "decision" not in said
    assert "no answer within 0.3 s" in said["systemMessage"]
    assert "not checked" in said["systemMessage"]
    assert elapsed < 10, elapsed  # 0.3 s of waiting; the rest is the interpreter's start-up


def test_with_a_hung_server_a_stale_stop_answers_from_the_cache_and_does_not_refuse(
    team, machine, cli, agent_env, stalled_server
):
    url, held = stalled_server
    make_budget(team, amount="10", name="Team cap", enforcement="stop")
    spend(machine, today(), "11")
    refresh(cli)
    age_status(agent_env, 2 * 3600)
    point_at(agent_env, url)
    said = answer(cli("hook-prompt-submit", stdin=prompt_input()))
    assert held
    assert "decision" not in said
    assert "120 min old" in said["systemMessage"] and "not enforced" in said["systemMessage"]


# --- project budgets ---------------------------------------------------------------------------

WEBAPP = "-home-dev-src-webapp"


def in_folder(cwd: str, key: str | None) -> bytes:
    transcript = f"/home/dev/.claude/projects/{key}/session-1.jsonl" if key else ""
    return prompt_input(cwd=cwd, transcript=transcript)


def test_a_project_budget_stops_prompts_in_its_project_only(team, machine, cli, agent_env):
    project = project_for(team, WEBAPP, display_name="webapp")
    make_budget(
        team,
        amount="10",
        name="Webapp",
        scope=ScopeKind.PROJECT,
        project=project,
        enforcement="stop",
    )
    spend(machine, today(), "11", project=project)
    refresh(cli)
    # The transcript's folder is ccusage's key, wherever the session has cd'ed to since.
    refused = answer(cli("hook-prompt-submit", stdin=in_folder("/home/dev/src/webapp/lib", WEBAPP)))
    assert refused["decision"] == "block"
    assert "Webapp (project webapp, monthly)" in refused["reason"]
    assert "$11.00 spent of $10.00" in refused["reason"] and OWNER in refused["reason"]
    # Without a transcript path, the working folder encoded as Claude Code does.
    assert (
        answer(cli("hook-prompt-submit", stdin=in_folder("/home/dev/src/webapp", None)))["decision"]
        == "block"
    )
    # Another project is not stopped, and the status line does not say STOPPED there.
    elsewhere = in_folder("/home/dev/src/other", "-home-dev-src-other")
    assert answer(cli("hook-prompt-submit", stdin=elsewhere)) is None
    assert "STOPPED" not in cli("status").stdout


def test_with_hashed_project_names_the_hook_finds_the_projects_budget(
    team, machine, cli, agent_env
):
    config = Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "config.toml"
    text = config.read_text().replace("hash_project_names = false", "hash_project_names = true")
    config.write_text(text)
    salt = text.split('hash_salt = "', 1)[1].split('"', 1)[0]
    project = project_for(team, hashed_name(WEBAPP, salt), display_name="hash-1")
    make_budget(
        team,
        amount="10",
        name="Hashed",
        scope=ScopeKind.PROJECT,
        project=project,
        enforcement="stop",
    )
    spend(machine, today(), "11", project=project)
    refresh(cli)
    said = answer(cli("hook-prompt-submit", stdin=in_folder("/home/dev/src/webapp", WEBAPP)))
    assert said["decision"] == "block"
    elsewhere = in_folder("/home/dev/src/other", "-home-dev-src-other")
    assert answer(cli("hook-prompt-submit", stdin=elsewhere)) is None


# --- every refused prompt is a row on the server -----------------------------------------------


def queued(agent_env) -> list[Path]:
    return sorted(Path(agent_env["CLAUDE_TELEMETRY_HOME"]).glob("limits-refusals.jsonl*"))


def wait_for(condition, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_each_refused_prompt_is_reported_once_and_a_resend_is_not_counted_again(
    team, machine, connected, cli, agent_env
):
    make_budget(team, amount="10", name="Team cap", enforcement="stop")
    spend(machine, today(), "11")
    refresh(cli)
    for session in ("session-1", "session-1", "session-2"):
        assert answer(cli("hook-prompt-submit", stdin=prompt_input(session)))["decision"] == "block"
    # The first refusal started a detached refresh; the rest go with the next one.
    assert cli("limits", "--refresh").code == 0
    refused = EnforcementEvent.objects.filter(kind="refused")
    assert wait_for(lambda: refused.count() == 3 and not queued(agent_env)), (
        refused.count(),
        queued(agent_env),
    )
    assert sorted(e.data["session_id"] for e in refused) == ["session-1", "session-1", "session-2"]
    assert {(e.member, e.label, e.threshold) for e in refused} == {
        (connected, "Team cap (whole team, monthly)", 100)
    }
    # A batch whose answer was lost is sent again: the server counts each refusal once.
    lines = [
        json.dumps(
            {
                "id": e.client_id.hex,
                "at": e.created_at.isoformat(),
                "subject": e.subject,
                "threshold": e.threshold,
                "name": e.label,
            }
        )
        for e in refused
    ]
    queue = Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "limits-refusals.jsonl"
    queue.write_text("\n".join(lines) + "\n")
    assert cli("limits", "--refresh").code == 0
    assert not queued(agent_env)
    assert EnforcementEvent.objects.filter(kind="refused").count() == 3


def test_refusals_wait_in_the_queue_while_the_server_is_down(server, team, machine, cli, agent_env):
    make_budget(team, amount="10", name="Team cap", enforcement="stop")
    spend(machine, today(), "11")
    refresh(cli)
    server.stop()
    assert answer(cli("hook-prompt-submit", stdin=prompt_input()))["decision"] == "block"
    assert cli("limits", "--refresh").code == 1
    assert queued(agent_env)
    assert not EnforcementEvent.objects.filter(kind="refused").exists()
    server.start()
    assert cli("limits", "--refresh").code == 0
    assert wait_for(lambda: not queued(agent_env))
    assert EnforcementEvent.objects.filter(kind="refused").count() == 1


def test_the_status_line_shows_the_sessions_project_budget(team, machine, cli, agent_env):
    project = project_for(team, WEBAPP, display_name="webapp")
    make_budget(
        team,
        amount="100",
        name="Webapp",
        scope=ScopeKind.PROJECT,
        project=project,
        enforcement="warn",
    )
    spend(machine, today(), "85", project=project)
    refresh(cli)
    assert cli("install-statusline", "--limits").code == 0

    def line(project_dir: str, key: str) -> str:
        payload = {
            "session_id": "s",
            "transcript_path": f"/home/dev/.claude/projects/{key}/s.jsonl",
            "cwd": project_dir,
            "workspace": {"current_dir": project_dir, "project_dir": project_dir},
            "model": {"id": "claude-opus-4"},
        }
        done = cli("statusline-capture", stdin=json.dumps(payload).encode())
        assert done.code == 0, done.output
        return done.stdout.splitlines()[0]

    assert "project 85%" in line("/home/dev/src/webapp", WEBAPP)
    assert "project" not in line("/home/dev/src/other", "-home-dev-src-other")


def test_an_agent_that_cannot_ask_the_server_lets_prompts_through_quietly(cli, agent_env):
    # Not set up (or a keyring token): nothing to ask with, so no note on every prompt.
    Path(agent_env["CLAUDE_TELEMETRY_HOME"]).mkdir(parents=True, exist_ok=True)
    assert answer(cli("hook-prompt-submit", stdin=prompt_input())) is None
    said = answer(cli("hook-session-start", stdin=start_input()))
    assert "no budget status yet, so limits are not checked" in said["systemMessage"]
