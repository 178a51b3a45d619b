"""Writing facts: bulk upserts on each natural key, where the most recently received report wins.

A fact remembers when the batch that last reported it was received (`reported_at`); a batch
replaces a fact only if it was received at or after that moment (see usage.ingest.pipeline for why).
Every write is INSERT … ON CONFLICT UPDATE in batches, so 10,000 rows cost a few dozen queries.
"""

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePosixPath, PureWindowsPath
from zoneinfo import ZoneInfo

from django.db.models import Q

from usage.figures import FIGURE_FIELDS
from usage.ingest.parsers import DAILY_KINDS, Envelope, ProjectInfo
from usage.ingest.parsers.request_keys import key_hex
from usage.models import (
    DailyUsage,
    HourlyUsage,
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

# Rows per INSERT … ON CONFLICT statement and per IN (…) lookup.
BATCH_SIZE = 500
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
    machine, batch, rows, projects, *, timezone: str = "", key_mode: str = ""
) -> Counts:
    """Upsert daily facts; each row remembers the report's `timezone` and project `key_mode`."""
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
    existing: Iterable[DailyUsage] = []
    if rows:
        days = [row.day for row in rows]
        existing = DailyUsage.objects.filter(
            machine=machine,
            day__gte=min(days),
            day__lte=max(days),
            source__in={row.source for row in rows},
        )
    return _upsert(
        DailyUsage,
        machine,
        batch,
        key_fields=("source", "day", "project_id", "model"),
        value_fields=(*FIGURE_FIELDS, "report_timezone", "project_key_mode", "priced_by_server"),
        rows=values,
        existing=existing,
    )


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
    hour_starts = sorted(row.hour for row in hours) if hours else []
    doomed = []
    candidates = _older_daily(machine, batch, kind).filter(moved)
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


def count_kept(machine, batch, kind: str, window_start: date | None) -> int:
    """Facts inside the report's window that it no longer lists, kept (logs cleaned up)."""
    if window_start is None:
        return 0
    return _older_daily(machine, batch, kind).filter(day__gte=window_start).count()


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


def upsert_hourly(machine, batch, rows) -> Counts:
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
    existing = list(_in_key_range(HourlyUsage, machine, "hour", [row.hour for row in rows]))
    # The agent sends first entries for recent hours only: a later report without one keeps
    # the instant already known (an hour's first entry never moves once the hour is over).
    known = {o.hour: o.first_activity for o in existing if o.first_activity is not None}
    for value in values:
        if value["first_activity"] is None:
            value["first_activity"] = known.get(value["hour"])
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
        existing=existing,
    )


def upsert_sessions(machine, batch, rows, projects) -> Counts:
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
    existing = _chunked_existing(
        SessionUsage.objects.filter(machine=machine),
        "session_id",
        [row.session_id for row in rows],
    )
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
        existing=existing,
    )


def upsert_rate_limits(machine, batch, rows) -> Counts:
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
    existing = _in_key_range(
        RateLimitSnapshot, machine, "captured_at", [row.captured_at for row in rows]
    )
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
        existing=existing,
    )


def claim_request_keys(machine, batch, rows) -> tuple[Counts, list[str]]:
    """Claim the machine's request keys for it, unless another machine of the team has.

    The first machine to report a request owns it (INSERT … ON CONFLICT DO NOTHING on the
    team and key, so two machines racing for one key cannot both win). Returns the counts
    (`created`: newly owned, `unchanged`: owned before, `updated`: another machine's) and the
    keys (16 hex digits) that belong to other machines, which the agent leaves out of its
    reports: ccusage counts a request once however many logs hold it, so the team does too.
    """
    counts = Counts()
    if not rows:
        return counts, []
    hours = {row.key: row.hour for row in rows}
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
    foreign = {key: owner for key, owner in owners.items() if owner != machine.pk}
    counts.updated = len(foreign)
    mine = [key for key, owner in owners.items() if owner == machine.pk]
    counts.created = RequestKey.objects.filter(batch=batch, machine=machine).count()
    counts.unchanged = len(mine) - counts.created
    SharedRequest.objects.bulk_create(
        [
            SharedRequest(machine=machine, owner_id=owner, key=key, hour=hours[key])
            for key, owner in foreign.items()
        ],
        ignore_conflicts=True,
        batch_size=BATCH_SIZE,
    )
    return counts, sorted(key_hex(key) for key in foreign)


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


def _in_key_range(model, machine, field_name: str, keys: list) -> Iterable:
    """The machine's rows of `model` whose `field_name` lies between the smallest and the
    largest of `keys` (one indexed range scan; the caller matches keys exactly)."""
    if not keys:
        return []
    return model.objects.filter(
        machine=machine, **{f"{field_name}__gte": min(keys), f"{field_name}__lte": max(keys)}
    )


def _chunked_existing(queryset, field_name: str, keys: list) -> Iterator:
    for chunk in _chunks(keys):
        yield from queryset.filter(**{f"{field_name}__in": chunk})


def _upsert(model, machine, batch, *, key_fields, value_fields, rows, existing) -> Counts:
    """Insert new rows, replace changed ones, and take over equal ones, in bulk.

    The caller holds the machine's row lock, so the rows read here cannot change before the
    write; the write is still an INSERT … ON CONFLICT UPDATE on the natural key, so it can
    never create a duplicate.
    """
    stamp = batch.received_at
    counts = Counts()
    if rows and hasattr(existing, "only"):
        existing = existing.only("id", "batch_id", "reported_at", *key_fields, *value_fields)
    current = {tuple(getattr(o, f) for f in key_fields): o for o in (existing if rows else ())}
    to_write = []
    for values in rows:
        key = tuple(values[f] for f in key_fields)
        old = current.get(key)
        if old is None:
            counts.created += 1
        elif old.reported_at is not None and old.reported_at > stamp:
            # A newer batch already reported this; an older report never wins.
            counts.unchanged += 1
            continue
        elif all(_same(getattr(old, f), values[f]) for f in value_fields):
            counts.unchanged += 1
            if old.reported_at == stamp and old.batch_id == batch.pk:
                continue
            # Same values, newer report: it takes the row over, so an older batch replayed
            # later cannot overwrite what this one confirmed.
        else:
            counts.updated += 1
        to_write.append(model(machine=machine, batch=batch, reported_at=stamp, **values))
    if to_write:
        model.objects.bulk_create(
            to_write,
            update_conflicts=True,
            unique_fields=["machine", *(_field_name(model, f) for f in key_fields)],
            update_fields=[
                *(_field_name(model, f) for f in value_fields),
                "batch",
                "reported_at",
                *(["updated_at"] if _has_field(model, "updated_at") else []),
            ],
            batch_size=BATCH_SIZE,
        )
    return counts


def _same(old, new) -> bool:
    if isinstance(old, Decimal) or isinstance(new, Decimal):
        if old is None or new is None:
            return old is new
        return abs(Decimal(old) - Decimal(new)) <= COST_TOLERANCE
    return old == new


def _field_name(model, attname: str) -> str:
    """`project_id` → `project`: bulk_create's conflict options want field names."""
    for model_field in model._meta.concrete_fields:
        if model_field.attname == attname:
            return model_field.name
    raise LookupError(attname)


def _has_field(model, name: str) -> bool:
    return any(f.name == name for f in model._meta.get_fields())


def _chunks(items: list, size: int = BATCH_SIZE) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
