"""Log files in the agent home: logs/agent.log, and five old files of about 1 MB each.

Every command appends to the file; a command that finds it full rotates it first, with the
standard library's RotatingFileHandler. The agent's commands are short (a sync, a hook) or log
little (the MCP proxy logs only failures), so the check at the start bounds the files, and the
common start skips importing logging.handlers: ~5 ms a sync would spend before ccusage starts.
"""

from __future__ import annotations

import logging
from pathlib import Path

from claude_telemetry.config import Home

MAX_BYTES = 1_000_000
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(home: Home) -> None:
    """Send the `claude_telemetry` loggers' INFO and above to logs/agent.log in `home`,
    rotating it first when it holds MAX_BYTES or more. A home that cannot be written to
    leaves the command without a log file rather than failing it."""
    logger = logging.getLogger("claude_telemetry")
    if any(isinstance(h, logging.FileHandler) for h in logger.handlers):
        return
    path = home.logs_dir / "agent.log"
    not_rotated: OSError | None = None
    try:
        home.logs_dir.mkdir(parents=True, exist_ok=True)
        try:
            full = path.stat().st_size >= MAX_BYTES
        except FileNotFoundError:
            full = False
        if full:
            not_rotated = _rotate(path)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return  # a read-only home must not stop a command that can work without logs
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not_rotated is not None:
        logger.warning("%s could not be rotated (%s); still appending to it", path, not_rotated)


def _rotate(path: Path) -> OSError | None:
    """Move `path` to `path`.1 (and the older ones one further, BACKUPS kept) with the standard
    library's RotatingFileHandler; the error when that failed, else None."""
    from logging.handlers import RotatingFileHandler

    rotating = RotatingFileHandler(
        path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
    )
    try:
        rotating.doRollover()
    except OSError as exc:
        return exc
    finally:
        rotating.close()
    return None
