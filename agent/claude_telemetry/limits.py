"""The local copy of the server's agent status, and what the hooks and status line make of it.

Claude Code waits for hooks and the status line, so reading this cache imports only the
standard library's light modules; the refresh (httpx) runs in sync, `limits --refresh` or a
detached background process, never inside a hook.
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
STATUS_PATH = "/api/v1/agent/status/"
# Older than this, the cached status is a hint, never a reason to refuse a prompt.
STALE_SECONDS = 30 * 60
# Hooks start a background refresh when the cache is older than this ...
REFRESH_AFTER_SECONDS = 60
# ... at most this often.
REFRESH_DEBOUNCE_SECONDS = 30
REFRESH_TIMEOUT_SECONDS = 5.0


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
    return record["status"], max(age, 0.0)


def refresh(home_root: Path, server_url: str, token: str, timeout: float) -> dict[str, Any]:
    """GET the member's status from the server and keep it; raises on any failure (the old
    file then stays and ages into staleness)."""
    import httpx

    from claude_telemetry import __version__
    from claude_telemetry.fsutil import atomic_write

    response = httpx.get(
        server_url.rstrip("/") + STATUS_PATH,
        headers={
            "Authorization": f"Bearer {token}",
            "User-Agent": f"claude-telemetry-agent/{__version__}",
        },
        timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
        follow_redirects=False,
    )
    response.raise_for_status()
    status = response.json()
    if not isinstance(status, dict) or "decision" not in status:
        raise ValueError("the server's answer is not an agent status")
    record = {"fetched_at": time.time(), "server": server_url, "status": status}
    atomic_write(status_path(home_root), json.dumps(record).encode("utf-8"))
    return status


def refresh_in_background(home_root: Path, explicit_home: bool, age: float) -> None:
    """Start `limits --refresh --quiet` detached when the cache is old; never waits for it."""
    if age < REFRESH_AFTER_SECONDS:
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


def live_checks(status: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The status's checks at their level now: a limit past its reset is ok again, and a lifted
    stop whose exemption has ended stops again."""
    checks = []
    for check in status.get("checks") or []:
        if not isinstance(check, dict) or check.get("level") not in ("ok", "warn", "stop"):
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


def describe(check: dict[str, Any], contacts: list[str]) -> str:
    """One sentence: which limit, spent vs cap (or percent used), when it resets, who can help."""
    name = str(check.get("name") or "A limit")
    if check.get("spent_usd") is not None and check.get("cap_usd") is not None:
        figures = f"${check['spent_usd']} spent of ${check['cap_usd']} ({check.get('percent', 0)}%)"
    else:
        figures = f"{check.get('percent', 0)}% used"
    resets = f"resets {_when(_moment(check.get('resets_at')))}"
    if check.get("level") == "stop":
        who = ", ".join(contacts[:3]) if contacts else "a team admin"
        return f"{name}: {figures}, over its cap; {resets}. To raise it or lift the stop: {who}."
    lifted = ""
    if check.get("exempt"):
        until = _moment(check.get("exempt_until"))
        lifted = f" The stop is lifted for you until {_when(until)}." if until else " Exempt."
    return f"{name}: {figures}, {resets}.{lifted}"


def segment(status: dict[str, Any] | None, age: float, now: datetime) -> str:
    """The status line's segment: running block (time left, burn), budget %, weekly use."""
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
    weekly = status.get("weekly")
    if isinstance(weekly, dict) and isinstance(weekly.get("used_percentage"), int | float):
        parts.append(f"week {weekly['used_percentage']:.0f}%")
    worst = max(
        (c["level"] for c in live_checks(status, now)),
        key=("ok", "warn", "stop").index,
        default="ok",
    )
    if worst != "ok":
        parts.append("STOPPED" if worst == "stop" else "near limit")
    return " · ".join(parts) if parts else "limits ok"


def now_utc() -> datetime:
    return datetime.now(UTC)
