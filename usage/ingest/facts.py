"""Writing facts: set-based upserts on each natural key, where the most recently received
report wins.

A fact remembers when the batch that last changed it was received (`reported_at`); a batch
replaces a fact only if it was received at or after that moment (see usage.ingest.pipeline for
why). Every write is one INSERT … ON CONFLICT DO UPDATE … WHERE per chunk of rows (no model
instance per row), and a row whose values are already stored is not written: an ingest costs
what changed, and a re-sent report writes nothing.
"""

import json
import sqlite3
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from pathlib import PurePosixPath, PureWindowsPath
from zoneinfo import ZoneInfo

from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from usage.figures import FIGURE_FIELDS
from usage.ingest.parsers import (
    DAILY_KINDS,
    Envelope,
    ParseError,
    ProjectInfo,
    decode_json,
    parse_envelope,
)
from usage.ingest.parsers.request_keys import key_hex
from usage.models import (
    BatchStatus,
    DailyUsage,
    HourlyUsage,
    IngestBatch,
    Project,
    RateLimitSnapshot,
    RequestKey,
    SessionUsage,
    SharedRequest,
    Source,
    legacy_project_name,
    readable_project_name,
)
from usage.pricing import price_new_rows
from usage.projects import group_same_remotes, normalise_git_remote, strip_credentials

CLAUDE_DAILY_KIND = "claude_daily_instances"

# Rows per IN (…) lookup and per SQLite INSERT (which also stays under its parameter limit).
BATCH_SIZE = 500
# Rows per PostgreSQL INSERT … SELECT FROM unnest(…): one array parameter per column.
UNNEST_ROWS = 5000
# Costs are stored with 10 decimals; SQLite keeps them as doubles, so equal is "within this".
COST_TOLERANCE = Decimal("0.000000001")


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    # Replaced by the same usage under other keys (another timezone or project-key mode).
    removed: int = 0
    # Inside the report's window, no longer in it, and kept (absence never deletes).
    kept: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "kept": self.kept,
        }


# --- projects --------------------------------------------------------------------------------
def display_name_for(key: str, info: ProjectInfo | None) -> str:
    """A project's name: the last part of the folder the agent reported (`cwd`, read as a
    Windows path when it has backslashes, else the folder `name` it sent without paths), else
    `project <hash>` for a hashed key, else what the key itself gives (readable_project_name).
    At most 200 characters."""
    if info and info.cwd:
        path = PureWindowsPath(info.cwd) if "\\" in info.cwd else PurePosixPath(info.cwd)
        if path.name:
            return path.name[:200]
    if info and info.name:
        return info.name[:200]
    if info and info.hashed:
        return f"project {key[:8]}"
    return readable_project_name(key)[:200]


def _name_is_derived(project: Project) -> bool:
    """True while nobody chose the project's name: it is still what a key alone gives."""
    key = project.key
    return project.display_name in {
        readable_project_name(key)[:200],
        legacy_project_name(key)[:200],
    }


def resolve_projects(team, envelope: Envelope, reporter=None) -> dict[str, int]:
    """Project ids by key for every key the reports use, creating the missing ones.

    Stores each project's folder and credential-free git remote, improves names nobody chose
    once the agent says more, and groups projects of one repository (usage.projects).

    Whose word counts (issue 12): the first member whose agent reports a project's folder or
    remote (`reporter`, a User) becomes its `reported_by`; only that member's agent changes the
    folder, remote and folder-given name afterwards. A teammate's agent fills only what is
    still blank, and a name an admin chose is never replaced by any agent.
    """
    keys: set[str] = set()
    for kind in (*DAILY_KINDS, "claude_session"):
        keys.update(row.project_key for row in envelope.reports.get(kind, ()))
    infos = envelope.projects
    found = _projects_by_key(team, keys)
    missing = keys - found.keys()
    if missing:
        Project.objects.bulk_create(
            [
                Project(team=team, key=key, display_name=display_name_for(key, infos.get(key)))
                for key in sorted(missing)
            ],
            # Another machine of the team may create the same project at the same moment.
            ignore_conflicts=True,
            batch_size=BATCH_SIZE,
        )
        found.update(_projects_by_key(team, missing))
    changed = []
    fields = ("cwd", "git_remote", "remote_key", "display_name", "reported_by_id")
    reporter_id = getattr(reporter, "pk", None)
    for key, project in found.items():
        info = infos.get(key)
        before = tuple(getattr(project, f) for f in fields)
        if info and (info.cwd or info.git_remote) and project.reported_by_id is None:
            project.reported_by_id = reporter_id
        # A teammate's report fills blanks only; it never replaces what another agent said.
        own = project.reported_by_id is None or project.reported_by_id == reporter_id
        knows_more = info is not None and bool(info.cwd or info.name or info.hashed)
        # A name from a folder stays until the agent says more (the key alone gives less).
        if _name_is_derived(project) and ((own and knows_more) or not project.cwd):
            project.display_name = display_name_for(key, info)
        if info and info.cwd and (own or not project.cwd):
            project.cwd = info.cwd
        if info and info.git_remote and (own or not project.git_remote):
            project.git_remote = strip_credentials(info.git_remote)
            project.remote_key = normalise_git_remote(info.git_remote)[:1000]
        if tuple(getattr(project, f) for f in fields) != before:
            changed.append(project)
    if changed:
        Project.objects.bulk_update(changed, fields, batch_size=BATCH_SIZE)
    group_same_remotes(team, {p.remote_key for p in found.values() if p.remote_key})
    return {key: project.pk for key, project in found.items()}


