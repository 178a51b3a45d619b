"""Exports for spreadsheets: the chargeback table (project by member by period), sessions and
blocks as rows of names and figures, the same for the pages' CSV buttons and the API.

Names, never internal ids, fill the columns people read (project, member, machine); public
ids follow for joining. The rules of who sees what are usage.queries' (accounts.access):
members appear one by one only for viewers who may see other members' figures; anyone else
asking for the whole team gets one "All members" row per project and period. Members who
left the team keep their rows, marked former, so the rows always add up to the total.
"""

from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from decimal import Decimal, localcontext
from typing import Any

from django.db.models import F, Sum
from django.db.models.functions import Coalesce, TruncMonth, TruncWeek

from accounts.access import sees_other_members, team_of
from accounts.models import User, calendar_team
from telemetry_site.formatting import CENT, model_name
from usage import queries, rollups
from usage.figures import FIGURE_FIELDS, TOKEN_FIELDS
from usage.models import Block, DailyUsage, Project, SessionUsage

CHARGEBACK_PERIODS = ("month", "week", "day", "total")
ALL_MEMBERS = "All members"
CHARGEBACK_COLUMNS = (
    "period_start",
    "period_end",
    "project",
    "member",
    "email",
    "former_member",
    *FIGURE_FIELDS,
    "project_id",
    "member_id",
)
# What a chargeback row sums over its facts.
_CHARGEBACK_SUMS = (*TOKEN_FIELDS, "total_tokens", "cost_usd")
SESSION_COLUMNS = (
    "session_id",
    "source",
    "project",
    "machine",
    "member",
    "email",
    "first_activity",
    "last_activity",
    "models",
    *FIGURE_FIELDS,
)
BLOCK_COLUMNS = (
    "start",
    "end",
    "subscription",
    "member",
    "email",
    "machines",
    "models",
    "limit_hit",
    "overlap",
    *FIGURE_FIELDS,
)


def _period_end(start: date, period: str, until: date) -> date:
    if period == "day":
        end = start
    elif period == "week":
        end = start + timedelta(days=6)
    else:
        following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        end = following - timedelta(days=1)
    return min(end, until)


def chargeback_rows(
    viewer,
    *,
    since: date,
    until: date,
    period: str = "month",
    scope: str = "team",
    machine=None,
    project=None,
    model=None,
    member=None,
    source=None,
) -> list[dict[str, Any]]:
    """The chargeback table: one row per period by project by member with tokens and USD.

    `since`/`until` are team days, inclusive; `period` is month (calendar months), week (ISO,
    from Monday), day or total (the whole range). Each row's `period_start`/`period_end` are
    clipped to the range. `member` is the member's name (`former_member` True once they left
    the team), or "All members" when the viewer may not see members one by one. Raises
    queries.QueryError for a bad parameter, PermissionDenied/Http404 as usage.queries does.
    Sorted by period, then cost (largest first), then project and member names.
    """
    if period not in CHARGEBACK_PERIODS:
        raise queries.QueryError("period", f"must be one of {', '.join(CHARGEBACK_PERIODS)}")
    first, last = queries.day_range(since, until)
    if first is None or last is None:
        raise queries.QueryError("since", "a chargeback needs both since and until")
    since, until = first, last
    per_member = shows_members(viewer, scope=scope, member=member)
    whose_q, whose = queries.whose_scope(
        viewer, scope=scope, machine=machine, member=member, individual=False
    )
    canonical = None if project in (None, "") else queries.resolve_project(viewer, project)
    grouped: list[dict[str, Any]]
    if whose.dimension != rollups.MACHINE and model in (None, "") and source in (None, ""):
        grouped = _grouped_rollups(whose, canonical, since, until, period, per_member)
    else:
        facts = DailyUsage.objects.filter(whose_q, day__gte=since, day__lte=until)
        if canonical is not None:
            facts = facts.filter(queries.project_filter(canonical))
        if model not in (None, ""):
            facts = facts.filter(model=str(model))
        if source not in (None, ""):
            facts = facts.filter(source=str(source))
        grouped = _grouped_facts(facts, period, per_member)
    projects = _canonical_projects({row["p"] for row in grouped})
    merged = _merge_aliases(grouped, projects)
    team = team_of(viewer)
    # What each member's columns say, worked out once per member rather than once per row.
    whom: dict[Any, dict[str, Any]] = {
        None: {"member": ALL_MEMBERS, "email": "", "member_id": "", "former_member": False}
    }
    if per_member:
        for owner_id, (m_id, m_name, email, m_team) in _members(
            {row["m"] for row in grouped}
        ).items():
            whom[owner_id] = {
                "member": m_name or email.split("@")[0],
                "email": email,
                "member_id": str(m_id),
                # Someone who left keeps their spend in the breakdown, marked as former.
                "former_member": team is not None and m_team != team.pk,
            }
    project_ids = {c_id: str(c_id) if c_id else "" for c_id, _ in projects.values()}
    ends: dict[date, date] = {}
    rows = []
    for (start, p_id, p_name, owner_id), sums in merged.items():
        if start is None:
            start = since
        elif hasattr(start, "date") and callable(start.date):
            start = start.date()
        # A period cut by `since` starts there and still ends where the period ends.
        first = max(start, since)
        if first not in ends:
            ends[first] = until if period == "total" else _period_end(start, period, until)
        item: dict[str, Any] = {
            "period_start": first,
            "period_end": ends[first],
            "project": p_name or "(no project)",
            "project_id": project_ids[p_id],
            **whom[owner_id],
        }
        for name in (*TOKEN_FIELDS, "total_tokens"):
            item[name] = int(sums[name] or 0)
        item["cost_usd"] = Decimal(sums["cost_usd"] or 0).quantize(CENT)
        rows.append(item)
    rows.sort(key=lambda r: (r["period_start"], -r["cost_usd"], r["project"].lower(), r["member"]))
    return rows


