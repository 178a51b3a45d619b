"""The local copy of the server's agent status, and what the hooks and status line make of it.

Claude Code waits for hooks and the status line, so reading this cache imports only the
standard library's light modules; the full refresh (claude_telemetry.http) runs in sync,
`limits --refresh` or a detached background process. A hook whose status is missing or stale
asks the server itself (`quick_refresh`, standard library only) in a thread it waits for at
most QUICK_REFRESH_SECONDS. Prompts the hook refuses are queued in REFUSALS_FILE and sent by the
next refresh (`send_refusals`), never by the hook.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# typing and subprocess cost milliseconds Claude Code would wait for on every prompt.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STATUS_FILE = "limits-status.json"
# Where read_cache puts privacy.hash_salt (when project names are hashed) into the status.
HASH_SALT_KEY = "_project_hash_salt"
STATUS_PATH = "/api/v1/agent/status/"
# Older than this, the cached status is a hint, never a reason to refuse a prompt.
STALE_SECONDS = 30 * 60
# Hooks start a background refresh when the cache is older than this ...
REFRESH_AFTER_SECONDS = 60
# ... at most this often.
REFRESH_DEBOUNCE_SECONDS = 30
REFRESH_TIMEOUT_SECONDS = 5.0
# A hook with no usable status asks the server once, at most this long (under the hook's
# hard timeout), and at most every REFRESH_DEBOUNCE_SECONDS.
QUICK_REFRESH_SECONDS = 0.3
REFUSALS_FILE = "limits-refusals.jsonl"
# The server takes at most this many refusals per request (budgets.api.MAX_REFUSALS).
REFUSALS_PER_REQUEST = 500
REFUSALS_PATH = "/api/v1/agent/refusals/"
# Answers about the set-up or the moment, not the batch (a revoked token, a server without the
# endpoint yet, throttling): the refusals stay queued.
KEEP_ON = frozenset({401, 403, 404, 408, 429})
# A queue this large means they have not been sent for a long while: later ones are not kept.
MAX_QUEUE_BYTES = 1 << 20


def status_path(home_root: Path) -> Path:
    return home_root / STATUS_FILE


def read_cache(home_root: Path, now: float | None = None) -> tuple[dict[str, Any] | None, float]:
    """(the server's last status or None, its age in seconds; infinite when there is none)."""
    try:
        record = json.loads(status_path(home_root).read_bytes())
    except (OSError, ValueError):
        return None, float("inf")
    if not isinstance(record, dict) or not isinstance(record.get("status"), dict):
        return None, float("inf")
    fetched = record.get("fetched_at")
    if isinstance(fetched, bool) or not isinstance(fetched, int | float):
        return None, float("inf")
    age = (time.time() if now is None else now) - fetched
    status = record["status"]
    salt = record.get("project_hash_salt")
    if isinstance(salt, str) and salt:
        status = {**status, HASH_SALT_KEY: salt}
    return status, max(age, 0.0)


def _keep(home_root: Path, server_url: str, status: Any, project_salt: str | None) -> None:
    from claude_telemetry.fsutil import atomic_write

    if not isinstance(status, dict) or "decision" not in status:
        raise ValueError("the server's answer is not an agent status")
    record: dict[str, Any] = {"fetched_at": time.time(), "server": server_url, "status": status}
    if project_salt:
        # The reports name projects by salted hash (privacy.hash_project_names): the hooks
        # hash the session's project the same way to find its budgets.
        record["project_hash_salt"] = project_salt
    atomic_write(status_path(home_root), json.dumps(record).encode("utf-8"))


def refresh(
    home_root: Path,
    server_url: str,
    token: str,
    timeout: float,
    project_salt: str | None = None,
    client: Any = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Send the queued refusals, then GET the member's status from the server and keep it.

    Raises on any failure of the GET (the old file then stays and ages into staleness); a
    failed send only leaves the refusals queued for the next refresh. `project_salt` is
    privacy.hash_salt when project names are hashed, else None. `client` is an open
    claude_telemetry.http.Session that already sends this token to this server (a sync's
    own, so its connection and TLS set-up are reused); without one, a session is made for
    the refresh, which connects within min(`timeout`, 3) seconds. Either way each request
    gives up after `timeout` seconds without progress. `status` is the status the server
    has just sent with a sync's answer (`?include=agent_status`): kept as it is, with no GET,
    unless refusals were sent after it.
    """
    import logging

    from claude_telemetry import __version__
    from claude_telemetry.http import Session

    own = None
    if client is None:
        headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": f"claude-telemetry-agent/{__version__}",
        }
        own = client = Session(
            server_url, headers=headers, timeout=timeout, connect_timeout=min(timeout, 3.0)
        )
    try:
        sent = 0
        try:
            sent = send_refusals(home_root, server_url, client, timeout=timeout)
        except Exception as exc:  # the status matters more; the queue waits
            logging.getLogger(__name__).warning("refusals not sent: %s", exc)
        if status is None or sent:
            response = client.get(server_url.rstrip("/") + STATUS_PATH, timeout=timeout)
            response.raise_for_status()
            status = response.json()
    finally:
        if own is not None:
            own.close()
    _keep(home_root, server_url, status, project_salt)
    return status


def _read_config(home_root: Path) -> tuple[str, str, str | None] | None:
    """(server URL, token, project hash salt or None) from config.toml and the token file,
    with tomllib only; None when they are missing or the token lives in the OS keyring."""
    import tomllib

    try:
        config = tomllib.loads((home_root / "config.toml").read_text("utf-8"))
        token = (home_root / "token").read_text("ascii").strip()
    except (OSError, ValueError):
        return None
    server = config.get("server", {}).get("url")
    privacy = config.get("privacy", {})
    if config.get("auth", {}).get("token_store", "file") != "file":
        return None
    if not isinstance(server, str) or not server.startswith(("http://", "https://")) or not token:
        return None
    salt = privacy.get("hash_salt") if privacy.get("hash_project_names") is True else None
    return server, token, salt if isinstance(salt, str) else None


def quick_refresh(home_root: Path, timeout: float = QUICK_REFRESH_SECONDS) -> str | None:
    """The hook's own refresh when its status is missing or stale: one GET with the standard
    library's urllib.request, at most `timeout` seconds per socket operation.
    None when a fresh status was kept, "" when it cannot ask (no config, or a keyring token:
    the detached refresh does that), else what went wrong in words (it never raises).
    The hook runs this in a thread it stops waiting for, so a slow DNS lookup cannot hang it."""
    try:
        found = _read_config(home_root)
        if found is None:
            return ""  # nothing to ask with (not set up, or the token is in the OS keyring)
        server, token, salt = found
        import urllib.request

        from claude_telemetry import __version__

        class NoRedirects(urllib.request.HTTPRedirectHandler):
            # The token must never follow a redirect to another host (Session refuses them too).
            def redirect_request(self, *args, **kwargs):
                return None

        request = urllib.request.Request(  # noqa: S310 - _read_config allows http(s) only
            server.rstrip("/") + STATUS_PATH,
            headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": f"claude-telemetry-agent/{__version__}",
                "Accept": "application/json",
            },
        )
        opener = urllib.request.build_opener(NoRedirects)
        with opener.open(request, timeout=timeout) as response:
            status = json.loads(response.read(1 << 20))
        _keep(home_root, server, status, salt)
        return None
    except Exception as exc:
        import socket
        import urllib.error

        if isinstance(exc, urllib.error.HTTPError):
            return f"the server answered {exc.code}"
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, socket.timeout | TimeoutError):
            return f"no answer within {timeout:g} s"
        if isinstance(reason, OSError) and reason.strerror:
            return f"the server is unreachable: {reason.strerror}"
        return f"{type(exc).__name__}: {exc}"[:200]


def quick_refresh_due(home_root: Path) -> bool:
    """Whether a hook may ask the server now: not more often than REFRESH_DEBOUNCE_SECONDS
    (shared with the background refresh), so a server that is down costs one wait, not one
    per prompt."""
    marker = home_root / "limits-quick-refresh"
    try:
        if time.time() - marker.stat().st_mtime < REFRESH_DEBOUNCE_SECONDS:
            return False
    except FileNotFoundError:
        pass
    try:
        marker.touch()
    except OSError:
        return False  # no agent home (never set up): nothing to ask with
    return True


# --- refused prompts: queued by the hook, sent by the next refresh ----------------------------


def queue_refusal(
    home_root: Path, checks: list[dict[str, Any]], session_id: Any, now: datetime
) -> None:
    """Append one line per stopping check to REFUSALS_FILE: a random id (the server's dedupe
    key), the time, the limit and the figures the member was shown. Never raises."""
    lines = []
    for check in checks:
        lines.append(
            json.dumps(
                {
                    "id": os.urandom(16).hex(),
                    "at": now.isoformat().replace("+00:00", "Z"),
                    "subject": str(check.get("subject") or "")[:80],
                    "threshold": check.get("threshold") or 0,
                    "name": str(check.get("name") or "")[:200],
                    "percent": check.get("percent"),
                    "spent_usd": check.get("spent_usd"),
                    "cap_usd": check.get("cap_usd"),
                    "session_id": session_id[:200] if isinstance(session_id, str) else "",
                }
            )
        )
    if not lines:
        return
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with contextlib.suppress(OSError):
        if os.stat(home_root / REFUSALS_FILE).st_size > MAX_QUEUE_BYTES:
            return
    with contextlib.suppress(OSError):
        # One O_APPEND write per refusal: concurrent hooks never interleave inside a line.
        fd = os.open(home_root / REFUSALS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def send_refusals(
    home_root: Path, server_url: str, client: Any, timeout: float | None = None
) -> int:
    """POST the queued refusals (`client`: a claude_telemetry.http.Session with the token)
    and drop those the server answered for. Returns how many were sent. `timeout` (seconds)
    bounds each request; None keeps the session's own.

    The queue is first renamed aside, so refusals queued meanwhile wait for the next send;
    a batch whose answer is lost is sent again later and counted once (the server dedupes by
    id). A batch the server refuses for its content (400, 413, ...) is dropped with a warning:
    resending it would fail forever. Network errors, 5xx and KEEP_ON keep it for the next try.
    """
    import logging

    log = logging.getLogger(__name__)
    queue = home_root / REFUSALS_FILE
    with contextlib.suppress(OSError):  # none queued, or a hook is appending (Windows): later
        os.replace(queue, queue.with_name(f"{REFUSALS_FILE}.{os.getpid()}.{time.time_ns()}"))
    sent = 0
    for batch_file in sorted(home_root.glob(f"{REFUSALS_FILE}.*")):
        try:
            raw = batch_file.read_bytes()
        except FileNotFoundError:
            continue  # another refresh sent it meanwhile
        items = []
        for line in raw.splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    items.append(item)
        for start in range(0, len(items), REFUSALS_PER_REQUEST):
            chunk = items[start : start + REFUSALS_PER_REQUEST]
            response = client.post(
                server_url.rstrip("/") + REFUSALS_PATH, json={"refusals": chunk}, timeout=timeout
            )
            if response.status_code in KEEP_ON or response.status_code >= 500:
                response.raise_for_status()  # kept: the next refresh tries again
            if response.status_code >= 400:
                log.warning("refusals dropped, the server refused them: %s", response.text[:500])
            else:
                sent += len(chunk)
        with contextlib.suppress(FileNotFoundError):
            batch_file.unlink()
    return sent


def refresh_in_background(
    home_root: Path, explicit_home: bool, age: float, *, force: bool = False
) -> None:
    """Start `limits --refresh --quiet` detached when the cache is old (or `force`: refusals
    are queued to send), at most every REFRESH_DEBOUNCE_SECONDS; never waits for it."""
    if age < REFRESH_AFTER_SECONDS and not force:
        return
    marker = home_root / "limits-refresh-started"
    try:
        if time.time() - marker.stat().st_mtime < REFRESH_DEBOUNCE_SECONDS:
            return
    except FileNotFoundError:
        pass
    try:
        marker.touch()
    except OSError:
        return  # no agent home (never set up): nothing to refresh
    import subprocess

    argv = [sys.executable, "-m", "claude_telemetry"]
    if explicit_home:
        argv += ["--home", str(home_root)]
    argv += ["limits", "--refresh", "--quiet"]
    kwargs: dict[str, Any] = {
        "stdin": subprocess.DEVNULL,
        "stdout": subprocess.DEVNULL,
        "stderr": subprocess.DEVNULL,
        "close_fds": True,
    }
    if os.name == "nt":  # pragma: no cover - Windows only
        kwargs["creationflags"] = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        kwargs["start_new_session"] = True
    with contextlib.suppress(OSError):
        subprocess.Popen(argv, **kwargs)


# --- reading a status -------------------------------------------------------------------------


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "an unknown time"
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()


def _encode_folder(cwd: str) -> str:
    """Claude Code's name for a working folder under ~/.claude/projects/ (which ccusage reports
    as the project key): every character but an ASCII letter or digit becomes `-`, one per
    UTF-16 code unit (`/home/dev/my_app` -> `-home-dev-my-app`)."""
    out = []
    for char in cwd:
        if char.isascii() and char.isalnum():
            out.append(char)
        else:
            out.append("--" if ord(char) > 0xFFFF else "-")
    return "".join(out)


def session_project_keys(payload: dict[str, Any], status: dict[str, Any]) -> set[str]:
    """The keys the session's project may be reported under: the folder of its transcript
    (`transcript_path`'s parent, exactly ccusage's key) and the encoded `cwd`; salted hashes of
    those when the agent hashes project names (projects.hashed_name). Empty when unknown."""
    keys = set()
    transcript = payload.get("transcript_path")
    if isinstance(transcript, str) and transcript:
        parts = transcript.replace("\\", "/").split("/")
        if len(parts) >= 2 and parts[-2]:
            keys.add(parts[-2])
    cwd = payload.get("cwd")
    if isinstance(cwd, str) and cwd:
        keys.add(_encode_folder(cwd))
    salt = status.get(HASH_SALT_KEY)
    if isinstance(salt, str) and salt and keys:
        import hashlib

        keys = {"hash-" + hashlib.sha256(f"{salt}\0{k}".encode()).hexdigest()[:32] for k in keys}
    return keys


def applies(check: dict[str, Any], keys: set[str] | None) -> bool:
    """Whether a check holds for a session in the project with these keys (None: any
    project). A project budget holds only in its project; every other check everywhere."""
    project = check.get("project")
    if project is None:
        return True
    if keys is None:
        return True
    names = project.get("keys") if isinstance(project, dict) else None
    return isinstance(names, list) and any(isinstance(k, str) and k in keys for k in names)


def live_checks(
    status: dict[str, Any], now: datetime, keys: set[str] | None = None
) -> list[dict[str, Any]]:
    """The status's checks at their level now: a limit past its reset is ok again, and a lifted
    stop whose exemption has ended stops again. With `keys` (session_project_keys), only the
    checks that hold in that project: other projects' budgets are left out."""
    checks = []
    for check in status.get("checks") or []:
        if not isinstance(check, dict) or check.get("level") not in ("ok", "warn", "stop"):
            continue
        if not applies(check, keys):
            continue
        check = dict(check)
        resets = _moment(check.get("resets_at"))
        if resets is not None and resets <= now:
            check["level"] = "ok"
        until = _moment(check.get("exempt_until"))
        if check.get("exempt") and until is not None and until <= now and check["level"] != "ok":
            check["level"], check["exempt"] = "stop", False
        checks.append(check)
    return checks


def _grouped(value: Any, places: int | None = None) -> str:
    """A figure from the status with thousands separators ("1,015.98"); as given when it is
    not a number, so a surprising status never breaks the hook."""
    from decimal import Decimal, InvalidOperation

    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if not number.is_finite():
        return str(value)
    if places is None:
        places = max(0, -int(number.as_tuple().exponent))
    return f"{number:,.{places}f}"


def over(check: dict[str, Any]) -> bool:
    """Is this check at or past its cap (100 %), e.g. a warn-only budget or a lifted stop?"""
    try:
        return float(check.get("percent") or 0) >= 100
    except (TypeError, ValueError):
        return False


def describe(check: dict[str, Any], contacts: list[str]) -> str:
    """One sentence: which limit, spent vs cap (or percent used), when it resets, who can help."""
    name = str(check.get("name") or "A limit")
    percent = _grouped(check.get("percent", 0))
    if check.get("spent_usd") is not None and check.get("cap_usd") is not None:
        spent, cap = _grouped(check["spent_usd"], 2), _grouped(check["cap_usd"], 2)
        figures = f"${spent} spent of ${cap} ({percent}%)"
    else:
        figures = f"{percent}% used"
    resets = f"resets {_when(_moment(check.get('resets_at')))}"
    if check.get("level") == "stop":
        who = ", ".join(contacts[:3]) if contacts else "a team admin"
        return f"{name}: {figures}, over its cap; {resets}. To raise it or lift the stop: {who}."
    lifted = ""
    if check.get("exempt"):
        until = _moment(check.get("exempt_until"))
        lifted = f" The stop is lifted for you until {_when(until)}." if until else " Exempt."
    return f"{name}: {figures}, {resets}.{lifted}"


def segment(
    status: dict[str, Any] | None, age: float, now: datetime, keys: set[str] | None = None
) -> str:
    """The status line's segment: running block (time left, burn), budget %, the session's
    project budget % (with `keys`, session_project_keys), weekly use."""
    if status is None or age > STALE_SECONDS:
        return "limits: no recent status"
    parts = []
    block = status.get("block")
    if isinstance(block, dict):
        end = _moment(block.get("end_time"))
        if end is not None and end > now:
            left = int((end - now).total_seconds() // 60)
            parts.append(
                f"block {left // 60}h{left % 60:02d}m left ${block.get('burn_rate_usd_per_hour')}/h"
            )
    percent = status.get("budget_percent")
    if isinstance(percent, int | float) and not isinstance(percent, bool):
        parts.append(f"budget {percent:.0f}%")
    if keys:
        mine = [
            c["percent"]
            for c in live_checks(status, now, keys)
            if c.get("project") is not None and isinstance(c.get("percent"), int | float)
        ]
        if mine:
            parts.append(f"project {max(mine):.0f}%")
    weekly = status.get("weekly")
    if isinstance(weekly, dict) and isinstance(weekly.get("used_percentage"), int | float):
        parts.append(f"week {weekly['used_percentage']:.0f}%")
    worst = max(
        (c["level"] for c in live_checks(status, now, keys if keys is not None else set())),
        key=("ok", "warn", "stop").index,
        default="ok",
    )
    if worst != "ok":
        parts.append("STOPPED" if worst == "stop" else "near limit")
    return " · ".join(parts) if parts else "limits ok"


def now_utc() -> datetime:
    return datetime.now(UTC)
