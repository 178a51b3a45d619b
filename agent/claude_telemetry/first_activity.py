"""When the last look-up of first entries still holds, so a sync starts no `session --id`.

`hour_first_activity` (ccusage.Runner) gives each recent hour's first entry, read from ccusage's
`claude session --id … --json` for every session active in the last six hours: one more
ccusage process per active session, on every sync after new usage (on two cores, three
reports and one look-up take 60 ms where the three reports alone take 40). Yet Claude Code only
appends to its transcripts, and the lines a sync finds new usually come after every first
entry it already knows. So each look-up's answer is kept with what it rests on (the Basis:
the size, inode, modification time and a hash of the ends of each recent transcript, taken
before ccusage started) and the next sync reads only the bytes appended since. The answer is
reused, with no look-up, only when those bytes cannot change it:

- every transcript it rests on is still there, the same file (inode), no shorter, with the
  same first and last bytes where it ended (ENDS_BYTES of each, hashed); one that did not
  grow has the same modification time; one the snapshot no longer covers (written long ago)
  is unchanged, size and time;
- each appended line stamped in the window falls in an hour whose first entry is known, is
  no earlier than it and not exactly on an hour (where ccusage's one-hour buckets meet); a
  line in the hour before the window also refuses (its bucket may take an on-the-hour entry
  from the window's first);
- no appended request repeats a line that was already there (ccusage keeps one line per
  request by its content, so a new copy could replace a known first): scan_counting's counts
  tell, against the appended lines' own; a line ccusage counts without a request id (which it
  deduplicates by message id) refuses;
- every region read is whole lines (a line being written is not judged), and all of them hold
  MAX_APPENDED_BYTES at most (a resumed old transcript is looked up rather than read);
- the new hourly report's recent hours are exactly the ones the last answer covered;
- and nothing was appended while ccusage ran (checked again after it).

Otherwise the sessions are looked up as before. The times compared are the lines' own
`timestamp` fields; the first entries sent are always ccusage's.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from claude_telemetry.request_keys import request_key, utc_moment

# A 5-hour block and the hour before it: the span in which a burn rate can still be shown,
# and so the hours whose first entry is looked up.
HOURS = 6
# A transcript last written this long before the look-up window's start holds none of its
# lines (Claude Code appends; the day covers a clock that was behind).
MTIME_SLACK = timedelta(days=1)
# The report cache's entry kind of the Basis (report_cache.ReportCache).
BASIS_KIND = "first_activity_basis"
# How much of a transcript's start and of its end is hashed to know it again (see _ends).
ENDS_BYTES = 4096
# More appended bytes than this are not read: a look-up (~30 ms) costs less than judging them.
MAX_APPENDED_BYTES = 2_000_000
_HOUR = timedelta(hours=1)


@dataclass
class Snapshot:
    """What the logs were as a sync started ccusage: `sizes` ({transcript path: [size, inode,
    modification time in ns, hash of its ends]} of those written since the look-up window
    opened, less MTIME_SLACK), and, when the sync scanned its window's request keys first,
    how many lines carry each key (`key_lines`, request_keys.scan_counting) from `key_start`
    on."""

    sizes: dict[str, list[Any]]
    key_lines: Mapping[str, int] | None = None
    key_start: datetime | None = None


@dataclass
class Held:
    """A kept look-up's answer that the appended lines did not change: `firsts` ({bucket
    startTime: first entry}) for the recent `buckets` it covered."""

    firsts: dict[str, str]
    buckets: list[str]

    def for_buckets(self, buckets: list[str], window_start: datetime) -> dict[str, str] | None:
        """The first entries of the new report's recent `buckets` (those from `window_start`
        on), or None when they are not exactly the recent ones this answer covered (a new
        hour, or one whose entries moved to the hour before: only a look-up knows)."""
        covered = {b for b in self.buckets if (utc_moment(b) or window_start) >= window_start}
        if set(buckets) != covered:
            return None
        return {bucket: self.firsts[bucket] for bucket in buckets if bucket in self.firsts}


def window_start(now: datetime) -> datetime:
    """The first hour whose first entry is still looked up (HOURS back from `now`)."""
    return (now - timedelta(hours=HOURS)).replace(minute=0, second=0, microsecond=0)


def snapshot(
    projects_dirs: list[Path], start: datetime, *, ends: bool = True
) -> dict[str, list[Any]]:
    """[size, inode, modification time (ns), hash of the ends] of each transcript under
    `projects_dirs` last written after `start` (UTC) less MTIME_SLACK, by path; without
    `ends`, the hash is None (not read)."""
    oldest = (start - MTIME_SLACK).timestamp()
    sizes: dict[str, list[Any]] = {}
    for root in projects_dirs:
        if not root.is_dir():
            continue
        for path in root.rglob("*.jsonl"):
            try:
                st = path.stat()
                if st.st_mtime >= oldest:
                    hashed = _ends(path, st.st_size) if ends else None
                    sizes[str(path)] = [st.st_size, st.st_ino, st.st_mtime_ns, hashed]
            except OSError:
                continue
    return sizes


def written_since(projects_dirs: list[Path], start: datetime, sizes: dict[str, list[Any]]) -> bool:
    """Was a transcript written, added or removed since `sizes` (snapshot with the same
    `start`) was taken? Any write changes a file's size or time, so no content is read."""
    now = snapshot(projects_dirs, start, ends=False)
    return {name: entry[:3] for name, entry in now.items()} != {
        name: entry[:3] for name, entry in sizes.items()
    }


