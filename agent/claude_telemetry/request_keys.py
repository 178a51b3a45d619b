"""ccusage's per-request key, hashed, per UTC hour; and logs without other machines' requests.

ccusage counts a request once per set of logs it reads, keyed by `<message id>:<request id>`.
When two machines' logs hold the same requests (a copied or synced ~/.claude, a resumed
transcript that replays another machine's lines), the server says which of this machine's
requests another machine reported first; ccusage then runs on a copy of the logs without
those lines, so the team's totals equal ccusage's on all the logs together. Only the first
8 bytes of a SHA-256 of each key leave the PC.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from claude_telemetry.fsutil import atomic_write

TYPE_CHECKING = False
if TYPE_CHECKING:  # ccusage imports this module (through first_activity)
    from claude_telemetry.ccusage import ClaudeDirs

log = logging.getLogger(__name__)

# Lines before --since minus this still count toward the window's first day in any timezone.
ZONE_SLACK = timedelta(days=2)
# A transcript last written this long before the window's start holds no line inside it
# (Claude Code appends; its lines' times are when they were written). The margin covers a
# clock that was behind on the PC that wrote a copied file.
MTIME_SLACK = timedelta(days=1)


def request_key(message_id: str, request_id: str) -> str:
    """16 hex digits: the first 8 bytes of SHA-256("<message id>:<request id>")."""
    return hashlib.sha256(f"{message_id}:{request_id}".encode()).hexdigest()[:16]


def line_key(line: str) -> tuple[str, datetime] | None:
    """(key, UTC time) of a transcript line ccusage would count and deduplicate, else None."""
    if '"requestId"' not in line or '"usage"' not in line:
        return None
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: a line nested ~1,000 deep
        return None
    if not isinstance(record, dict):
        return None
    message = record.get("message")
    request_id = record.get("requestId")
    if not isinstance(message, dict) or not isinstance(request_id, str):
        return None
    message_id = message.get("id")
    stamp = record.get("timestamp")
    if not isinstance(message_id, str) or not isinstance(stamp, str):
        return None
    moment = utc_moment(stamp)
    if moment is None:
        return None
    return request_key(message_id, request_id), moment


def utc_moment(stamp: str) -> datetime | None:
    """A transcript line's ISO 8601 `timestamp` as an aware UTC datetime (naive: UTC), or
    None when it is not one."""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _transcripts(projects_dirs: list[Path]) -> Iterator[Path]:
    for root in projects_dirs:
        if root.is_dir():
            yield from sorted(root.rglob("*.jsonl"))


def scan_start(since: date | None) -> datetime | None:
    """The first moment scan reads for a window starting on `since`: two days before it, for
    any timezone's day (None: the whole history)."""
    if since is None:
        return None
    return datetime(since.year, since.month, since.day, tzinfo=UTC) - ZONE_SLACK


def scan(projects_dirs: list[Path], since: date | None = None) -> dict[str, list[str]]:
    """{UTC hour "YYYY-MM-DDTHH:00:00Z": sorted keys} of every request in the logs (from
    `since`, with two days of slack for timezones, when given)."""
    return scan_counting(projects_dirs, since)[0]


def scan_counting(
    projects_dirs: list[Path], since: date | None = None
) -> tuple[dict[str, list[str]], Counter[str]]:
    """scan, and how many lines carry each key (a request Claude Code logged on several
    lines, or in several transcripts, counts each)."""
    start = scan_start(since)
    first_hour: dict[str, datetime] = {}
    lines_of: Counter[str] = Counter()
    oldest = (start - MTIME_SLACK).timestamp() if start is not None else None
    for path in _transcripts(projects_dirs):
        try:
            if oldest is not None and path.stat().st_mtime < oldest:
                continue  # nothing in the window: not read at all (steady-state syncs)
            with path.open(encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    found = line_key(line)
                    if found is None:
                        continue
                    key, moment = found
                    if start is not None and moment < start:
                        continue
                    lines_of[key] += 1
                    hour = moment.replace(minute=0, second=0, microsecond=0)
                    if key not in first_hour or hour < first_hour[key]:
                        first_hour[key] = hour
        except OSError:
            continue
    hours: dict[str, list[str]] = {}
    for key, hour in first_hour.items():
        hours.setdefault(hour.strftime("%Y-%m-%dT%H:00:00Z"), []).append(key)
    return {hour: sorted(keys) for hour, keys in sorted(hours.items())}, lines_of


class OwnedKeys:
    """The request keys the server confirmed as this machine's, so a sync asks only about
    the others: usually the few requests made since the last sync.

    The first machine to report a request owns it for good (the server never gives a claimed
    key to another machine), so a key confirmed once needs no second question. Keys another
    machine owns are not kept: they are asked about again each time, so the answer follows
    the server if that machine is deleted. Kept in the agent home for one server and machine
    (`scope`), for the hours of the last KEEP: later windows start after that.
    """

    FILE = "request-keys-owned.json"
    KEEP = timedelta(days=10)

    def __init__(self, folder: Path, scope: str):
        self.path = folder / self.FILE
        self.scope = scope
        self.hours: dict[str, set[str]] = {}
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("scope") == scope:
            stored = data.get("hours")
            if isinstance(stored, dict):
                self.hours = {
                    hour: {k for k in keys if isinstance(k, str)}
                    for hour, keys in stored.items()
                    if isinstance(hour, str) and isinstance(keys, list)
                }

    def unasked(self, hours: dict[str, list[str]]) -> dict[str, list[str]]:
        """The part of `hours` ({UTC hour: keys}, request_keys.scan) not confirmed as owned."""
        out: dict[str, list[str]] = {}
        for hour, keys in hours.items():
            owned = self.hours.get(hour, set())
            left = [key for key in keys if key not in owned]
            if left:
                out[hour] = left
        return out

    def confirm(self, asked: dict[str, list[str]], foreign: set[str], now: datetime) -> None:
        """Keep the keys of `asked` the server did not name in `foreign` as owned, drop hours
        older than KEEP before `now`, and save (a failed save only means asking again)."""
        for hour, keys in asked.items():
            owned = [key for key in keys if key not in foreign]
            if owned:
                self.hours.setdefault(hour, set()).update(owned)
        oldest = (now - self.KEEP).astimezone(UTC).strftime("%Y-%m-%dT%H:00:00Z")
        self.hours = {hour: keys for hour, keys in self.hours.items() if hour >= oldest}
        data = {"scope": self.scope, "hours": {h: sorted(k) for h, k in self.hours.items()}}
        try:
            atomic_write(self.path, json.dumps(data, separators=(",", ":")).encode("utf-8"))
        except OSError as exc:
            log.warning("owned request keys not saved (they are asked about again): %s", exc)


def without_requests(dirs: ClaudeDirs, foreign: set[str], target: Path) -> str:
    """Copy each Claude folder's projects/ under `target`, leaving out the lines of the
    `foreign` requests; returns the CLAUDE_CONFIG_DIR value that points ccusage at the copies.
    Files keep their times (ccusage reads nothing else of them)."""
    folders = []
    for index, base in enumerate(dirs.valid):
        source = base / "projects"
        dest = target / str(index)
        for path in _transcripts([source]):
            out = dest / "projects" / path.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            with (
                path.open(encoding="utf-8", errors="replace") as lines,
                out.open("w", encoding="utf-8") as kept,
            ):
                for line in lines:
                    found = line_key(line)
                    if found is None or found[0] not in foreign:
                        kept.write(line)
            shutil.copystat(path, out)
        (dest / "projects").mkdir(parents=True, exist_ok=True)
        folders.append(str(dest))
    return ",".join(folders)