def _projects_by_key(team, keys: Iterable[str]) -> dict[str, Project]:
    found = {}
    for chunk in _chunks(sorted(keys)):
        for project in Project.objects.filter(team=team, key__in=chunk).only(
            "id", "key", "display_name", "cwd", "git_remote", "remote_key", "reported_by_id"
        ):
            found[project.key] = project
    return found


# --- facts -----------------------------------------------------------------------------------


def _token_values(tokens) -> dict:
    return {
        "input_tokens": tokens.input_tokens,
        "output_tokens": tokens.output_tokens,
        "cache_creation_tokens": tokens.cache_creation_tokens,
        "cache_read_tokens": tokens.cache_read_tokens,
        "total_tokens": tokens.total_tokens,
        "cost_usd": tokens.cost_usd,
    }


def upsert_daily(
    machine,
    batch,
    rows,
    projects,
    *,
    timezone: str = "",
    key_mode: str = "",
    fresh: bool = False,
) -> Counts:
    """Upsert daily facts; each row remembers the report's `timezone` and project `key_mode`.
    `fresh`: the machine was registered by this batch, so it has no facts to compare with."""
    values = [
        {
            "source": row.source,
            "day": row.day,
            "project_id": projects[row.project_key],
            "model": row.model,
            **_token_values(row.tokens),
            "report_timezone": timezone,
            "project_key_mode": key_mode,
        }
        for row in rows
    ]
    # ccusage's $0 for a model it cannot price becomes the server's price, if one is set.
    price_new_rows(values)
    return _upsert(
        DailyUsage,
        machine,
        batch,
        key_fields=("source", "day", "project_id", "model"),
        value_fields=(*FIGURE_FIELDS, "report_timezone", "project_key_mode", "priced_by_server"),
        rows=values,
        compare=not fresh,
    )


# The natural key of a parsed row of each kind (the daily kinds share one table).
_ROW_KEYS = {
    "daily": lambda row: (row.source, row.day, row.project_key, row.model),
    "blocks_hourly": lambda row: row.hour,
    "claude_session": lambda row: row.session_id,
    "statusline": lambda row: row.captured_at,
}


def _key_family(kind: str) -> str:
    return "daily" if kind in DAILY_KINDS else kind


def without_later_reports(machine, batch, reports: dict) -> tuple[dict, dict[str, int]]:
    """The report's rows less those a batch of the machine received after this one already
    reported, and how many were left out per kind.

    An equal row is not written again (see _upsert), so a fact's `reported_at` says when it
    last changed, not when it was last confirmed. A batch that arrives before another but is
    stored after it (two requests of one machine racing, or reprocess_batches replaying old
    batches) must not replace what the later one confirmed unchanged: its rows are checked
    against the later batches' archived reports. Usually no later batch exists, and this is one
    indexed query.
    """
    later = IngestBatch.objects.filter(
        machine=machine, status=BatchStatus.PROCESSED, received_at__gt=batch.received_at
    ).exclude(pk=batch.pk)
    if not later.exists():
        return reports, {}
    seen: dict[str, set] = {family: set() for family in _ROW_KEYS}
    for other in later.only("id", "body_gzip", "received_at").iterator(chunk_size=20):
        try:
            envelope = parse_envelope(decode_json(other.body()), now=other.received_at)
        except (OSError, EOFError, ParseError):
            continue
        for kind, rows in envelope.reports.items():
            family = _key_family(kind)
            if family in seen:
                seen[family].update(_ROW_KEYS[family](row) for row in rows)
    writable, skipped = dict(reports), {}
    for kind, rows in reports.items():
        family = _key_family(kind)
        if family not in seen:
            continue
        kept = [row for row in rows if _ROW_KEYS[family](row) not in seen[family]]
        writable[kind], skipped[kind] = kept, len(rows) - len(kept)
    return writable, skipped