def _grouped_facts(facts, period: str, per_member: bool) -> list[dict[str, Any]]:
    """The sums of `facts` per project id ("p"), period start ("start", none for "total") and,
    `per_member`, machine owner ("m"): the rows _merge_aliases takes."""
    # Group by ids, not by the joined name columns: PostgreSQL then hashes three integers per
    # fact instead of sorting wide text keys. Names come from two small lookups.
    groups: dict[str, Any] = {"p": F("project_id")}
    if period == "day":
        groups["start"] = F("day")
    elif period == "week":
        groups["start"] = TruncWeek("day")
    elif period == "month":
        groups["start"] = TruncMonth("day")
    if per_member:
        groups["m"] = F("machine__owner_id")
    return list(
        facts.order_by().values(**groups).annotate(**{name: Sum(name) for name in _CHARGEBACK_SUMS})
    )


_ROLLUP_READ = {"day": "key_day", "week": "key_day", "month": "key_month", "total": "key"}


def _grouped_rollups(
    whose: rollups.Slice, canonical, since: date, until: date, period: str, per_member: bool
) -> list[dict[str, Any]]:
    """_grouped_facts' rows from the member-by-project rollups (usage.rollups.MEMBER_PROJECT)
    of the team or member `whose` names, narrowed to `canonical`'s project group when given:
    a month of a 1,000-member team is some 5,000 rows instead of 300,000 facts. Rows of one
    key that fall in one period (the days of a week) stay apart; _merge_aliases adds them."""
    part = rollups.Slice(
        rollups.MEMBER_PROJECT,
        team_id=whose.team_id,
        key_ids=whose.key_ids,
        key_texts=()
        if canonical is None
        else tuple(
            str(pk) for pk in (canonical.pk, *canonical.aliases.values_list("pk", flat=True))
        ),
    )
    rows = []
    for row in rollups.sums(part, since, until, by=_ROLLUP_READ[period]):
        item = {name: row[name] for name in _CHARGEBACK_SUMS}
        item["p"] = int(row["key_text"])
        if per_member:
            item["m"] = row["key_id"]
        if period == "week":
            item["start"] = row["day"] - timedelta(days=row["day"].weekday())
        elif period != "total":
            item["start"] = row["day"]
        rows.append(item)
    return rows


def _canonical_projects(ids: set[int]) -> dict[int, tuple[Any, str]]:
    """{project pk: (public id, display name)} of the project each id is charged to: its
    group's canonical project when it is an alias, itself otherwise."""
    found = (
        Project.objects.filter(pk__in=ids)
        .annotate(
            c_id=Coalesce("alias_of__public_id", "public_id"),
            c_name=Coalesce("alias_of__display_name", "display_name"),
        )
        .values_list("pk", "c_id", "c_name")
    )
    return {pk: (c_id, c_name) for pk, c_id, c_name in found}


