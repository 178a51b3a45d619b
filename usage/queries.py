"""Read-side queries shared by the REST API and the pages: usage totals, machines, sessions.

Every function takes the viewer first and applies accounts.access: your own data in full,
your team's totals, other members' figures only for admins (or when the team allows it).
Objects outside the viewer's team raise Http404; visible-but-forbidden ones PermissionDenied;
malformed parameters QueryError naming the parameter.
"""

import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import F, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncMonth, TruncWeek
from django.http import Http404
from django.utils import timezone

from accounts.access import can_view_member, sees_other_members, team_of
from accounts.models import User, calendar_team
from usage import rollups
from usage.analytics.blocks import BLOCK_LENGTH, is_active
from usage.figures import COST_PLACES, TOKEN_FIELDS
from usage.models import (
    Block,
    BlockContribution,
    DailyUsage,
    Machine,
    Project,
    SessionUsage,
    Source,
)

GROUP_BY = ("day", "week", "month", "project", "model", "machine", "member", "source")
SCOPES = ("me", "team")
# Summed per row of an aggregate: the four counts and their total.
SUMMED_TOKENS = (*TOKEN_FIELDS, "total_tokens")
SESSION_ORDERS = {
    "last_activity": ("last_activity", "id"),
    "-last_activity": ("-last_activity", "-id"),
    "first_activity": ("first_activity", "id"),
    "-first_activity": ("-first_activity", "-id"),
    "cost_usd": ("cost_usd", "id"),
    "-cost_usd": ("-cost_usd", "-id"),
    "total_tokens": ("total_tokens", "id"),
    "-total_tokens": ("-total_tokens", "-id"),
}
MACHINE_ORDERS = {
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "last_seen_at": ("last_seen_at", "id"),
    "-last_seen_at": ("-last_seen_at", "-id"),
    "first_seen_at": ("first_seen_at", "id"),
    "-first_seen_at": ("-first_seen_at", "-id"),
}


class QueryError(ValueError):
    """A parameter the query cannot use; `param` names it for the 400 response."""

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