def _older_daily(machine, batch, kind: str):
    """This machine's daily facts of the kind's sources that no later batch reported and
    this batch did not write."""
    claude = Source.CLAUDE_CODE
    older = DailyUsage.objects.filter(machine=machine, reported_at__lte=batch.received_at).exclude(
        batch=batch
    )
    # Each daily report owns its sources: Claude Code rows come only from the per-project report.
    return (
        older.filter(source=claude) if kind == CLAUDE_DAILY_KIND else older.exclude(source=claude)
    )


def replace_regrouped(
    machine, batch, kind: str, rows, *, timezone: str, key_mode: str, hours=None
) -> int:
    """Delete the facts this report regroups; return how many. Absence alone never deletes.

    A stored fact written under another reporting timezone (every day shifts) or another
    project-key mode (switching to hashed names changes every key) is the same usage the
    report now lists under other keys: it is replaced when the report still has usage of its
    source and model on a day that overlaps its day (and of its project, unless the key mode
    changed). For Claude Code, `hours` (the same envelope's hourly rows, UTC) must also show
    usage inside the fact's day, so a day whose logs are gone is never taken for a neighbour
    that still has some. A fact the report does not cover stays: the server outlives Claude
    Code's 30-day log cleanup (DESIGN.md, "Replace, never add").
    """
    moved = Q()
    if timezone:
        moved |= ~Q(report_timezone__in=("", timezone))
    if key_mode:
        moved |= ~Q(project_key_mode__in=("", key_mode))
    if not moved:
        return 0
    listed: dict[tuple[str, str], dict[date, set[str]]] = {}
    for row in rows:
        listed.setdefault((row.source, row.model), {}).setdefault(row.day, set()).add(
            row.project_key
        )
    if not listed:
        return 0
    hour_starts = sorted(row.hour for row in hours) if hours else []
    doomed = []
    # A fact can only be covered by a listed day it overlaps, and a day of one timezone
    # overlaps days at most two away in another (UTC offsets span 26 hours): the scan is
    # limited to those days (a few for a routine sync, not the machine's whole history).
    days = [day for by_day in listed.values() for day in by_day]
    reach = timedelta(days=2)
    candidates = (
        _older_daily(machine, batch, kind)
        .filter(day__gte=min(days) - reach, day__lte=max(days) + reach)
        .filter(moved)
    )
    for pk, source, day, project_key, model, old_zone, old_mode in candidates.values_list(
        "pk", "source", "day", "project__key", "model", "report_timezone", "project_key_mode"
    ):
        zone_moved = bool(timezone and old_zone and old_zone != timezone)
        keys_moved = bool(key_mode and old_mode and old_mode != key_mode)
        if not (zone_moved or keys_moved):
            continue
        by_day = listed.get((source, model), {})
        days = _overlapping_days(day, old_zone, timezone) if zone_moved else [day]
        if not any(d in by_day and (keys_moved or project_key in by_day[d]) for d in days):
            continue
        if zone_moved and hour_starts and source == Source.CLAUDE_CODE:
            start, end = _day_bounds(day, old_zone)
            at = bisect_left(hour_starts, start)
            if at == len(hour_starts) or hour_starts[at] >= end:
                continue
        doomed.append(pk)
    for chunk in _chunks(doomed):
        DailyUsage.objects.filter(pk__in=chunk).delete()
    return len(doomed)


def count_kept(machine, batch, kind: str, window_start: date | None, rows) -> int:
    """Facts inside the report's window that it no longer lists, kept (logs cleaned up).

    The stored facts of the window that no later batch reported, less the ones the report
    lists (`rows`, as stored by upsert_daily: equal rows keep their older batch, so the batch
    stamp alone cannot tell listed from absent).
    """
    if window_start is None:
        return 0
    claude = Source.CLAUDE_CODE
    stored = DailyUsage.objects.filter(
        machine=machine, reported_at__lte=batch.received_at, day__gte=window_start
    )
    stored = (
        stored.filter(source=claude) if kind == CLAUDE_DAILY_KIND else stored.exclude(source=claude)
    )
    listed = {
        (row.source, row.day, row.project_key, row.model)
        for row in rows
        if row.day >= window_start and (row.source == claude) == (kind == CLAUDE_DAILY_KIND)
    }
    return max(0, stored.count() - len(listed))