def _members(ids: set[int]) -> dict[int, tuple[Any, str, str, int | None]]:
    """{user pk: (public id, name, email, team pk or None)}: what a chargeback row names."""
    found = User.objects.filter(pk__in=ids).values_list(
        "pk", "public_id", "name", "email", "membership__team_id"
    )
    return {pk: (public_id, name, email, team) for pk, public_id, name, email, team in found}


def _merge_aliases(
    grouped: Iterable[dict[str, Any]], projects: dict[int, tuple[Any, str]]
) -> dict[tuple, dict[str, Any]]:
    """Sums per (period start, canonical project id and name, owner pk or None), adding up the
    rows of a grouped project's aliases. Integers and Decimals add exactly (the context's
    precision is raised so no sum of stored amounts could round), so the totals are those
    SQL would give grouping by the canonical project; a NULL sum stays out as SUM leaves it."""
    merged: dict[tuple, dict[str, Any]] = {}
    with localcontext() as context:
        context.prec = 60
        for row in grouped:
            key = (row.get("start"), *projects[row["p"]], row.get("m"))
            sums = merged.get(key)
            if sums is None:
                merged[key] = {name: row[name] for name in _CHARGEBACK_SUMS}
                continue
            for name in _CHARGEBACK_SUMS:
                if row[name] is not None:
                    sums[name] = row[name] if sums[name] is None else sums[name] + row[name]
    return merged


def chargeback_csv_rows(rows: list[dict[str, Any]]) -> Iterator[list]:
    """The header, then each chargeback row, in CHARGEBACK_COLUMNS order (dates ISO, USD to
    the cent, former_member as yes/no), for SafeCsvWriter."""
    yield list(CHARGEBACK_COLUMNS)
    for row in rows:
        yield [
            _cell(row[c]) if c != "former_member" else ("yes" if row[c] else "no")
            for c in CHARGEBACK_COLUMNS
        ]


def session_csv_rows(sessions: Iterable[SessionUsage], zone) -> Iterator[list]:
    """The header, then one row per session: names, ISO times in `zone`, friendly model
    names, tokens and USD to the cent."""
    yield list(SESSION_COLUMNS)
    for s in sessions:
        owner = s.machine.owner
        yield [
            s.session_id,
            s.source,
            s.project.canonical.display_name,
            s.machine.name,
            owner.display_name,
            owner.email,
            (s.first_activity or s.last_activity).astimezone(zone).isoformat(timespec="seconds"),
            s.last_activity.astimezone(zone).isoformat(timespec="seconds"),
            "; ".join(model_name(m) for m in s.models_used or []),
            *(_cell(getattr(s, name)) for name in FIGURE_FIELDS),
        ]


def block_csv_rows(blocks: Iterable[Block], zone) -> Iterator[list]:
    """The header, then one row per 5-hour block: times in `zone`, the subscription and its
    owner, the contributing machines, friendly model names, tokens and USD to the cent."""
    yield list(BLOCK_COLUMNS)
    for b in blocks:
        owner = b.subscription.owner
        yield [
            b.start_time.astimezone(zone).isoformat(timespec="seconds"),
            b.end_time.astimezone(zone).isoformat(timespec="seconds"),
            b.subscription.label,
            owner.display_name,
            owner.email,
            "; ".join(c.machine.name for c in b.contributions.all()),
            "; ".join(model_name(m) for m in b.models_used or []),
            "yes" if b.limit_hit_at is not None else "no",
            "yes" if b.overlap else "no",
            *(_cell(getattr(b, name)) for name in FIGURE_FIELDS),
        ]


def shows_members(viewer, *, scope: str = "team", member=None) -> bool:
    """Whether chargeback rows name members: always for one's own data or one member's
    (usage.queries checks that member), for the whole team only for those who may see
    other members' figures (accounts.access)."""
    return sees_other_members(viewer) or scope != "team" or member not in (None, "")


def team_today(viewer) -> date:
    """Today in the viewer's team's calendar (UTC outside a team)."""
    return calendar_team(team_of(viewer)).today()


def team_zone(viewer):
    """The zone a viewer's team counts days in (UTC outside a team)."""
    return calendar_team(team_of(viewer)).zone


def _cell(value):
    # Cents are what the pages show; the stored ten places are noise in a spreadsheet.
    if isinstance(value, Decimal):
        return f"{value.quantize(CENT)}"
    if isinstance(value, date):
        return value.isoformat()
    return value