# --- parameters ------------------------------------------------------------------------------
def parse_day(value, param: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise QueryError(param, f"{value!r} is not a date (YYYY-MM-DD)") from None


def day_range(since, until) -> tuple[date | None, date | None]:
    since, until = parse_day(since, "since"), parse_day(until, "until")
    if since and until and since > until:
        raise QueryError("until", "must not be before since")
    return since, until


def _choice(value, choices, param: str, default: str) -> str:
    if value in (None, ""):
        return default
    if value not in choices:
        raise QueryError(param, f"must be one of {', '.join(choices)}")
    return value


def _as_uuid(value) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def resolve_machine(viewer, value) -> Machine:
    """A machine the viewer may see: 404 outside their team, 403 for a hidden colleague's."""
    machine: Machine | None
    if isinstance(value, Machine):
        machine = value
    else:
        machine_uuid = _as_uuid(value)
        if machine_uuid is None:
            raise QueryError("machine", f"{value!r} is not a machine UUID")
        machine = Machine.objects.select_related("owner").filter(uuid=machine_uuid).first()
    if machine is None:
        raise Http404("No such machine.")
    if machine.owner_id == viewer.pk:
        return machine
    team = team_of(viewer)
    if team is None or machine.team_id != team.pk:
        raise Http404("No such machine.")
    if not can_view_member(viewer, machine.owner):
        raise PermissionDenied("Only team admins see other members' machines.")
    return machine


def resolve_member(viewer, value) -> User:
    """A user by public id or email: 404 outside the viewer's team, 403 if hidden."""
    user: User | None
    if isinstance(value, User):
        user = value
    else:
        text = str(value).strip()
        if viewer.is_authenticated and (
            text == str(viewer.public_id) or text.lower() == viewer.email
        ):
            return viewer
        member_uuid = _as_uuid(text)
        lookup = Q(public_id=member_uuid) if member_uuid else Q(email__iexact=text)
        # No address holds a NUL, which PostgreSQL would refuse to even compare.
        user = None if "\x00" in text else User.objects.filter(lookup).first()
    team = team_of(viewer)
    if user is None or (user.pk != viewer.pk and (team is None or team_of(user) != team)):
        raise Http404("No such member in your team.")
    if not can_view_member(viewer, user):
        raise PermissionDenied("Only team admins see other members' figures.")
    return user


def resolve_project(viewer, value) -> Project:
    """A project of the viewer's team by public id or key, as its canonical project."""
    if isinstance(value, Project):
        project = value
    else:
        team = team_of(viewer)
        project = None
        if team is not None:
            projects = Project.objects.select_related("alias_of").filter(team=team)
            project_uuid = _as_uuid(value)
            if project_uuid is not None:
                project = projects.filter(public_id=project_uuid).first()
            if project is None and "\x00" not in str(value):
                project = projects.filter(key=str(value)).first()
    team = team_of(viewer)
    if project is None or team is None or project.team_id != team.pk:
        raise Http404("No such project in your team.")
    return project.canonical


def project_filter(project: Project, prefix: str = "") -> Q:
    """Facts of a project and of every key aliased to it."""
    return Q(**{f"{prefix}project": project}) | Q(**{f"{prefix}project__alias_of": project})


def machine_scope(
    viewer, *, scope="me", machine=None, member=None, individual=False, prefix="machine__"
) -> Q:
    """Which machines a query reads, as a filter through `prefix` (empty on Machine itself).

    A machine or member filter picks whose data; otherwise `scope` does: "me" is the viewer's
    machines, "team" every machine of their team. `individual` results (per member, per
    machine, session lists) of the whole team need the right to see other members.
    """
    return whose_scope(
        viewer, scope=scope, machine=machine, member=member, individual=individual, prefix=prefix
    )[0]


def whose_scope(
    viewer, *, scope="me", machine=None, member=None, individual=False, prefix="machine__"
) -> tuple[Q, rollups.Slice]:
    """machine_scope's filter, and the same machines as a rollup slice: MACHINE or MEMBER
    with its key (no team: all of that member's machines), or TEAM with the team. Raises as
    machine_scope does."""
    scope = _choice(scope, SCOPES, "scope", "me")
    if machine not in (None, ""):
        found = resolve_machine(viewer, machine)
        return Q(**{f"{prefix}pk": found.pk}), rollups.Slice(rollups.MACHINE, key_ids=(found.pk,))
    if member not in (None, ""):
        person = resolve_member(viewer, member)
        return Q(**{f"{prefix}owner": person}), rollups.Slice(rollups.MEMBER, key_ids=(person.pk,))
    team = team_of(viewer)
    if scope == "team" and team is not None:
        if individual and not sees_other_members(viewer):
            raise PermissionDenied("Only team admins see the team broken down by member.")
        return Q(**{f"{prefix}team": team}), rollups.Slice(rollups.TEAM, team_id=team.pk)
    return Q(**{f"{prefix}owner": viewer}), rollups.Slice(rollups.MEMBER, key_ids=(viewer.pk,))


# --- usage totals ----------------------------------------------------------------------------
def _groupings(group_by: str) -> dict[str, Any]:
    project_key = Coalesce("project__alias_of__public_id", "project__public_id")
    project_name = Coalesce("project__alias_of__display_name", "project__display_name")
    groupings: dict[str, dict[str, Any]] = {
        "day": {"k": F("day")},
        "week": {"k": TruncWeek("day")},
        "month": {"k": TruncMonth("day")},
        "project": {"k": project_key, "l": project_name},
        "model": {"k": F("model")},
        "machine": {"k": F("machine__uuid"), "l": F("machine__name")},
        "member": {
            "k": F("machine__owner__public_id"),
            "l": F("machine__owner__name"),
            "e": F("machine__owner__email"),
        },
        "source": {"k": F("source")},
    }
    return groupings[group_by]


def _key_and_label(group_by: str, row: dict) -> tuple[str, str]:
    key = row["k"]
    if group_by == "day":
        return key.isoformat(), key.isoformat()
    if group_by == "week":
        day = key.date() if isinstance(key, datetime) else key
        year, week, _ = day.isocalendar()
        return day.isoformat(), f"{year}-W{week:02d}"
    if group_by == "month":
        return f"{key:%Y-%m}", f"{key:%Y-%m}"
    if group_by in ("project", "machine"):
        return str(key), row["l"]
    if group_by == "member":
        return str(key), row["l"] or row["e"].split("@")[0]
    if group_by == "source":
        labels = dict(Source.choices)
        return key, labels.get(key, key)
    return key, key


def empty_totals() -> dict:
    return {**{name: 0 for name in SUMMED_TOKENS}, "cost_usd": Decimal("0").quantize(COST_PLACES)}


# Which rollup dimension totals each grouping reads.
_DIMENSION_OF = {
    "project": rollups.PROJECT,
    "model": rollups.MODEL,
    "machine": rollups.MACHINE,
    "member": rollups.MEMBER,
    "source": rollups.SOURCE,
}
PERIODIC = ("day", "week", "month")


def _rollup_slice(
    group_by: str, whose: rollups.Slice, narrowed: list[rollups.Slice]
) -> rollups.Slice | None:
    """The rollup rows that answer a query, or None when only the facts can.

    Rollups hold one dimension at a time, so a query reads them when it has at most one
    filter (the whole team, one member or machine, or one project, model or source of the
    team) and groups by period or by that same dimension; anything else (a member's usage
    by project, say) reads that member's facts, a small set.
    """
    periodic = group_by in PERIODIC
    if whose.dimension == rollups.TEAM:
        if not narrowed:
            if periodic:
                return whose
            return rollups.Slice(_DIMENSION_OF[group_by], team_id=whose.team_id)
        if len(narrowed) == 1 and (periodic or _DIMENSION_OF[group_by] == narrowed[0].dimension):
            return replace(narrowed[0], team_id=whose.team_id)
        if _by_source(narrowed) and group_by in ("member", "machine"):
            # Member and machine rows are per source agent too.
            return rollups.Slice(
                _DIMENSION_OF[group_by], team_id=whose.team_id, key_texts=narrowed[0].key_texts
            )
        return None
    if periodic or _DIMENSION_OF[group_by] == whose.dimension:
        if not narrowed:
            return whose
        if _by_source(narrowed):
            return replace(whose, key_texts=narrowed[0].key_texts)
    return None


def _by_source(narrowed: list[rollups.Slice]) -> bool:
    return len(narrowed) == 1 and narrowed[0].dimension == rollups.SOURCE


def _rollup_rows(group_by: str, part: rollups.Slice, since, until) -> list[dict]:
    """aggregate_usage's grouped rows ({"k", "l", "e", sums}) from the rollups: summed by
    id or name first, then named with one query per kind of key."""
    if group_by in PERIODIC:
        by_period: dict[date, dict] = {}
        rows = rollups.sums(part, since, until, by="month" if group_by == "month" else "day")
        for row in rows:
            day = row["day"]
            key = day - timedelta(days=day.weekday()) if group_by == "week" else day
            _add(by_period.setdefault(key, {"k": key}), row)
        return list(by_period.values())
    if group_by in ("model", "source"):
        rows = rollups.sums(part, since, until, by="key")
        return [{"k": row["key_text"], **_figures(row)} for row in rows]
    # Summed per id in SQL: a member's or machine's rows are per source agent too.
    rows = rollups.sums(part, since, until, by="id")
    ids = [row["key_id"] for row in rows]
    named: dict[int, dict] = {}
    if group_by == "machine":
        # A team's machines by team (thousands of ids make a long IN list to plan).
        machines = (
            Machine.objects.filter(team_id=part.team_id)
            if part.team_id is not None
            else Machine.objects.filter(pk__in=ids)
        )
        for pk, machine_uuid, name in machines.values_list("pk", "uuid", "name"):
            named[pk] = {"k": machine_uuid, "l": name}
    elif group_by == "member":
        people = (
            User.objects.filter(pk__in=Machine.objects.filter(team_id=part.team_id).values("owner"))
            if part.team_id is not None
            else User.objects.filter(pk__in=ids)
        )
        for pk, public_id, name, email in people.values_list("pk", "public_id", "name", "email"):
            named[pk] = {"k": public_id, "l": name, "e": email}
    else:
        projects = Project.objects.filter(pk__in=ids).values_list(
            "pk", "public_id", "display_name", "alias_of__public_id", "alias_of__display_name"
        )
        for pk, public_id, name, alias_id, alias_name in projects:
            named[pk] = {"k": alias_id or public_id, "l": alias_name or name}
    merged: dict = {}
    for row in rows:
        # A key deleted while its facts were being removed: its rows net to nothing soon.
        label = named.get(row["key_id"], {"k": str(row["key_id"]), "l": "(removed)", "e": ""})
        _add(merged.setdefault(label["k"], dict(label)), row)
    return list(merged.values())


def _figures(row: dict) -> dict:
    return {name: row[name] for name in (*SUMMED_TOKENS, "cost_usd")}


def _add(target: dict, row: dict) -> None:
    for name in (*SUMMED_TOKENS, "cost_usd"):
        target[name] = target.get(name, 0) + row[name]


def top_team_machines(viewer, *, since=None, until=None, limit: int) -> dict:
    """The team's machines that cost the most over [since, until] (team days, inclusive):
    aggregate_usage(group_by="machine", scope="team")'s answer cut to its first `limit`
    rows (same order, same figures), with "totals" over every machine and "others":
    {"count", <token fields>, "cost_usd"} summing the rows left out. Only the rows returned
    are named: a 1,000-member team has thousands of machines. Raises PermissionDenied as
    aggregate_usage does; without a team it is aggregate_usage's own-machine answer cut."""
    since, until = day_range(since, until)
    _, whose = whose_scope(viewer, scope="team", individual=True)
    if whose.dimension != rollups.TEAM:
        full = aggregate_usage(viewer, group_by="machine", since=since, until=until)
        return _cut(full, limit)
    part = rollups.Slice(rollups.MACHINE, team_id=whose.team_id)
    by_machine: dict[int, dict] = {}
    for row in rollups.sums(part, since, until, by="id"):
        _add(by_machine.setdefault(row["key_id"], {}), row)
    totals = empty_totals()
    for figures in by_machine.values():
        figures["cost_usd"] = Decimal(figures["cost_usd"]).quantize(COST_PLACES)
        for name in (*SUMMED_TOKENS, "cost_usd"):
            totals[name] += figures[name]
    # The `limit` largest, and any tied with the last of them, are named and then ordered
    # by aggregate_usage's rule (cost, tokens, then key), so ties fall the same way.
    ranked = sorted(by_machine.items(), key=lambda kv: (-kv[1]["cost_usd"], -kv[1]["total_tokens"]))
    if len(ranked) > limit:
        edge = ranked[limit - 1][1] if limit else None
        ranked = [
            kv
            for kv in ranked
            if edge is not None
            and (kv[1]["cost_usd"], kv[1]["total_tokens"])
            >= (edge["cost_usd"], edge["total_tokens"])
        ]
    names = {
        pk: (str(machine_uuid), name)
        for pk, machine_uuid, name in Machine.objects.filter(
            pk__in=[pk for pk, _ in ranked]
        ).values_list("pk", "uuid", "name")
    }
    results = []
    for pk, figures in ranked:
        key, label = names.get(pk, (str(pk), "(removed)"))
        item: dict[str, Any] = {"key": key, "label": label}
        item.update({name: int(figures[name]) for name in SUMMED_TOKENS})
        item["cost_usd"] = figures["cost_usd"]
        results.append(item)
    results.sort(key=lambda item: (-item["cost_usd"], -item["total_tokens"], item["key"]))
    return _cut({"results": results, "totals": totals}, limit, count=len(by_machine))


def _cut(answer: dict, limit: int, count: int | None = None) -> dict:
    """An aggregate answer's first `limit` rows, with "others" summing every row left out
    (`count` rows in all when the answer holds only some of them)."""
    shown = answer["results"][:limit]
    others: dict[str, Any] = {
        "count": (len(answer["results"]) if count is None else count) - len(shown)
    }
    for name in (*SUMMED_TOKENS, "cost_usd"):
        others[name] = answer["totals"][name] - sum((r[name] for r in shown), 0)
    return {"results": shown, "totals": answer["totals"], "others": others}


def team_member_usage(viewer, member_ids: Iterable[int], since=None, until=None) -> dict:
    """Token and cost sums of some of the viewer's team members over [since, until] (team
    days, inclusive), keyed by user id: {user_id: {<token fields>, "cost_usd"}}; members
    without usage are left out. The same figures as aggregate_usage(group_by="member",
    scope="team") for those members, read from the member rollups of those ids only (a page
    of a big team's table). Raises PermissionDenied unless the viewer may see other members
    or asks only about themselves."""
    ids = tuple(sorted({int(pk) for pk in member_ids}))
    if not ids:
        return {}
    if ids != (viewer.pk,) and not sees_other_members(viewer):
        raise PermissionDenied("Only team admins see usage broken down by member.")
    team = team_of(viewer)
    if team is None:
        return {}
    since, until = day_range(since, until)
    part = rollups.Slice(rollups.MEMBER, team_id=team.pk, key_ids=ids)
    out: dict[int, dict] = {}
    for row in rollups.sums(part, since, until, by="id"):
        _add(out.setdefault(row["key_id"], {}), row)
    for figures in out.values():
        figures["cost_usd"] = Decimal(figures["cost_usd"]).quantize(COST_PLACES)
    return out


def aggregate_usage(
    viewer,
    *,
    group_by: str,
    since=None,
    until=None,
    scope: str = "me",
    machine=None,
    project=None,
    model=None,
    member=None,
    source=None,
) -> dict:
    """Token and cost sums of daily facts, grouped one way, in one GROUP BY query.

    Returns {"results": [{"key", "label", <token fields>, "cost_usd"}], "totals": {…}}.
    Days are the team's reporting days (what the agents passed to ccusage); weeks start on
    Monday (ISO). Aliased projects count as their canonical project everywhere. Grouped by
    day, week or month, every period of the range has a row, zeros for one without usage
    (`fill_periods`).
    """
    group_by = _choice(group_by, GROUP_BY, "group_by", "day")
    since, until = day_range(since, until)
    if group_by == "member" and not sees_other_members(viewer) and member in (None, ""):
        raise PermissionDenied("Only team admins see usage broken down by member.")
    whose_q, whose = whose_scope(
        viewer,
        scope=scope,
        machine=machine,
        member=member,
        individual=group_by in ("machine", "member"),
    )
    facts = DailyUsage.objects.filter(whose_q)
    narrowed: list[rollups.Slice] = []
    if since:
        facts = facts.filter(day__gte=since)
    if until:
        facts = facts.filter(day__lte=until)
    if project not in (None, ""):
        canonical = resolve_project(viewer, project)
        facts = facts.filter(project_filter(canonical))
        narrowed.append(
            rollups.Slice(
                rollups.PROJECT,
                team_id=canonical.team_id,
                key_ids=(canonical.pk, *canonical.aliases.values_list("pk", flat=True)),
            )
        )
    if model not in (None, ""):
        facts = facts.filter(model=str(model))
        narrowed.append(rollups.Slice(rollups.MODEL, key_texts=(str(model),)))
    if source not in (None, ""):
        facts = facts.filter(source=str(source))
        narrowed.append(rollups.Slice(rollups.SOURCE, key_texts=(str(source),)))

    part = _rollup_slice(group_by, whose, narrowed)
    rows: Iterable[dict]
    if part is not None:
        rows = _rollup_rows(group_by, part, since, until)
    else:
        rows = (
            facts.order_by()
            .values(**_groupings(group_by))
            .annotate(
                **{name: Sum(name) for name in SUMMED_TOKENS},
                cost_usd=Sum("cost_usd"),
            )
        )
    results = []
    totals = empty_totals()
    for row in rows:
        key, label = _key_and_label(group_by, row)
        item: dict[str, Any] = {"key": key, "label": label}
        for name in SUMMED_TOKENS:
            item[name] = int(row[name] or 0)
            totals[name] += item[name]
        item["cost_usd"] = Decimal(row["cost_usd"] or 0).quantize(COST_PLACES)
        totals["cost_usd"] += item["cost_usd"]
        results.append(item)
    if group_by in ("day", "week", "month"):
        results = fill_periods(results, group_by, since, until)
    else:
        results.sort(key=lambda item: (-item["cost_usd"], -item["total_tokens"], item["key"]))
    return {"results": results, "totals": totals}


def _period_start(group_by: str, day: date) -> date:
    """The first day of the day, ISO week (from Monday) or month that holds `day`."""
    if group_by == "week":
        return day - timedelta(days=day.weekday())
    if group_by == "month":
        return day.replace(day=1)
    return day


def _next_period(group_by: str, start: date) -> date:
    if group_by == "week":
        return start + timedelta(days=7)
    if group_by == "month":
        return (start + timedelta(days=31)).replace(day=1)
    return start + timedelta(days=1)


def fill_periods(results: list[dict], group_by: str, since, until) -> list[dict]:
    """aggregate_usage's rows by day, week or month with a zero row for every period without
    usage between `since` and `until` (team days, inclusive), sorted by key.

    An open end stops at the first (no `since`) or last (no `until`) period with usage, so
    "any time" starts at the first day with data, never at 1970; with an open end and no
    rows there is nothing to fill. Keys and labels are `_key_and_label`'s.
    """
    by_key = {row["key"]: row for row in results}
    days = [date.fromisoformat(k if group_by != "month" else f"{k}-01") for k in by_key]
    first = since or (min(days) if days else None)
    last = until or (max(days) if days else None)
    if first is None or last is None:
        return sorted(results, key=lambda item: item["key"])
    filled = []
    start = _period_start(group_by, first)
    while start <= last:
        key, label = _key_and_label(group_by, {"k": start})
        row = by_key.pop(key, None)
        filled.append(row if row is not None else {"key": key, "label": label, **empty_totals()})
        start = _next_period(group_by, start)
    # Rows outside the range cannot come from the query; keep any rather than drop figures.
    return sorted([*filled, *by_key.values()], key=lambda item: item["key"])


def models_seen(viewer, since: date) -> list[str]:
    """Model names in the facts of the machines `viewer` may see, from `since` (a team day)
    on, sorted: the team's from its rollup rows, one member's from their facts."""
    if viewer.sees_others and viewer.team is not None:
        part = rollups.Slice(rollups.MODEL, team_id=viewer.team.pk)
        return sorted({row["key_text"] for row in rollups.sums(part, since, None, by="key")})
    facts = DailyUsage.objects.filter(machine__owner=viewer.user, day__gte=since)
    return list(facts.order_by("model").values_list("model", flat=True).distinct())


# --- machines, sessions, projects ------------------------------------------------------------
def machines_for(viewer, *, scope="me", member=None, order=None) -> QuerySet[Machine]:
    order = _choice(order, tuple(MACHINE_ORDERS), "order", "name")
    machines = Machine.objects.select_related("owner", "subscription").filter(
        machine_scope(viewer, scope=scope, member=member, individual=True, prefix="")
    )
    return machines.order_by(*MACHINE_ORDERS[order])


def sessions_for(
    viewer,
    *,
    scope="me",
    machine=None,
    member=None,
    project=None,
    source=None,
    since=None,
    until=None,
    order=None,
) -> QuerySet[SessionUsage]:
    """Sessions by last activity; `since`/`until` are the team's reporting days, inclusive."""
    order = _choice(order, tuple(SESSION_ORDERS), "order", "-last_activity")
    since, until = day_range(since, until)
    sessions = SessionUsage.objects.select_related(
        "machine", "machine__owner", "project", "project__alias_of"
    ).filter(machine_scope(viewer, scope=scope, machine=machine, member=member, individual=True))
    start, end = calendar_team(team_of(viewer)).day_bounds(since, until)
    if start:
        sessions = sessions.filter(last_activity__gte=start)
    if end:
        sessions = sessions.filter(last_activity__lt=end)
    if project not in (None, ""):
        sessions = sessions.filter(project_filter(resolve_project(viewer, project)))
    if source not in (None, ""):
        sessions = sessions.filter(source=str(source))
    return sessions.order_by(*SESSION_ORDERS[order])


def projects_for(viewer) -> QuerySet[Project]:
    """Every project of the viewer's team: project names are team-level, like totals."""
    team = team_of(viewer)
    if team is None:
        return Project.objects.none()
    return (
        Project.objects.select_related("alias_of").filter(team=team).order_by("display_name", "key")
    )


# --- blocks ----------------------------------------------------------------------------------
def block_queryset(subscriptions):
    """Blocks with their subscription and per-machine contributions, in three queries.

    `subscriptions` are Subscription objects, their ids, or a queryset of them; a whole big
    team's are best a queryset (a subquery, not a thousand ids to send and plan)."""
    contributions = BlockContribution.objects.select_related("machine__owner").order_by(
        "-total_tokens", "machine__name"
    )
    return (
        Block.objects.filter(subscription__in=subscriptions)
        .select_related("subscription__owner")
        .prefetch_related(Prefetch("contributions", queryset=contributions))
    )


def _running(subscriptions, now: datetime):
    # is_active in SQL (both bounds strict); a block lasts BLOCK_LENGTH from its start, so
    # the start bound reads the start index. The stored mark can lag the beat refresh.
    return block_queryset(subscriptions).filter(
        start_time__gt=now - BLOCK_LENGTH, end_time__gt=now, last_activity__gt=now - BLOCK_LENGTH
    )


def active_blocks(subscriptions, now: datetime | None = None) -> list[Block]:
    """Blocks running now; the stored mark can lag the beat refresh, so time decides."""
    now = now or timezone.now()
    candidates = _running(subscriptions, now)
    return [b for b in candidates.order_by("subscription__label") if is_active(b, now)]


def top_active_blocks(
    subscriptions, now: datetime | None = None, *, limit: int
) -> tuple[list[Block], int]:
    """The `limit` running blocks that cost the most so far (USD, then label), and how many
    blocks run now in all: for a big team's overview, which shows a few. Two queries plus
    the contributions of the blocks returned. `subscriptions` may be a queryset."""
    now = now or timezone.now()
    candidates = _running(subscriptions, now)
    shown = [
        b
        for b in candidates.order_by("-cost_usd", "subscription__label", "pk")[:limit]
        if is_active(b, now)
    ]
    return shown, candidates.order_by().count()