def _day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of `day` in the IANA timezone `zone`."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time(), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def _overlapping_days(day: date, old_zone: str, new_zone: str) -> list[date]:
    """The days of `new_zone` that share an instant with `day` of `old_zone`."""
    start, end = _day_bounds(day, old_zone)
    tz = ZoneInfo(new_zone)
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def upsert_hourly(machine, batch, rows, *, fresh: bool = False) -> Counts:
    values = [
        {
            "hour": row.hour,
            "entries": row.entries,
            "last_activity": row.last_activity,
            "models_used": row.models,
            "limit_reset_at": row.limit_reset_at,
            "first_activity": row.first_activity,
            **_token_values(row.tokens),
        }
        for row in rows
    ]
    return _upsert(
        HourlyUsage,
        machine,
        batch,
        key_fields=("hour",),
        value_fields=(
            *FIGURE_FIELDS,
            "entries",
            "last_activity",
            "models_used",
            "limit_reset_at",
            "first_activity",
        ),
        rows=values,
        compare=not fresh,
        # The agent sends first entries for recent hours only: a later report without one
        # keeps the instant already known (an hour's first entry never moves once it is over).
        keep_known=("first_activity",),
    )


def upsert_sessions(machine, batch, rows, projects, *, fresh: bool = False) -> Counts:
    values = [
        {
            "session_id": row.session_id,
            "source": row.source,
            "project_id": projects[row.project_key],
            "first_activity": row.first_activity,
            "last_activity": row.last_activity,
            "models_used": row.models,
            **_token_values(row.tokens),
        }
        for row in rows
    ]
    return _upsert(
        SessionUsage,
        machine,
        batch,
        key_fields=("session_id",),
        value_fields=(
            *FIGURE_FIELDS,
            "source",
            "project_id",
            "first_activity",
            "last_activity",
            "models_used",
        ),
        rows=values,
        compare=not fresh,
    )


def upsert_rate_limits(machine, batch, rows, *, fresh: bool = False) -> Counts:
    values = [
        {
            "captured_at": row.captured_at,
            "subscription_id": machine.subscription_id,
            "five_hour_used_pct": row.five_hour_used_pct,
            "five_hour_resets_at": row.five_hour_resets_at,
            "seven_day_used_pct": row.seven_day_used_pct,
            "seven_day_resets_at": row.seven_day_resets_at,
            "extra_windows": row.extra_windows,
        }
        for row in rows
    ]
    return _upsert(
        RateLimitSnapshot,
        machine,
        batch,
        key_fields=("captured_at",),
        value_fields=(
            "subscription_id",
            "five_hour_used_pct",
            "five_hour_resets_at",
            "seven_day_used_pct",
            "seven_day_resets_at",
            "extra_windows",
        ),
        rows=values,
        compare=not fresh,
    )


def claim_request_keys(machine, batch, rows) -> tuple[Counts, list[str]]:
    """Claim the machine's request keys for it, unless another machine of the team has.

    The first machine to report a request owns it (INSERT … ON CONFLICT DO NOTHING on the
    team and key, so two machines racing for one key cannot both win). Returns the counts
    (`created`: newly owned, `unchanged`: owned before, `updated`: another machine's) and the
    keys (16 hex digits) that belong to other machines, which the agent leaves out of its
    reports: ccusage counts a request once however many logs hold it, so the team does too.
    A key counts as created when this batch claimed it (also when the batch is replayed).
    """
    counts = Counts()
    if not rows:
        return counts, []
    hours = {row.key: row.hour for row in rows}
    if connection.vendor == "postgresql":
        owners, claimed = _claim_keys_postgresql(machine, batch, hours)
    else:
        owners, claimed = _claim_keys_bulk(machine, batch, hours)
    foreign = {key: owner for key, owner in owners.items() if owner != machine.pk}
    counts.updated = len(foreign)
    counts.created = claimed
    counts.unchanged = len(owners) - len(foreign) - claimed
    if foreign:
        _record_shared(machine, foreign, hours)
    return counts, sorted(key_hex(key) for key in foreign)


