"""Writing facts: bulk upserts on each natural key, where the most recently received report wins.

A fact remembers when the batch that last reported it was received (`reported_at`); a batch
replaces a fact only if it was received at or after that moment (see usage.ingest.pipeline for why).
Every write is INSERT … ON CONFLICT UPDATE in batches, so 10,000 rows cost a few dozen queries.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePosixPath, PureWindowsPath

from usage.figures import FIGURE_FIELDS
from usage.ingest.parsers import DAILY_KINDS, Envelope, ProjectInfo
from usage.models import (
    DailyUsage,
    HourlyUsage,
    Project,
    RateLimitSnapshot,
    SessionUsage,
    Source,
    readable_project_name,
)

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
    removed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
        }


# --- projects --------------------------------------------------------------------------------
def display_name_for(key: str, info: ProjectInfo | None) -> str:
    if info and info.cwd:
        path = PureWindowsPath(info.cwd) if "\\" in info.cwd else PurePosixPath(info.cwd)
        if path.name:
            return path.name[:200]
    if info and info.hashed:
        return f"project {key[:8]}"
    return readable_project_name(key)[:200]


def resolve_projects(team, envelope: Envelope) -> dict[str, int]:
    """Project ids by key for every key the reports use, creating the missing ones."""
    keys: set[str] = set()
    for kind in (*DAILY_KINDS, "claude_session"):
        keys.update(row.project_key for row in envelope.reports.get(kind, ()))
    infos = envelope.projects
    found = _projects_by_key(team, keys)
    missing = keys - found.keys()
    if missing:
        Project.objects.bulk_create(
            [
                Project(
                    team=team,
                    key=key,
                    display_name=display_name_for(key, infos.get(key)),
                    cwd=infos[key].cwd if key in infos else "",
                    git_remote=infos[key].git_remote if key in infos else "",
                )
                for key in sorted(missing)
            ],
            # Another machine of the team may create the same project at the same moment.
            ignore_conflicts=True,
            batch_size=BATCH_SIZE,
        )
        found.update(_projects_by_key(team, missing))
    changed = []
    for key, info in infos.items():
        project = found.get(key)
        if project is None:
            continue
        before = (project.cwd, project.git_remote, project.display_name)
        if info.cwd:
            # A name still derived from the key improves once the real folder is known.
            if project.display_name == readable_project_name(key)[:200]:
                project.display_name = display_name_for(key, info)
            project.cwd = info.cwd
        if info.git_remote:
            project.git_remote = info.git_remote
        if (project.cwd, project.git_remote, project.display_name) != before:
            changed.append(project)
    if changed:
        Project.objects.bulk_update(
            changed, ["cwd", "git_remote", "display_name"], batch_size=BATCH_SIZE
        )
    return {key: project.pk for key, project in found.items()}


def _projects_by_key(team, keys: Iterable[str]) -> dict[str, Project]:
    found = {}
    for chunk in _chunks(sorted(keys)):
        for project in Project.objects.filter(team=team, key__in=chunk).only(
            "id", "key", "display_name", "cwd", "git_remote"
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


def upsert_daily(machine, batch, rows, projects) -> Counts:
    values = [
        {
            "source": row.source,
            "day": row.day,
            "project_id": projects[row.project_key],
            "model": row.model,
            **_token_values(row.tokens),
        }
        for row in rows
    ]
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
        value_fields=FIGURE_FIELDS,
        rows=values,
        existing=existing,
    )


def remove_daily_absent_from_window(machine, batch, kind: str, rows, window_start) -> int:
    """Delete this machine's daily facts inside the report's window that the report no longer has.

    ccusage recomputes the whole window each time, so a day-project-model inside it that is
    absent is gone from the logs' view: after a change of reporting timezone every day shifts,
    and after switching to hashed project names every key changes. Keeping such rows would count
    the same usage twice. Days before the window are never touched (the server outlives Claude
    Code's log cleanup), and rows a later batch reported are left to that batch.
    """
    if window_start is None:
        return 0
    claude = Source.CLAUDE_CODE
    stale = DailyUsage.objects.filter(
        machine=machine, day__gte=window_start, reported_at__lte=batch.received_at
    )
    # Each daily report owns its sources: Claude Code rows come only from the per-project report.
    stale = (
        stale.filter(source=claude) if kind == CLAUDE_DAILY_KIND else stale.exclude(source=claude)
    )
    present = {(row.source, row.day, row.project_key, row.model) for row in rows}
    doomed = [
        pk
        for pk, *key in stale.values_list("pk", "source", "day", "project__key", "model")
        if tuple(key) not in present
    ]
    for chunk in _chunks(doomed):
        DailyUsage.objects.filter(pk__in=chunk).delete()
    return len(doomed)


def upsert_hourly(machine, batch, rows) -> Counts:
    values = [
        {
            "hour": row.hour,
            "entries": row.entries,
            "last_activity": row.last_activity,
            "models_used": row.models,
            "limit_reset_at": row.limit_reset_at,
            **_token_values(row.tokens),
        }
        for row in rows
    ]
    existing = _in_key_range(HourlyUsage, machine, "hour", [row.hour for row in rows])
    return _upsert(
        HourlyUsage,
        machine,
        batch,
        key_fields=("hour",),
        value_fields=(*FIGURE_FIELDS, "entries", "last_activity", "models_used", "limit_reset_at"),
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
