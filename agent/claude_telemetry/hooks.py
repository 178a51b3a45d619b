"""The SessionEnd hook: start one background sync, at most every few minutes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

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
