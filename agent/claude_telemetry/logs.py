"""Rotating log files in the agent home (logs/agent.log, five old files of 1 MB kept)."""

from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler

from claude_telemetry.config import Home

MAX_BYTES = 1_000_000
BACKUPS = 5


def setup_logging(home: Home) -> None:
    logger = logging.getLogger("claude_telemetry")
    if any(isinstance(h, RotatingFileHandler) for h in logger.handlers):
        return
    try:
        home.logs_dir.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(
            home.logs_dir / "agent.log", maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
    except OSError:
        return  # a read-only home must not stop a command that can work without logs
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