def _claim_keys_bulk(machine, batch, hours: dict[int, datetime]) -> tuple[dict[int, int], int]:
    """({key: owning machine id}, keys this batch owns) after claiming the unowned ones, with
    the ORM (SQLite)."""
    RequestKey.objects.bulk_create(
        [
            RequestKey(team_id=machine.team_id, key=key, machine=machine, hour=hour, batch=batch)
            for key, hour in hours.items()
        ],
        ignore_conflicts=True,
        batch_size=BATCH_SIZE,
    )
    owners: dict[int, int] = {}
    for chunk in _chunks(list(hours)):
        owners.update(
            RequestKey.objects.filter(team_id=machine.team_id, key__in=chunk).values_list(
                "key", "machine_id"
            )
        )
    return owners, RequestKey.objects.filter(batch=batch, machine=machine).count()


_CLAIM_KEYS_SQL = """
WITH k AS (SELECT * FROM unnest(%s::bigint[], %s::timestamptz[]) AS k(key, hour)),
claimed AS (
  INSERT INTO usage_requestkey (team_id, key, machine_id, hour, batch_id)
  SELECT %s::bigint, k.key, %s::bigint, k.hour, %s::bigint FROM k
  ON CONFLICT (team_id, key) DO NOTHING
  RETURNING key)
SELECT k.key, claimed.key IS NOT NULL, owned.machine_id, owned.batch_id
FROM k LEFT JOIN claimed ON claimed.key = k.key
LEFT JOIN usage_requestkey AS owned ON owned.team_id = %s::bigint AND owned.key = k.key
"""


def _claim_keys_postgresql(
    machine, batch, hours: dict[int, datetime]
) -> tuple[dict[int, int], int]:
    """({key: owning machine id}, keys this batch owns) after claiming the unowned ones: one
    statement for the claims and the owners of the keys owned before it began."""
    import psycopg  # only on PostgreSQL

    keys = list(hours)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            _CLAIM_KEYS_SQL,
            [
                array_of_numbers(keys),
                array_of_instants(list(hours.values())),
                machine.team_id,
                machine.pk,
                batch.pk,
                machine.team_id,
            ],
        )
        found = cursor.fetchall()
    owners: dict[int, int] = {}
    claimed = 0
    unseen = []
    for key, inserted, owner, owner_batch in found:
        if inserted:
            owners[key] = machine.pk
            claimed += 1
        elif owner is not None:
            owners[key] = owner
            # Claimed by this very batch before (a replay): still this batch's claim.
            claimed += owner == machine.pk and owner_batch == batch.pk
        else:
            unseen.append(key)
    # Claimed by another request that committed while this statement ran: its snapshot did
    # not show the row, which a new statement does.
    for chunk in _chunks(unseen):
        owners.update(
            RequestKey.objects.filter(team_id=machine.team_id, key__in=chunk).values_list(
                "key", "machine_id"
            )
        )
    return owners, claimed


def _record_shared(machine, foreign: dict[int, int], hours: dict[int, datetime]) -> None:
    """Note the requests this machine's logs hold that `foreign` ({key: owner id}) owns."""
    if connection.vendor != "postgresql":
        SharedRequest.objects.bulk_create(
            [
                SharedRequest(machine=machine, owner_id=owner, key=key, hour=hours[key])
                for key, owner in foreign.items()
            ],
            ignore_conflicts=True,
            batch_size=BATCH_SIZE,
        )
        return
    import psycopg  # only on PostgreSQL

    keys = list(foreign)
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            "INSERT INTO usage_sharedrequest (machine_id, owner_id, key, hour) "
            "SELECT %s::bigint, s.owner, s.key, s.hour "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::timestamptz[]) AS s(key, owner, hour) "
            "ON CONFLICT (machine_id, key) DO NOTHING",
            [
                machine.pk,
                array_of_numbers(keys),
                array_of_numbers([foreign[k] for k in keys]),
                array_of_instants([hours[k] for k in keys]),
            ],
        )


def shared_request_keys(machine, keys: list[int]) -> list[str]:
    """Which of `keys` the machine reported after another machine did (16 hex digits)."""
    found: list[str] = []
    for chunk in _chunks(keys):
        found += [
            key_hex(key)
            for key in SharedRequest.objects.filter(machine=machine, key__in=chunk).values_list(
                "key", flat=True
            )
        ]
    return sorted(found)


