"""When the last look-up of first entries still holds, so a sync starts no `session --id`.

`hour_first_activity` (ccusage.Runner) gives each recent hour's first entry, read from ccusage's
`claude session --id … --json` for every session active in the last six hours: one more
ccusage process per active session, on every sync after new usage (on two cores, three
reports and one look-up take 60 ms where the three reports alone take 40). Yet Claude Code only
appends to its transcripts, and the lines a sync finds new usually come after every first
entry it already knows. So each look-up's answer is kept with what it rests on (Basis: the size
and inode of each recent transcript, taken before ccusage started) and the next sync reads
only the bytes appended since. The answer is reused, with no look-up, only when those bytes
cannot change it:

- every transcript it rests on is still there, the same file (inode), no shorter, and ends
  where it ended then with the same bytes (a hash of the last TAIL_BYTES: a file rewritten in
  place is not taken for one appended to);
- each appended line stamped in the window falls in an hour whose first entry is known, and is
  no earlier than it, nor exactly on an hour (where ccusage's buckets meet);
- no appended request duplicates a line that was already there (ccusage keeps one line per
  request by its content, so a new copy could replace a known first); scan_counting's counts
  tell, against the appended lines' own;
- every region read is whole lines (a line being written is not judged), and all of them
  hold MAX_APPENDED_BYTES at most (a resumed old transcript is looked up rather than read);
- the new hourly report names no recent hour the last one did not;
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from claude_telemetry.request_keys import line_key

# A 5-hour block and the hour before it: the span in which a burn rate can still be shown,
# and so the hours whose first entry is looked up.
HOURS = 6
# A transcript last written this long before the look-up window's start holds none of its
# lines (Claude Code appends; the day covers a clock that was behind).
MTIME_SLACK = timedelta(days=1)
# The report cache's entry kind of the Basis (report_cache.ReportCache).
BASIS_KIND = "first_activity_basis"
# How much of a transcript's end is hashed to know it again (see _tail).
TAIL_BYTES = 256
# More appended bytes than this are not read: a look-up (~30 ms) costs less than judging them.
MAX_APPENDED_BYTES = 2_000_000


@dataclass
class Snapshot:
    """What the logs were as a sync started ccusage: `sizes` ({transcript path: [size,
    inode, hash of its end]} of those written since the look-up window opened, less
    MTIME_SLACK), and, when
    the sync scanned its window's request keys first, how many lines carry each key
    (`key_lines`, request_keys.scan_counting) from `key_start` on."""

    sizes: dict[str, list[int]]
    key_lines: Mapping[str, int] | None = None
    key_start: datetime | None = None


def window_start(now: datetime) -> datetime:
    """The first hour whose first entry is still looked up (HOURS back from `now`)."""
    return (now - timedelta(hours=HOURS)).replace(minute=0, second=0, microsecond=0)


def snapshot(projects_dirs: list[Path], window_start: datetime) -> dict[str, list[Any]]:
    """[size, inode, hash of the last TAIL_BYTES] of each transcript under `projects_dirs`
    last written after `window_start` (UTC) less MTIME_SLACK, by path."""
    oldest = (window_start - MTIME_SLACK).timestamp()
    sizes: dict[str, list[Any]] = {}
    for root in projects_dirs:
        if not root.is_dir():
            continue
        for path in root.rglob("*.jsonl"):
            try:
                st = path.stat()
                if st.st_mtime >= oldest:
                    sizes[str(path)] = [st.st_size, st.st_ino, _tail(path, st.st_size)]
            except OSError:
                continue
    return sizes


def _tail(path: Path, size: int) -> str:
    """A hash of the TAIL_BYTES before byte `size` of `path` (all of them when fewer).
    Raises OSError."""
    with path.open("rb") as fh:
        fh.seek(max(0, size - TAIL_BYTES))
        data = fh.read(min(size, TAIL_BYTES))
    return hashlib.sha256(data).hexdigest()[:16]


def make_basis(firsts: dict[str, str], buckets: list[str], sizes: dict[str, list[Any]]) -> dict:
    """The cache entry for a look-up's answer (`firsts`: hour_first_activity's hours), the
    recent buckets it covered (their startTime) and the transcripts it read (`sizes`)."""
    return {"firsts": firsts, "buckets": buckets, "sizes": sizes}


@dataclass
class Held:
    """A kept look-up's answer that the appended lines did not change: `firsts` ({bucket
    startTime: first entry}) for the recent `buckets` it covered."""

    firsts: dict[str, str]
    buckets: list[str]

    def for_buckets(self, buckets: list[str]) -> dict[str, str] | None:
        """The first entries of the new report's recent `buckets`, or None when it names one
        this answer did not cover (a new hour: only a look-up knows its first entry)."""
        if not set(buckets) <= set(self.buckets):
            return None
        return {bucket: self.firsts[bucket] for bucket in buckets if bucket in self.firsts}


def reusable(basis: Any, now: Snapshot, window_start: datetime) -> Held | None:
    """The answer kept in `basis` (make_basis) when the logs as in `now` cannot have changed
    it for the hours from `window_start` on (the module docstring's rules); None when the
    sessions must be looked up again."""
    if not isinstance(basis, dict) or now.key_lines is None:
        return None
    firsts, known_buckets, sizes = basis.get("firsts"), basis.get("buckets"), basis.get("sizes")
    if not (isinstance(firsts, dict) and isinstance(known_buckets, list)):
        return None
    if not isinstance(sizes, dict):
        return None
    known: dict[datetime, datetime] = {}
    for start, first in firsts.items():
        if not isinstance(first, str):
            return None
        start_at, first_at = _moment(start), _moment(first)
        if start_at is None or first_at is None:
            return None
        known[start_at] = first_at
    if not _unchanged_before(sizes, now.sizes):
        return None
    appended_lines: dict[str, int] = {}
    regions = []
    for name, (size, _inode, _end) in now.sizes.items():
        old = sizes.get(name)
        offset = old[0] if isinstance(old, list) and old else 0
        if size != offset:
            regions.append((name, offset, size))
    if sum(size - offset for _, offset, size in regions) > MAX_APPENDED_BYTES:
        return None
    for name, offset, size in regions:
        lines = _appended(Path(name), offset, size)
        if lines is None:
            return None
        for line in lines:
            verdict = _judge(line, known, window_start, now.key_start, appended_lines)
            if verdict is False:
                return None
    for key, count in appended_lines.items():
        # More lines carry this request than were appended: one was already there.
        if now.key_lines.get(key, 0) > count:
            return None
    return Held(firsts=dict(firsts), buckets=[b for b in known_buckets if isinstance(b, str)])


def _unchanged_before(kept: dict[str, Any], now: dict[str, list[Any]]) -> bool:
    """Is every transcript of `kept` ({path: [size, inode, end hash]}) still the same file,
    no shorter, with the same bytes where it ended? A file `now` leaves out (too old for the
    snapshot) is looked at on disk."""
    for name, entry in kept.items():
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], int)):
            return False
        size, inode, end = entry
        current = now.get(name)
        try:
            if current is None:
                st = os.stat(name)
                current = [st.st_size, st.st_ino, None]
            if current[1] != inode or current[0] < size:
                return False
            if current[0] == size and current[2] is not None:
                same_end = current[2] == end
            else:
                same_end = _tail(Path(name), size) == end
        except OSError:
            return False
        if not same_end:
            return False
    return True


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


def _judge(
    line: bytes,
    known: dict[datetime, datetime],
    window_start: datetime,
    key_start: datetime | None,
    appended_lines: dict[str, int],
) -> bool | None:
    """False when this appended line may change a known first entry; True or None (not an
    entry) otherwise. Counts the line's request key in `appended_lines` as scan counts it."""
    if b'"timestamp"' not in line:
        return None  # no entry: ccusage dates every entry by this field
    text = line.decode("utf-8", errors="replace")
    try:
        record = json.loads(text)
    except ValueError:
        return None  # ccusage skips what is not JSON
    stamp = record.get("timestamp") if isinstance(record, dict) else None
    if not isinstance(stamp, str):
        return None
    moment = _moment(stamp)
    if moment is None:
        return False  # a time this module cannot read: ccusage may
    found = line_key(text)
    if found is not None:
        key = found[0]
        counted = key_start is None or found[1] >= key_start
        appended_lines[key] = appended_lines.get(key, 0) + (1 if counted else 0)
    if moment < window_start:
        return True
    if moment == moment.replace(minute=0, second=0, microsecond=0):
        return False  # on an hour: which bucket keeps it depends on the one before
    first = known.get(moment.replace(minute=0, second=0, microsecond=0))
    return first is not None and moment >= first


def _moment(value: str) -> datetime | None:
    """An ISO 8601 time as an aware UTC datetime (naive: UTC), or None."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
