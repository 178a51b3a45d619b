"""The statusline wrapper: keeps the official rate-limit readings, then runs the user's own command.

Claude Code runs the statusLine command very often and waits for it, so this module imports
nothing heavy and never lets a capture problem change what the user sees.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CAPTURE_SUFFIX = ".jsonl"
# Identical readings closer than this are not written again; the quota moves slower than that.
DEDUPE_SECONDS = 60
# A capture file is named by its UTC day; writers only append to today's, so older ones are final
# after this many days and can be removed once sent.
KEEP_SENT_DAYS = 2
_MAX_WINDOWS = 16
# The server refuses a whole report over one odd window, so only plausible ones are kept.
_WINDOW_NAME = re.compile(r"[a-z0-9_]{1,40}")
_MAX_PERCENT = 1000
_MAX_RESET_AHEAD = timedelta(days=31)


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _reset_time(value: Any, now: datetime) -> float | int | str | None:
    """`resets_at` as given (unix seconds or ISO text) when it is a time within a month."""
    if _number(value) is not None:
        try:
            moment = datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    elif isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            return None
    else:
        return None
    return value if moment - now <= _MAX_RESET_AHEAD else None


def clean_rate_limits(raw: Any, now: datetime) -> dict[str, dict[str, Any]]:
    """Only window names with their percentage and reset time; nothing else passes."""
    if not isinstance(raw, dict):
        return {}
    windows: dict[str, dict[str, Any]] = {}
    for name, window in list(raw.items())[:_MAX_WINDOWS]:
        if not isinstance(name, str) or not _WINDOW_NAME.fullmatch(name):
            continue
        if not isinstance(window, dict):
            continue
        cleaned: dict[str, Any] = {}
        pct = _number(window.get("used_percentage"))
        if pct is not None and 0 <= pct <= _MAX_PERCENT:
            cleaned["used_percentage"] = pct
        resets = _reset_time(window.get("resets_at"), now)
        if resets is not None:
            cleaned["resets_at"] = resets
        if cleaned:
            windows[name] = cleaned
    return windows


def capture_record(payload: Any, now: datetime) -> dict[str, Any] | None:
    """The fields the server needs from one statusline input, or None when it has no quota."""
    if not isinstance(payload, dict):
        return None
    rate_limits = clean_rate_limits(payload.get("rate_limits"), now)
    if not rate_limits:
        return None
    model = payload.get("model")
    model_id = model.get("id") if isinstance(model, dict) else model
    session_id = payload.get("session_id")
    return {
        "captured_at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "session_id": session_id[:200] if isinstance(session_id, str) else None,
        "model": model_id[:200] if isinstance(model_id, str) else None,
        "rate_limits": rate_limits,
    }


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            tail = fh.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    lines = [ln for ln in tail.split("\n") if ln.strip()]
    return lines[-1] if lines else ""


def _is_repeat(record: dict[str, Any], previous_line: str, now: datetime) -> bool:
    try:
        previous = json.loads(previous_line)
        then = datetime.strptime(previous["captured_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (ValueError, KeyError, TypeError):
        return False
    if previous.get("captured_at") == record["captured_at"]:
        return True  # one reading per second at most: the server keys readings by time
    return (
        previous.get("rate_limits") == record["rate_limits"]
        and previous.get("model") == record["model"]
        and (now - then) < timedelta(seconds=DEDUPE_SECONDS)
    )


def append_capture(captures_dir: Path, payload: Any, now: datetime | None = None) -> bool:
    now = now or datetime.now(UTC)
    record = capture_record(payload, now)
    if record is None:
        return False
    captures_dir.mkdir(parents=True, exist_ok=True)
    path = captures_dir / f"{now.astimezone(UTC):%Y-%m-%d}{CAPTURE_SUFFIX}"
    if _is_repeat(record, _last_line(path), now):
        return False
    line = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
    # One write() on an O_APPEND descriptor: concurrent statuslines never interleave lines.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return True


def read_new_captures(
    captures_dir: Path, offsets: dict[str, int]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Complete lines written since `offsets` (file name -> bytes already sent or spooled)."""
    records: list[dict[str, Any]] = []
    new_offsets = dict(offsets)
    if not captures_dir.is_dir():
        return records, new_offsets
    for path in sorted(captures_dir.glob(f"*{CAPTURE_SUFFIX}")):
        start = offsets.get(path.name, 0)
        with open(path, "rb") as fh:
            fh.seek(start)
            chunk = fh.read()
        # A line still being written has no newline yet; it is taken next time.
        end = chunk.rfind(b"\n") + 1
        for raw in chunk[:end].splitlines():
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("rate_limits"):
                records.append(record)
        new_offsets[path.name] = start + end
    return records, new_offsets