def _upsert(
    model, machine, batch, *, key_fields, value_fields, rows, keep_known=(), compare=True
) -> Counts:
    """Insert new rows and update changed ones in set-based statements; equal rows are not
    written at all.

    One INSERT … ON CONFLICT DO UPDATE … WHERE per chunk: PostgreSQL reads the rows from
    `unnest` of one array per column, SQLite from a VALUES list. The WHERE clause keeps a
    row whose figures are equal to the report's (IS DISTINCT FROM, column by column) or that
    a later batch reported (`reported_at` after this batch's), so a re-sent report rewrites
    nothing and re-stamps nothing: only created or changed rows carry this batch, which is how
    derived work finds what changed (usage.ingest.derive). Columns in `keep_known` keep their
    stored value when the report has none (NULL). Counts: `created` inserted, `updated`
    rewritten, `unchanged` the rest.

    The caller holds the machine's row lock; the statement is still an upsert on the natural
    key, so it can never create a duplicate.
    """
    counts = Counts()
    if not rows:
        return counts
    # One row per key: the last one a report lists wins, as it would row by row.
    unique = {tuple(values[f] for f in key_fields): values for values in rows}
    counts.unchanged = len(rows) - len(unique)
    columns = _Columns(model, key_fields, value_fields, keep_known)
    constants = {"machine_id": machine.pk, "batch_id": batch.pk, "reported_at": batch.received_at}
    if columns.updated_at:
        constants["updated_at"] = timezone.now()
    written = inserted = 0
    vendor = connection.vendor
    # Inserted rows get ids above every existing one (the machine's rows are written under
    # its lock, and ids only grow): how SQLite's RETURNING tells inserts from updates.
    last_id = _last_id(columns.table) if vendor != "postgresql" else 0
    for chunk in _chunks(list(unique.values()), _chunk_size(vendor, len(columns.names))):
        if vendor == "postgresql":
            w, i = _upsert_postgresql(columns, constants, chunk, compare=compare)
        else:
            w, i = _upsert_sqlite(columns, constants, chunk, last_id)
        written += w
        inserted += i
    counts.created = inserted
    counts.updated = written - inserted
    counts.unchanged += len(unique) - written
    return counts


class _Columns:
    """The columns of one fact table an upsert writes, and the SQL pieces shared by vendors."""

    def __init__(self, model, key_fields, value_fields, keep_known):
        self.model = model
        meta = model._meta
        self.table = connection.ops.quote_name(meta.db_table)
        self.fields = {f.attname: f for f in meta.concrete_fields}
        self.key_fields = tuple(key_fields)
        self.value_fields = tuple(value_fields)
        self.keep_known = tuple(keep_known)
        self.updated_at = "updated_at" in self.fields
        self.stamps = ("batch_id", "reported_at", *(("updated_at",) if self.updated_at else ()))
        self.names = ("machine_id", *self.stamps, *self.key_fields, *self.value_fields)
        # Columns nobody reports (added later, with a default) are inserted with their default.
        self.defaults = {
            name: field.get_default()
            for name, field in self.fields.items()
            if name not in self.names and not field.primary_key
        }

    def q(self, name: str) -> str:
        return connection.ops.quote_name(name)

    def conflict(self) -> str:
        return ", ".join(self.q(n) for n in ("machine_id", *self.key_fields))

    def incoming(self, name: str) -> str:
        """The report's value of a column, or the stored one when the report has none."""
        if name in self.keep_known:
            return f"COALESCE(EXCLUDED.{self.q(name)}, {self.table}.{self.q(name)})"
        return f"EXCLUDED.{self.q(name)}"

    def assignments(self) -> str:
        sets = [f"{self.q(n)} = {self.incoming(n)}" for n in self.value_fields]
        sets += [f"{self.q(n)} = EXCLUDED.{self.q(n)}" for n in self.stamps]
        return ", ".join(sets)

    def newer_or_unknown(self) -> str:
        stored = f"{self.table}.{self.q('reported_at')}"
        return f"({stored} IS NULL OR {stored} <= EXCLUDED.{self.q('reported_at')})"