def make_basis(firsts: dict[str, str], buckets: list[str], sizes: dict[str, list[Any]]) -> dict:
    """The cache entry for a look-up's answer (`firsts`: hour_first_activity's hours), the
    recent buckets it covered (their startTime) and the transcripts it read (`sizes`)."""
    return {"firsts": firsts, "buckets": buckets, "sizes": sizes}


def reusable(basis: Any, now: Snapshot, start: datetime) -> Held | None:
    """The answer kept in `basis` (make_basis) when the logs as in `now` cannot have changed
    it for the hours from `start` (window_start) on (the module docstring's rules); None when
    the sessions must be looked up again."""
    if not isinstance(basis, dict) or now.key_lines is None:
        return None
    firsts, known_buckets, sizes = basis.get("firsts"), basis.get("buckets"), basis.get("sizes")
    if not (isinstance(firsts, dict) and isinstance(known_buckets, list)):
        return None
    if not isinstance(sizes, dict):
        return None
    known: dict[datetime, datetime] = {}
    for bucket, first in firsts.items():
        if not isinstance(first, str):
            return None
        bucket_at, first_at = utc_moment(bucket), utc_moment(first)
        if bucket_at is None or first_at is None:
            return None
        known[bucket_at] = first_at
    if not _unchanged_before(sizes, now.sizes):
        return None
    regions = []
    for name, entry in now.sizes.items():
        old = sizes.get(name)
        offset = old[0] if isinstance(old, list) and old else 0
        if entry[0] != offset:
            regions.append((name, offset, entry[0]))
    if sum(size - offset for _, offset, size in regions) > MAX_APPENDED_BYTES:
        return None
    appended_lines: dict[str, int] = {}
    for name, offset, size in regions:
        lines = _appended(Path(name), offset, size)
        if lines is None:
            return None
        for line in lines:
            if not _harmless(line, known, start, now.key_start, appended_lines):
                return None
    for key, count in appended_lines.items():
        # More lines carry this request than were appended: one was already there.
        if now.key_lines.get(key, 0) > count:
            return None
    return Held(firsts=dict(firsts), buckets=[b for b in known_buckets if isinstance(b, str)])


def _unchanged_before(kept: dict[str, Any], now: dict[str, list[Any]]) -> bool:
    """Was every transcript of `kept` ({path: snapshot entry}) only appended to since, as far
    as `now` (a snapshot) and the disk tell? See the module docstring's first rule."""
    for name, entry in kept.items():
        if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], int)):
            return False
        size, inode, mtime_ns, ends = entry
        current = now.get(name)
        try:
            if current is None:
                # Not written lately (or its time set back): it must be exactly as it was.
                st = os.stat(name)
                if [st.st_size, st.st_ino, st.st_mtime_ns] != [size, inode, mtime_ns]:
                    return False
                continue
            if current[1] != inode or current[0] < size:
                return False
            if current[0] == size:
                if current[2:] != [mtime_ns, ends]:
                    return False
            elif _ends(Path(name), size) != ends:
                return False
        except OSError:
            return False
    return True


def _ends(path: Path, size: int) -> str:
    """A hash of the first and of the last ENDS_BYTES of `path`'s first `size` bytes (all of
    them when fewer). Raises OSError."""
    with path.open("rb") as fh:
        head = fh.read(min(size, ENDS_BYTES))
        fh.seek(max(0, size - ENDS_BYTES))
        tail = fh.read(min(size, ENDS_BYTES))
    return hashlib.sha256(head + b"\0" + tail).hexdigest()[:16]


def _appended(path: Path, offset: int, size: int) -> list[bytes] | None:
    """The whole lines of `path` between byte `offset` and `size`; None when the region does
    not start and end on a line's boundary, or cannot be read."""
    try:
        with path.open("rb") as fh:
            if offset:
                fh.seek(offset - 1)
                data = fh.read(size - offset + 1)
                if data[:1] != b"\n":
                    return None
                data = data[1:]
            else:
                data = fh.read(size)
    except OSError:
        return None
    if len(data) != size - offset or not data.endswith(b"\n"):
        return None
    return data.splitlines()


def _harmless(
    line: bytes,
    known: dict[datetime, datetime],
    start: datetime,
    key_start: datetime | None,
    appended_lines: dict[str, int],
) -> bool:
    """Can this appended line leave every known first entry from `start` on as it is? Counts
    its request key in `appended_lines` as request_keys.scan counts it (from `key_start`)."""
    text = line.decode("utf-8", errors="replace")
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return True  # ccusage skips what it cannot parse as JSON
    if not isinstance(record, dict) or "timestamp" not in record:
        return True  # no entry: ccusage dates every entry by this field
    stamp = record.get("timestamp")
    moment = utc_moment(stamp) if isinstance(stamp, str) else None
    if moment is None:
        return False  # a time this module cannot read: ccusage may
    message = record.get("message")
    if isinstance(message, dict) and "usage" in message:
        request_id, message_id = record.get("requestId"), message.get("id")
        if not (isinstance(request_id, str) and isinstance(message_id, str)):
            return False  # ccusage deduplicates such lines by message id alone
        if key_start is None or moment >= key_start:
            key = request_key(message_id, request_id)
            appended_lines[key] = appended_lines.get(key, 0) + 1
        else:
            appended_lines.setdefault(request_key(message_id, request_id), 0)
    if moment < start - _HOUR:
        return True
    hour = moment.replace(minute=0, second=0, microsecond=0)
    if moment < start or moment == hour:
        return False  # the hour before the window, or exactly on an hour
    first = known.get(hour)
    return first is not None and moment >= first
