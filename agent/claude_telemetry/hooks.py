"""Claude Code hooks: SessionEnd starts one background sync, at most every few minutes;
UserPromptSubmit and SessionStart warn or stop at the team's limits (docs/agent.md).

Claude Code waits for these on every prompt, so this module imports only light modules."""

from __future__ import annotations

import contextlib
import os
import sys
import time

from claude_telemetry.limits import (
    STALE_SECONDS,
    describe,
    live_checks,
    now_utc,
    read_cache,
    refresh_in_background,
)

# typing and subprocess cost milliseconds Claude Code would wait for on every prompt.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from claude_telemetry.config import Home

DEBOUNCE_SECONDS = 300


def session_end(home: Home) -> int:
    # Claude Code passes the session's JSON on stdin; nothing in it is needed.
    with contextlib.suppress(OSError, ValueError):
        sys.stdin.buffer.read()
    marker = home.root / "hook-last-trigger"
    try:
        if time.time() - marker.stat().st_mtime < DEBOUNCE_SECONDS:
            return 0
    except FileNotFoundError:
        pass
    import subprocess

    home.ensure()
    marker.touch()
    argv = [sys.executable, "-m", "claude_telemetry", "--home", str(home.root), "sync", "--service"]
    kwargs: dict = {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "close_fds": True,
    }
    if os.name == "nt":  # pragma: no cover - Windows only
        kwargs["creationflags"] = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True  # survives Claude Code closing the hook's group
    subprocess.Popen(argv, **kwargs)
    return 0


# --- UserPromptSubmit and SessionStart: budgets and quotas in the session ------------------------
# Contract (docs/agent.md, Claude Code's hooks reference): JSON on stdin with `hook_event_name`,
# `session_id` (and `prompt` / `source`); exit 0 with JSON on stdout. `decision: "block"` with
# `reason` refuses a prompt; `systemMessage` is shown to the user; `additionalContext` in
# `hookSpecificOutput` is given to Claude. Anything unexpected means exit 0 and no output.

HARD_TIMEOUT_SECONDS = 0.5
PROMPT_SUBMIT = "UserPromptSubmit"
SESSION_START = "SessionStart"
_NOTIFIED_FILE = "limits-notified.json"
_NOTIFIED_SESSIONS = 50


def _arm_hard_timeout() -> None:
    """Past HARD_TIMEOUT_SECONDS the hook exits 0 with no output: the prompt goes through."""
    import signal

    if not hasattr(signal, "setitimer"):  # pragma: no cover - Windows has no interval timer
        return

    def give_up(signum, frame):
        os._exit(0)

    signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, HARD_TIMEOUT_SECONDS)


def _output(event: str, notice: str) -> dict:
    return {
        "systemMessage": notice,
        "hookSpecificOutput": {"hookEventName": event, "additionalContext": notice},
    }


def _first_time(home_root, session_id: str, keys: list[str]) -> list[str]:
    """Keys not yet shown in this session (and remember them): a warning is said once."""
    import json

    path = home_root / _NOTIFIED_FILE
    try:
        seen = json.loads(path.read_bytes())
        seen = seen if isinstance(seen, dict) else {}
    except (OSError, ValueError):
        seen = {}
    previous = seen.get(session_id)
    shown: list = previous if isinstance(previous, list) else []
    new = [k for k in keys if k not in shown]
    if new:
        seen.pop(session_id, None)
        seen[session_id] = [*shown, *new]
        seen = dict(list(seen.items())[-_NOTIFIED_SESSIONS:])
        with contextlib.suppress(OSError):
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(seen), "utf-8")
            os.replace(tmp, path)
    return new


def decide(event: str, payload: dict, status: dict | None, age: float, home_root) -> dict | None:
    """The hook's JSON answer for `event` (or None: say nothing, let the prompt through)."""
    if status is None:
        if event == SESSION_START:
            return _output(
                event,
                "claude-telemetry: no budget status yet, so limits are not checked "
                "(run: claude-telemetry limits --refresh).",
            )
        return None
    now = now_utc()
    checks = live_checks(status, now)
    contacts = [c for c in status.get("contacts") or [] if isinstance(c, str)]
    stops = [c for c in checks if c["level"] == "stop"]
    warns = [c for c in checks if c["level"] == "warn"]
    if age > STALE_SECONDS:
        if event == SESSION_START or stops:
            return _output(
                event,
                f"claude-telemetry: the budget status is {age / 60:.0f} min old (server or "
                "agent unavailable), so limits are not enforced until it refreshes.",
            )
        return None
    if stops:
        reason = "Budget limit reached. " + " ".join(describe(c, contacts) for c in stops)
        if event == PROMPT_SUBMIT:
            return {"decision": "block", "reason": reason}
        return _output(event, reason + " Prompts will be refused until then.")
    if not warns:
        return None
    if event == PROMPT_SUBMIT:
        session = payload.get("session_id")
        keys = [f"{c.get('subject')}:{c.get('threshold')}:{c.get('exempt')}" for c in warns]
        if not isinstance(session, str) or not _first_time(home_root, session[:200], keys):
            return None
    return _output(event, "Near a limit. " + " ".join(describe(c, contacts) for c in warns))


def limits_hook(home_root, explicit_home: bool, event: str) -> int:
    """`hook-prompt-submit` / `hook-session-start`: answer from the local status, always exit 0."""
    _arm_hard_timeout()
    import json

    try:
        payload = json.loads(sys.stdin.buffer.read() or b"null")
    except (OSError, ValueError):
        return 0  # malformed input never blocks
    # Only the event this command was installed for; anything else is not Claude Code's input.
    if not isinstance(payload, dict) or payload.get("hook_event_name") != event:
        return 0
    status, age = read_cache(home_root)
    try:
        answer = decide(event, payload, status, age, home_root)
    except Exception:  # a damaged status must fail open
        answer = None
    refresh_in_background(home_root, explicit_home, age)
    if answer is not None:
        sys.stdout.write(json.dumps(answer))
        sys.stdout.flush()
    return 0


LIMIT_HOOKS = {"hook-prompt-submit": PROMPT_SUBMIT, "hook-session-start": SESSION_START}


def fast_limits_hook(argv: list[str]) -> int | None:
    """`[--home DIR] hook-prompt-submit|hook-session-start` without argparse or platformdirs
    (unless the default home must be found): the lean start Claude Code's wait needs.
    None when `argv` has another shape; the full command line handles it then."""
    from pathlib import Path

    if not argv or argv[-1] not in LIMIT_HOOKS:
        return None
    explicit = len(argv) == 3 and argv[0] == "--home"
    if not explicit and len(argv) != 1:
        return None
    if explicit:
        root = Path(argv[1]).expanduser().resolve()
    elif os.environ.get("CLAUDE_TELEMETRY_HOME"):
        root = Path(os.environ["CLAUDE_TELEMETRY_HOME"]).expanduser().resolve()
    else:
        from claude_telemetry.config import resolve_home

        root = resolve_home(None)
    return limits_hook(root, explicit, LIMIT_HOOKS[argv[-1]])