def _upsert_postgresql(
    columns: _Columns, constants: dict, chunk: list[dict], *, compare: bool = True
) -> tuple[int, int]:
    """(rows written, rows inserted) for one chunk, on PostgreSQL; `compare` False skips the
    comparison with stored rows (a machine registered by this batch has none)."""
    names = (*columns.key_fields, *columns.value_fields)
    fixed = {**constants, **columns.defaults}
    sql, writers, jsonb = _postgresql_sql(
        columns.model,
        columns.key_fields,
        columns.value_fields,
        columns.keep_known,
        tuple(fixed),
        compare,
    )
    # One array per column (a key and at least one value: itemgetter always gives tuples).
    columns_of_chunk = zip(*map(itemgetter(*names), chunk), strict=True)
    arrays = [write(values) for write, values in zip(writers, columns_of_chunk, strict=True)]
    fixed_params = [json.dumps(v) if n in jsonb else v for n, v in fixed.items()]
    against = [constants["machine_id"], constants["reported_at"]] if compare else []
    params = [*arrays, *against, *fixed_params]
    import psycopg  # only on PostgreSQL

    connection.ensure_connection()
    # A server-side bound cursor: the arrays travel as parameters, not as SQL text that
    # Django's client-side cursor would spell out value by value.
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        flags = [row[0] for row in cursor.fetchall()]
    return len(flags), sum(flags)


# --- PostgreSQL array literals ---------------------------------------------------------------
# Each column travels as one text parameter in PostgreSQL's array syntax ({1,2,NULL},
# {"a","b\"c"}), cast to its type by the server: joined strings cost a fraction of what
# psycopg spends adapting the values one by one (in Python, for arrays), and the server's
# array input is C. Every value stays a parameter.


def _joined(values, write) -> str:
    return "{" + ",".join("NULL" if v is None else write(v) for v in values) + "}"


def array_of_numbers(values) -> str:
    """Whole numbers or Decimals (str gives PostgreSQL's input syntax, 1E+2 included)."""
    if None in values:
        return _joined(values, str)
    return "{" + ",".join(map(str, values)) + "}"


def array_of_booleans(values) -> str:
    return _joined(values, lambda v: "t" if v else "f")


def array_of_instants(values) -> str:
    """Dates and times (ISO 8601; an aware time keeps its offset)."""
    return _joined(values, lambda v: v.isoformat())


def _quoted(text: str) -> str:
    # Inside double quotes only a double quote and a backslash need escaping.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_of_texts(values) -> str:
    """Strings, each quoted (so "NULL", braces and commas are plain text)."""
    return _joined(values, lambda v: _quoted(str(v)))


def array_of_json(values) -> str:
    """JSON values, written as JSON texts (cast to jsonb by the statement)."""
    return _joined(values, lambda v: _quoted(json.dumps(v)))


def _array_writer(db_type: str, is_json: bool):
    if is_json:
        return array_of_json
    if db_type.startswith(("bigint", "integer", "smallint", "numeric")):
        return array_of_numbers
    if db_type == "boolean":
        return array_of_booleans
    if db_type in ("date", "timestamp with time zone"):
        return array_of_instants
    return array_of_texts


