"""Claude Code hooks: SessionEnd starts one background sync, at most every few minutes;
UserPromptSubmit and SessionStart warn or stop at the team's limits (docs/agent.md).

Claude Code waits for these on every prompt, so this module imports only light modules."""

from __future__ import annotations

import contextlib
import os
import sys
import time

from claude_telemetry.limits import (
    QUICK_REFRESH_SECONDS,
    STALE_SECONDS,
    describe,
    live_checks,
    now_utc,
    over,
    queue_refusal,
    quick_refresh,
    quick_refresh_due,
    read_cache,
    refresh_in_background,
    session_project_keys,
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
# `session_id`, `transcript_path`, `cwd` (and `prompt` / `source`); exit 0 with JSON on stdout.
# `decision: "block"` with `reason` refuses a prompt; `systemMessage` is shown to the user;
# `additionalContext` in `hookSpecificOutput` is given to Claude. Anything unexpected means
# exit 0 and no output.

# The whole hook, on any OS: the work runs in a thread the main thread waits for this long.
HARD_TIMEOUT_SECONDS = 0.5
PROMPT_SUBMIT = "UserPromptSubmit"
SESSION_START = "SessionStart"
_NOTIFIED_FILE = "limits-notified.json"
_NOTIFIED_SESSIONS = 50
TIMED_OUT_NOTE = (
    f"claude-telemetry: the limits check took over {HARD_TIMEOUT_SECONDS:g} s, so limits are "
    "not checked this time."
)


def _within(seconds: float, work, *args):
    """(finished, result) of `work(*args)` run in a daemon thread waited for `seconds` at most:
    a hard timeout that holds on every OS (no signals), for work that may block in a system
    call (a DNS lookup, a read). The thread is left behind when it does not finish."""
    import threading

    result: list = []

    def run() -> None:
        try:
            result.append(work(*args))
        except BaseException as exc:  # the caller fails open on it
            result.append(exc)

    worker = threading.Thread(target=run, daemon=True, name="claude-telemetry-hook")
    worker.start()
    worker.join(seconds)
    if worker.is_alive() or not result:
        return False, None
    return True, result[0]


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


def decide(
    event: str,
    payload: dict,
    status: dict | None,
    age: float,
    home_root,
    unreachable: str | None = None,
) -> dict | None:
    """The hook's JSON answer for `event` (or None: say nothing, let the prompt through).

    `unreachable` is why this hook's own attempt to fetch a missing or stale status failed
    (None when it was not tried or succeeded): the prompt then says so once."""
    if status is None:
        if event == SESSION_START or unreachable:
            why = f" ({unreachable})" if unreachable else ""
            return _output(
                event,
                f"claude-telemetry: no budget status yet{why}, so limits are not checked "
                "(run: claude-telemetry limits --refresh).",
            )
        return None
    now = now_utc()
    checks = live_checks(status, now, session_project_keys(payload, status))
    contacts = [c for c in status.get("contacts") or [] if isinstance(c, str)]
    stops = [c for c in checks if c["level"] == "stop"]
    warns = [c for c in checks if c["level"] == "warn"]
    if age > STALE_SECONDS:
        if event == SESSION_START or stops or unreachable:
            return _output(
                event,
                f"claude-telemetry: the budget status is {age / 60:.0f} min old (server or "
                "agent unavailable), so limits are not enforced until it refreshes.",
            )
        return None
    if stops:
        reason = "Budget limit reached. " + " ".join(describe(c, contacts) for c in stops)
        if event == PROMPT_SUBMIT:
            # Reported to the server by the next refresh; this only appends a line.
            queue_refusal(home_root, stops, payload.get("session_id"), now)
            return {"decision": "block", "reason": reason}
        return _output(event, reason + " Prompts will be refused until then.")
    if not warns:
        return None
    if event == PROMPT_SUBMIT:
        session = payload.get("session_id")
        keys = [f"{c.get('subject')}:{c.get('threshold')}:{c.get('exempt')}" for c in warns]
        if not isinstance(session, str) or not _first_time(home_root, session[:200], keys):
            return None
    lead = "Over a limit. " if any(over(c) for c in warns) else "Near a limit. "
    return _output(event, lead + " ".join(describe(c, contacts) for c in warns))


def _answer(home_root, explicit_home: bool, event: str) -> dict | None:
    import json

    try:
        payload = json.loads(sys.stdin.buffer.read() or b"null")
    except (OSError, ValueError):
        return None  # malformed input never blocks
    # Only the event this command was installed for; anything else is not Claude Code's input.
    if not isinstance(payload, dict) or payload.get("hook_event_name") != event:
        return None
    status, age = read_cache(home_root)
    unreachable = None
    if (status is None or age > STALE_SECONDS) and quick_refresh_due(home_root):
        finished, problem = _within(QUICK_REFRESH_SECONDS, quick_refresh, home_root)
        if finished and problem is None:
            status, age = read_cache(home_root)
        elif not finished:
            unreachable = f"no answer within {QUICK_REFRESH_SECONDS:g} s"
        elif problem:
            unreachable = str(problem)
    try:
        answer = decide(event, payload, status, age, home_root, unreachable)
    except Exception:  # a damaged status must fail open
        answer = None
    refused = isinstance(answer, dict) and answer.get("decision") == "block"
    refresh_in_background(home_root, explicit_home, age, force=refused)
    return answer


def limits_hook(home_root, explicit_home: bool, event: str) -> int:
    """`hook-prompt-submit` / `hook-session-start`: answer from the local status, always exit 0.

    Everything runs in a thread the main thread waits for HARD_TIMEOUT_SECONDS at most; past
    that the prompt goes through with a note, whatever the thread is stuck on."""
    import json

    finished, answer = _within(HARD_TIMEOUT_SECONDS, _answer, home_root, explicit_home, event)
    if not finished:
        os.write(1, json.dumps({"systemMessage": TIMED_OUT_NOTE}).encode())
        os._exit(0)  # the stuck thread may hold a lock interpreter shutdown would wait for
    if isinstance(answer, dict):
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
