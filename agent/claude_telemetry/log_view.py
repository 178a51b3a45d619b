"""A view of the Claude Code logs without the transcripts that cannot hold a line of the window.

ccusage reads every transcript on each run, and its time is almost all reading them (on no logs
it takes no measurable time). With `--since` it leaves out every entry before that day before
it groups anything (days, sessions, hourly blocks), so transcripts last written well before the
window change none of its reports. A sync after new usage therefore points ccusage at a view
holding only the recent transcripts (hard links to them in the agent folder: nothing is
copied; on another drive, copies with their times), and its reports are the same as on all
the logs:

- A transcript last written before the window's start, less two days (any timezone's day) and
  one more (a clock that was behind), holds no line of the window: Claude Code appends, and a
  line's time is when it was written (request_keys.MTIME_SLACK, the same rule).
- ccusage counts a request (`<message id>:<request id>`) once, and when two lines carry the same
  request it keeps one of them by their content, not by their day. A recent request whose key
  is also in an old transcript could then be counted from the old line, outside the window, on
  all the logs, and from the recent one in the view. So the view is used only when no request
  of the window (request_keys.scan) appears in the old transcripts; their keys are read once per
  file and kept in OLD_KEYS_NAME (path, size and time: a changed file is read again).

Otherwise (or without a window) ccusage reads the logs themselves.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

from claude_telemetry.ccusage import ClaudeDirs
from claude_telemetry.fsutil import atomic_write
from claude_telemetry.request_keys import MTIME_SLACK, ZONE_SLACK, line_key

log = logging.getLogger(__name__)

VIEW_NAME = "logs-view"
OLD_KEYS_NAME = "old-request-keys.json"
KEY_LENGTH = 16  # request_keys.request_key's hex digits


def cutoff(since: date) -> float:
    """The modification time (epoch seconds) before which a transcript holds no line of a
    window starting on `since` (request_keys.scan skips the same files)."""
    start = datetime(since.year, since.month, since.day, tzinfo=UTC) - ZONE_SLACK
    return (start - MTIME_SLACK).timestamp()


def _transcripts(root: Path) -> list[tuple[Path, os.stat_result]]:
    found = []
    for path in sorted(root.rglob("*.jsonl")) if root.is_dir() else []:
        try:
            found.append((path, path.stat()))
        except OSError:
            continue
    return found


def _file_keys(path: Path) -> str:
    """Every request key in one transcript, whatever its time, joined into one string."""
    keys = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            found = line_key(line)
            if found is not None:
                keys.append(found[0])
    return "".join(sorted(set(keys)))


class OldKeys:
    """{path: [size, mtime_ns, keys]} of the old transcripts, kept in the agent folder."""

    def __init__(self, home_root: Path):
        self.path = home_root / OLD_KEYS_NAME
        self.entries: dict[str, list] = {}
        self.changed = False
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.path.read_text("utf-8"))
            if isinstance(data, dict):
                self.entries = {k: v for k, v in data.items() if isinstance(v, list)}

    def keys(self, path: Path, st: os.stat_result) -> str:
        """The keys of `path` (read again when its size or time changed). Raises OSError."""
        entry = self.entries.get(str(path))
        if (
            entry is not None
            and len(entry) == 3
            and entry[:2] == [st.st_size, st.st_mtime_ns]
            and isinstance(entry[2], str)
        ):
            return entry[2]
        keys = _file_keys(path)
        self.entries[str(path)] = [st.st_size, st.st_mtime_ns, keys]
        self.changed = True
        return keys

    def save(self, seen: set[str]) -> None:
        """Keep the entries of the files in `seen` only, if anything changed."""
        gone = set(self.entries) - seen
        for name in gone:
            del self.entries[name]
        if not (self.changed or gone):
            return
        try:
            atomic_write(self.path, json.dumps(self.entries, separators=(",", ":")).encode())
        except OSError as exc:  # only a cache: read again next time
            log.warning("old request keys not saved: %s", exc)


def _mirror(path: Path, st: os.stat_result, out: Path) -> None:
    """Make `out` the transcript `path`: a hard link (the same file, nothing copied, always
    current), else (another drive) a copy with its times, made again when it changed."""
    try:
        mine = out.stat()
    except FileNotFoundError:
        mine = None
    if mine is not None:
        if (mine.st_dev, mine.st_ino) == (st.st_dev, st.st_ino):
            return
        if mine.st_nlink == 1 and (mine.st_size, mine.st_mtime_ns) == (
            st.st_size,
            st.st_mtime_ns,
        ):
            return
        out.unlink()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(path, out)
    except OSError:
        shutil.copy2(path, out)


def prepare(home_root: Path, dirs: ClaudeDirs, since: date, window_keys: set[str]) -> str | None:
    """The CLAUDE_CONFIG_DIR value of a view of `dirs` without the old transcripts, or None
    when ccusage must read the logs themselves: nothing is old, a request of the window
    (`window_keys`, request_keys' hashes) is also in an old transcript, or something could not
    be read. The view lives in the agent folder (VIEW_NAME) and is brought up to date, file by
    file, on each call."""
    oldest = cutoff(since)
    index = OldKeys(home_root)
    seen: set[str] = set()
    plan: list[tuple[Path, list[tuple[Path, os.stat_result]]]] = []
    any_old = False
    try:
        for base in dirs.valid:
            source = base / "projects"
            recent = []
            for path, st in _transcripts(source):
                if st.st_mtime >= oldest:
                    recent.append((path, st))
                    continue
                any_old = True
                seen.add(str(path))
                keys = index.keys(path, st)
                if window_keys and any(
                    keys[i : i + KEY_LENGTH] in window_keys for i in range(0, len(keys), KEY_LENGTH)
                ):
                    log.info("a request of the window is also in %s: ccusage reads all logs", path)
                    index.save(seen | set(index.entries))
                    return None
            plan.append((source, recent))
    except OSError as exc:
        log.warning("log view not made (%s): ccusage reads all logs", exc)
        return None
    index.save(seen)
    if not any_old:
        return None
    view = home_root / VIEW_NAME
    folders = []
    try:
        for number, (source, recent) in enumerate(plan):
            dest_root = view / str(number) / "projects"
            wanted = set()
            for path, st in recent:
                out = dest_root / path.relative_to(source)
                wanted.add(out)
                _mirror(path, st, out)
            dest_root.mkdir(parents=True, exist_ok=True)
            for path, _ in _transcripts(dest_root):
                if path not in wanted:
                    path.unlink()
            folders.append(str(view / str(number)))
        for extra in view.iterdir():
            if extra.name not in {str(n) for n in range(len(plan))}:
                shutil.rmtree(extra, ignore_errors=True)
    except OSError as exc:
        log.warning("log view not made (%s): ccusage reads all logs", exc)
        return None
    return ",".join(folders)