@lru_cache(maxsize=32)
def _postgresql_sql(
    model,
    key_fields: tuple,
    value_fields: tuple,
    keep_known: tuple,
    fixed: tuple,
    compare: bool = True,
) -> tuple[str, tuple, frozenset[str]]:
    """The upsert statement of one fact table and column list, the writer of each key and
    value column's array literal, and the jsonb columns; built once per process (it depends
    on metadata only).

    Its parameters: one array literal per key and value column, the machine's id and the
    batch's received time (when `compare`), then the `fixed` columns' values.

    With `compare`, the report's rows are first compared with the stored ones by a plain
    join (`changed`): only new rows and rows whose values differ reach the INSERT … ON
    CONFLICT DO UPDATE, because PostgreSQL locks (and so writes) every conflicting row, even
    one its WHERE then leaves alone. The upsert keeps the same WHERE, so the outcome never
    depends on the pre-filter (nor on `compare`, which only spares the join when the machine
    has no stored rows).
    """
    columns = _Columns(model, key_fields, value_fields, keep_known)
    names = (*columns.key_fields, *columns.value_fields)
    alias = {name: f"c{i}" for i, name in enumerate(names)}
    types = {name: field.db_type(connection) for name, field in columns.fields.items()}
    jsonb = frozenset(name for name in (*fixed, *names) if types[name] == "jsonb")
    q, table = columns.q, columns.table
    casts = ", ".join("%s::text[]" if n in jsonb else f"%s::{types[n]}[]" for n in names)
    writers = tuple(_array_writer(types[n], n in jsonb) for n in names)
    unnested = ", ".join(
        f"{alias[n]}::jsonb AS {alias[n]}" if n in jsonb else alias[n] for n in names
    )
    joined = " AND ".join(
        [f"stored.{q('machine_id')} = %s::{types['machine_id']}"]
        + [f"stored.{q(n)} = u.{alias[n]}" for n in columns.key_fields]
    )

    def report(name: str) -> str:
        if name in columns.keep_known:
            return f"COALESCE(u.{alias[name]}, stored.{q(name)})"
        return f"u.{alias[name]}"

    before = ", ".join(f"stored.{q(n)}" for n in columns.value_fields)
    after = ", ".join(report(n) for n in columns.value_fields)
    reported_at = f"stored.{q('reported_at')}"
    pk = q(model._meta.pk.column)
    stamp = types["reported_at"]
    fixed_sql = [f"%s::{types[n]}" for n in fixed]
    stored = ", ".join(f"{table}.{q(n)}" for n in columns.value_fields)
    incoming = ", ".join(columns.incoming(n) for n in columns.value_fields)
    changed = (
        f"SELECT u.* FROM u LEFT JOIN {table} AS stored ON {joined} "  # noqa: S608
        f"WHERE stored.{pk} IS NULL OR (({reported_at} IS NULL OR {reported_at} <= %s::{stamp}) "
        f"AND ({before}) IS DISTINCT FROM ({after}))"
        if compare
        else "SELECT * FROM u"
    )
    # Identifiers come from the model's metadata; every value is a parameter.
    sql = (
        f"WITH u AS (SELECT {unnested} FROM unnest({casts}) "  # noqa: S608
        f"AS u({', '.join(alias.values())})), "
        f"changed AS ({changed}) "
        f"INSERT INTO {table} ({', '.join(q(n) for n in (*fixed, *names))}) "
        f"SELECT {', '.join([*fixed_sql, *(alias[n] for n in names)])} FROM changed "
        f"ON CONFLICT ({columns.conflict()}) DO UPDATE SET {columns.assignments()} "
        f"WHERE {columns.newer_or_unknown()} AND ({stored}) IS DISTINCT FROM ({incoming}) "
        "RETURNING (xmax = 0)"
    )
    return sql, writers, jsonb


def _last_id(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608
        return cursor.fetchone()[0]


def _upsert_sqlite(
    columns: _Columns, constants: dict, chunk: list[dict], last_id: int
) -> tuple[int, int]:
    """(rows written, rows inserted) for one chunk, on SQLite (no arrays: a VALUES list)."""
    fields = columns.fields
    fixed = {**constants, **columns.defaults}
    fixed_params = [fields[n].get_db_prep_save(v, connection) for n, v in fixed.items()]
    names = (*columns.key_fields, *columns.value_fields)
    params: list = []
    for values in chunk:
        params += fixed_params
        params += [fields[n].get_db_prep_save(values[n], connection) for n in names]
    width = len(fixed) + len(names)
    rows_sql = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(chunk))
    differs = []
    for name in columns.value_fields:
        stored, incoming = f"{columns.table}.{columns.q(name)}", columns.incoming(name)
        if isinstance(fields[name], models.DecimalField):
            # SQLite keeps decimals as doubles: equal means within the stored places.
            differs.append(
                f"(({stored} IS NULL) <> ({incoming} IS NULL) "
                f"OR ABS({stored} - {incoming}) > {COST_TOLERANCE})"
            )
        else:
            differs.append(f"{stored} IS NOT {incoming}")
    table = columns.table
    with connection.cursor() as cursor:
        # Identifiers come from the model's metadata; every value is a parameter.
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns.q(n) for n in (*fixed, *names))}) "  # noqa: S608
            f"VALUES {rows_sql} "
            f"ON CONFLICT ({columns.conflict()}) DO UPDATE SET {columns.assignments()} "
            f"WHERE {columns.newer_or_unknown()} AND ({' OR '.join(differs)}) "
            "RETURNING id",
            params,
        )
        ids = [row[0] for row in cursor.fetchall()]
    return len(ids), sum(1 for i in ids if i > last_id)


def _chunk_size(vendor: str, width: int) -> int:
    if vendor == "postgresql":
        return UNNEST_ROWS
    return max(1, min(BATCH_SIZE, _sqlite_max_params() // (width + 4)))


def _sqlite_max_params() -> int:
    """The SQLite library's own limit on parameters per statement (Django assumes 999)."""
    connection.ensure_connection()
    try:
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except (AttributeError, sqlite3.Error):
        return connection.features.max_query_params or 999


def _chunks(items: list, size: int = BATCH_SIZE) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