def prune_sent_captures(captures_dir: Path, offsets: dict[str, int], today: datetime) -> dict:
    """Remove capture files that are final and fully sent; returns the offsets still needed."""
    kept = {}
    cutoff = (today.astimezone(UTC) - timedelta(days=KEEP_SENT_DAYS)).strftime("%Y-%m-%d")
    for name, offset in offsets.items():
        path = captures_dir / name
        if not path.exists():
            continue
        if name[:10] < cutoff and path.stat().st_size <= offset:
            path.unlink()
            continue
        kept[name] = offset
    return kept


def latest_capture_time(captures_dir: Path) -> datetime | None:
    if not captures_dir.is_dir():
        return None
    for path in sorted(captures_dir.glob(f"*{CAPTURE_SUFFIX}"), reverse=True):
        line = _last_line(path)
        with contextlib.suppress(ValueError, KeyError, TypeError):
            stamp = json.loads(line)["captured_at"]
            return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return None


def run_wrapper(home_root: Path) -> int:
    """`statusline-capture`: record stdin, then behave exactly like the original command."""
    data = sys.stdin.buffer.read()
    try:
        append_capture(home_root / "captures", json.loads(data or b"null"))
    except Exception as exc:
        _note_error(home_root, exc)
    original = original_command(home_root)
    limits = _limits_segment(home_root, data) if segment_enabled(home_root) else None
    if limits is None:
        if not original:
            return 0
        sys.stdout.flush()
        # Claude Code runs statusLine commands through a shell; so do we, with the same input.
        completed = subprocess.run(original, shell=True, input=data, check=False)  # noqa: S602
        return completed.returncode
    # Claude Code shows the first line of the output: the segment leads it and the user's own
    # output follows unchanged.
    own, code = b"", 0
    if original:
        completed = subprocess.run(  # noqa: S602
            original, shell=True, input=data, stdout=subprocess.PIPE, check=False
        )
        own, code = completed.stdout, completed.returncode
    out = limits.encode("utf-8") + (b" | " + own if own.strip() else b"\n")
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    return code


SEGMENT_FILE = "statusline-limits"


def segment_enabled(home_root: Path) -> bool:
    return (home_root / "installed" / SEGMENT_FILE).exists()


def set_segment(home_root: Path, enabled: bool) -> None:
    """`install-statusline --limits` turns the segment on; uninstalling turns it off."""
    marker = home_root / "installed" / SEGMENT_FILE
    if enabled:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    else:
        marker.unlink(missing_ok=True)


def _limits_segment(home_root: Path, data: bytes) -> str | None:
    try:
        from claude_telemetry.limits import (
            now_utc,
            read_cache,
            refresh_in_background,
            segment,
            session_project_keys,
        )

        status, age = read_cache(home_root)
        refresh_in_background(home_root, True, age)
        keys = None
        with contextlib.suppress(ValueError):
            payload = json.loads(data or b"null")
            if isinstance(payload, dict) and status is not None:
                # The session's project, as the hooks find it (its budgets show in the segment).
                workspace = payload.get("workspace")
                project_dir = workspace.get("project_dir") if isinstance(workspace, dict) else None
                where = {
                    "transcript_path": payload.get("transcript_path"),
                    "cwd": project_dir if isinstance(project_dir, str) else payload.get("cwd"),
                }
                keys = session_project_keys(where, status)
        return segment(status, age, now_utc(), keys)
    except Exception as exc:  # the segment is extra; the user's line must still show
        _note_error(home_root, exc)
        return None


def original_command(home_root: Path) -> str | None:
    try:
        record = json.loads((home_root / "installed" / "statusline.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    original = record.get("original_status_line") if isinstance(record, dict) else None
    if isinstance(original, dict) and isinstance(original.get("command"), str):
        return original["command"]
    return None


def _note_error(home_root: Path, exc: Exception) -> None:
    with contextlib.suppress(OSError):
        logs = home_root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / "statusline-errors.log"
        # The wrapper runs constantly; a recurring error must not fill the disk.
        mode = "w" if path.exists() and path.stat().st_size > 256 * 1024 else "a"
        with open(path, mode, encoding="utf-8") as fh:
            fh.write(f"{datetime.now(UTC).isoformat()} {type(exc).__name__}: {exc}\n")
