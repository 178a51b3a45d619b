"""Reuses a ccusage report when nothing it reads has changed since it was made.

A sync every 15 minutes mostly finds the same logs as the last one. Each report is stored in
the agent home with a key made of everything its output depends on: the ccusage binary and
version, its arguments (window, timezone, offline) and a fingerprint of the files it reads
(path, size and modification time of each file under the log folders). Same key, same output:
ccusage is deterministic for the same files and arguments, and its offline prices are part of
the binary.

The unified `daily --by-agent` report also reads agents whose folders the agent does not
watch (OpenCode, Gemini, …), so its copy is reused for at most OTHER_AGENTS_MAX_AGE_SECONDS.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from claude_telemetry.fsutil import atomic_write

log = logging.getLogger(__name__)

CACHE_NAME = "reports-cache.json"
OTHER_AGENTS_MAX_AGE_SECONDS = 3600


def tree_fingerprint(roots: list[Path]) -> str:
    """A hash of every file's path, size and modification time under `roots` (recursive).

    Missing roots count as empty. Hex SHA-256; the same files give the same string.
    """
    digest = hashlib.sha256()
    for root in sorted(str(r) for r in roots):
        digest.update(f"root {root}\n".encode())
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(folder, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def report_key(*parts: Any) -> str:
    """One key for everything a report depends on (JSON-able parts)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ReportCache:
    """{kind: (key, report, made at)} in one JSON file in the agent home."""

    def __init__(self, folder: Path):
        self.path = folder / CACHE_NAME
        self.entries: dict[str, dict[str, Any]] = {}
        self.changed = False
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            data = None
        if isinstance(data, dict):
            self.entries = {k: v for k, v in data.items() if isinstance(v, dict)}

    def get(self, kind: str, key: str, max_age: float | None = None) -> Any:
        """The stored report of `kind` made with `key`, or None (also when older than
        `max_age` seconds)."""
        entry = self.entries.get(kind)
        if not entry or entry.get("key") != key:
            return None
        made = entry.get("at")
        if max_age is not None and (
            not isinstance(made, (int, float)) or time.time() - made > max_age
        ):
            return None
        return entry.get("report")

    def latest(self, kind: str) -> Any:
        """The last stored report of `kind`, whatever its key (a hint, never a result), or
        None."""
        entry = self.entries.get(kind)
        return entry.get("report") if entry else None

    def put(self, kind: str, key: str, report: Any) -> None:
        self.entries[kind] = {"key": key, "at": time.time(), "report": report}
        self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        try:
            atomic_write(self.path, json.dumps(self.entries, separators=(",", ":")).encode())
        except OSError as exc:  # only a cache: the next sync runs ccusage again
            log.warning("report cache not saved: %s", exc)
        self.changed = False

    def clear(self) -> None:
        self.entries = {}
        self.path.unlink(missing_ok=True)
