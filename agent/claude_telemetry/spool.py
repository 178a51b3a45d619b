"""The on-disk spool: gzip envelopes not yet acknowledged, sent oldest first.

Entries are written to a temporary name, fsynced, then renamed, so a crash never leaves a
half-written entry under a name the sender would pick up. Refused envelopes go to rejected/
with the server's reason beside them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from claude_telemetry.fsutil import atomic_write, ensure_private_dir

log = logging.getLogger(__name__)
SUFFIX = ".json.gz"
STALE_TMP_SECONDS = 24 * 3600
# Refused reports are kept for people to read, not forever: the newest few are enough.
KEEP_REJECTED = 20


@dataclass
class SpoolEntry:
    path: Path

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def read(self) -> bytes:
        return self.path.read_bytes()


class Spool:
    def __init__(self, directory: Path, rejected_dir: Path, max_bytes: int):
        self.directory = directory
        self.rejected_dir = rejected_dir
        self.max_bytes = max_bytes

    def entries(self) -> list[SpoolEntry]:
        if not self.directory.is_dir():
            return []
        # Names start with a UTC timestamp, so name order is arrival order.
        return [SpoolEntry(p) for p in sorted(self.directory.glob("*" + SUFFIX)) if p.is_file()]

    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries())

    def add(self, body: bytes) -> tuple[SpoolEntry, list[Path]]:
        """Store `body`; returns the entry and the older entries dropped to respect the cap."""
        ensure_private_dir(self.directory)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}{SUFFIX}"
        atomic_write(path, body)
        return SpoolEntry(path), self._enforce_cap(keep=path)

    def _enforce_cap(self, keep: Path) -> list[Path]:
        dropped = []
        entries = self.entries()
        total = sum(e.size for e in entries)
        for entry in entries:
            if total <= self.max_bytes:
                break
            if entry.path == keep:
                continue
            total -= entry.size
            entry.path.unlink(missing_ok=True)
            dropped.append(entry.path)
            # Newer reports recompute the same days, so the oldest entry is the least needed.
            log.warning("spool over its %d-byte cap: dropped %s", self.max_bytes, entry.path.name)
        return dropped

    def remove(self, entry: SpoolEntry) -> None:
        entry.path.unlink(missing_ok=True)

    def reject(self, body: bytes, reason: dict, source: SpoolEntry | None = None) -> Path:
        """Keep a refused envelope with the reason, out of the send queue."""
        ensure_private_dir(self.rejected_dir)
        name = (
            source.path.name
            if source
            else (
                datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + f"-{uuid.uuid4().hex[:8]}{SUFFIX}"
            )
        )
        target = self.rejected_dir / name
        atomic_write(target, body)
        reason_path = target.with_name(name.removesuffix(SUFFIX) + ".error.json")
        atomic_write(reason_path, json.dumps(reason, indent=2).encode("utf-8"))
        if source:
            self.remove(source)
        self._prune_rejected()
        return target

    def _prune_rejected(self) -> None:
        for old in self.rejected()[:-KEEP_REJECTED]:
            old.unlink(missing_ok=True)
            old.with_name(old.name.removesuffix(SUFFIX) + ".error.json").unlink(missing_ok=True)

    def latest_rejection(self) -> str | None:
        """The newest refused report's reason as one line (`<status>: <error>`), or None."""
        for report in reversed(self.rejected()):
            reason_path = report.with_name(report.name.removesuffix(SUFFIX) + ".error.json")
            try:
                reason = json.loads(reason_path.read_text("utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(reason, dict):
                return f"{reason.get('status', '?')}: {reason.get('error', '')}"
        return None

    def rejected(self) -> list[Path]:
        if not self.rejected_dir.is_dir():
            return []
        return sorted(self.rejected_dir.glob("*" + SUFFIX))

    def clean_stale_tmp(self) -> None:
        if not self.directory.is_dir():
            return
        now = time.time()
        for tmp in self.directory.glob(".tmp-*"):
            with contextlib.suppress(OSError):
                if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                    os.unlink(tmp)
