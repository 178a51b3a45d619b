"""Rollups: DailyUsage summed per team, day or month, and one dimension (the team, a member, a
machine, a project, a model, a source agent, or a member's project for the chargeback), so
team-wide and all-time figures read a few hundred rows instead of millions of facts.

Database triggers on DailyUsage keep them in the transaction that writes the facts
(migrations 0015 and 0018), whatever writes them: ingest, the OTLP path, a timezone regrouping
that deletes rows, a deleted machine. On PostgreSQL a statement-level trigger appends each
statement's changes, grouped, to UsageRollupDelta (append-only, so concurrent ingests of one
team never wait on each other's rollup rows); `fold_deltas()` (a beat task every minute) moves
them into UsageRollup under an advisory lock. On SQLite (one writer at a time) row-level
triggers update UsageRollup directly. Readers add rollup and delta rows in one statement, so a
figure is exact at any moment, folded or not. `rebuild()` recomputes a team's rollups from its
facts.

Project rows are per fact project (an alias is not resolved), so grouping projects needs no
rewrite: readers map ids to canonical projects after summing.
"""

# SQL here is built from this module's constants; values always go in as parameters.
# ruff: noqa: S608

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection, transaction

from usage.figures import TOKEN_FIELDS
from usage.models import RollupDimension, RollupPeriod

SUMS = (*TOKEN_FIELDS, "total_tokens", "cost_usd")
TEAM = RollupDimension.TEAM
MEMBER = RollupDimension.MEMBER
MACHINE = RollupDimension.MACHINE
PROJECT = RollupDimension.PROJECT
MODEL = RollupDimension.MODEL
SOURCE = RollupDimension.SOURCE
MEMBER_PROJECT = RollupDimension.MEMBER_PROJECT
# Any number that stays clear of other features' advisory locks: fold_deltas runs one at a time.
FOLD_LOCK = 0x5E_70_11_0F
# The day of the `all` period's rows.
ALL_TIME_DAY = date(1, 1, 1)
_COLUMNS = "team_id, period, day, dimension, key_id, key_text, " + ", ".join(SUMS) + ", facts"
_SUMS_SQL = ", ".join(f"SUM({name})" for name in (*SUMS, "facts"))
# The same sums as readers fetch them: PostgreSQL sums bigints as numeric, which the driver
# turns into Decimals one by one; counts come back as integers instead (a team's all-time
# tokens are far below 2**63).
_READ_SUMS_SQL = ", ".join(
    f"SUM({name})" if name == "cost_usd" else f"CAST(SUM({name}) AS BIGINT)"
    for name in (*SUMS, "facts")
)


@dataclass(frozen=True)
class Slice:
    """Which rollup rows a figure reads: one dimension, optionally one team and some keys.

    `key_ids` are user, machine or project ids (MEMBER, MACHINE, PROJECT, and MEMBER_PROJECT's
    user); `key_texts` model or source names (MODEL, SOURCE, and MEMBER and MACHINE, whose rows
    are per source agent too) or MEMBER_PROJECT's project ids in decimal; empty means every key
    of the dimension in the team.
    """

    dimension: str
    team_id: int | None = None
    key_ids: tuple[int, ...] = ()
    key_texts: tuple[str, ...] = ()


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_last(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


@dataclass(frozen=True)
class Part:
    """Rows of one period in [first, last] (None: open), added (sign 1) or taken away (-1)."""

    period: str
    first: date | None
    last: date | None
    sign: int = 1


def _month_cut(first: date, last: date) -> list[Part]:
    """Days [first, last] of one month: the day rows, or the month row less the days outside
    the range when those are fewer (month-to-date on the 29th reads one month row and the
    one or two day rows after today, instead of 29 day rows)."""
    start, end = month_start(first), month_last(first)
    inside = (last - first).days + 1
    outside = (end - start).days + 1 - inside
    if inside <= outside:
        return [Part(RollupPeriod.DAY, first, last)]
    parts = [Part(RollupPeriod.MONTH, start, start)]
    if first > start:
        parts.append(Part(RollupPeriod.DAY, start, first - timedelta(days=1), -1))
    if last < end:
        parts.append(Part(RollupPeriod.DAY, last + timedelta(days=1), end, -1))
    return parts


def plan(
    since: date | None, until: date | None, *, days: bool, all_time: bool = True
) -> list[Part]:
    """Which rollup rows add up to [since, until] (team days, inclusive; None is open).

    Whole months read their month row, a month cut by the range its day rows or its month row
    less the other days (_month_cut). `days=True` reads day rows only (figures per day); an
    open range reads the all-time rows unless `all_time=False` (figures per month).
    """
    if days:
        return [Part(RollupPeriod.DAY, since, until)]
    if since is None and until is None and all_time:
        return [Part(RollupPeriod.ALL, None, None)]
    if since is not None and until is not None and month_start(since) == month_start(until):
        return _month_cut(since, until)
    parts = []
    first_full = since
    if since is not None and since.day != 1:
        parts.extend(_month_cut(since, month_last(since)))
        first_full = month_last(since) + timedelta(days=1)
    last_full = until
    if until is not None and until != month_last(until):
        parts.extend(_month_cut(month_start(until), until))
        last_full = month_start(until) - timedelta(days=1)
    if first_full is None or last_full is None or first_full <= last_full:
        parts.append(Part(RollupPeriod.MONTH, first_full, last_full))
    return parts


def _range_sql(first: date | None, last: date | None, params: list) -> str:
    parts = []
    if first is not None:
        parts.append("day >= %s")
        params.append(first)
    if last is not None:
        parts.append("day <= %s")
        params.append(last)
    return " AND ".join(parts) or "1 = 1"


def _where(part: Slice, periods: list[Part]) -> tuple[str, list, str, list]:
    """(WHERE clause, its parameters, the sign expression, its parameters)."""
    params: list = [part.dimension]
    conditions = ["dimension = %s"]
    if part.team_id is not None:
        conditions.append("team_id = %s")
        params.append(part.team_id)
    if part.key_ids:
        conditions.append(f"key_id IN ({', '.join(['%s'] * len(part.key_ids))})")
        params.extend(part.key_ids)
    if part.key_texts:
        conditions.append(f"key_text IN ({', '.join(['%s'] * len(part.key_texts))})")
        params.extend(part.key_texts)
    ranges = []
    negative = []
    sign_params: list = []
    for piece in periods:
        params.append(piece.period)
        ranges.append(f"(period = %s AND {_range_sql(piece.first, piece.last, params)})")
        if piece.sign < 0:
            sign_params.append(piece.period)
            negative.append(f"(period = %s AND {_range_sql(piece.first, piece.last, sign_params)})")
    conditions.append("(" + " OR ".join(ranges) + ")")
    sign = f"CASE WHEN {' OR '.join(negative)} THEN -1 ELSE 1 END" if negative else "1"
    return " AND ".join(conditions), params, sign, sign_params


# The scale of the cost columns: SQLite's float sums are rounded to it.
_COST_SCALE = Decimal("1e-10")


def _decimal(value) -> Decimal:
    """A summed cost as a Decimal. SQLite adds costs as doubles, and a month row less a day
    row can land a hair off an exact half cent; rounded to the columns' 10 places, as Django
    rounds a Sum of the facts themselves, both give the same cents."""
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)).quantize(_COST_SCALE)


def sums(part: Slice, since: date | None, until: date | None, *, by: str) -> list[dict]:
    """Token and cost sums of the facts `part` names in [since, until] (team days, inclusive;
    None is open): per key (`by="key"`: rows with "key_id" and "key_text"), per key id
    (`by="id"`: rows with "key_id", a member's or machine's sources added up), per day
    (`by="day"`: rows with "day"), per month (`by="month"`: "day" is the month's first day),
    or per key and day or month (`by="key_day"`, `by="key_month"`). Each row has the summed
    fields and "facts" (fact rows summed); groups whose facts are all gone are left out. One
    query, over rollup and pending delta rows."""
    keyed = by in ("key", "key_day", "key_month")
    periods = plan(since, until, days=by in ("day", "key_day"), all_time=by in ("key", "id"))
    where, params, sign, sign_params = _where(part, periods)
    columns = ["key_id", "key_text"] if keyed else ["key_id"] if by == "id" else []
    select = list(columns)
    if by not in ("key", "id"):
        monthly = by in ("month", "key_month")
        select.append(f"{_month_sql('day') if monthly else 'day'} AS day")
        columns.append("day")
    signed = ", ".join(f"t.sign * t.{name} AS {name}" for name in (*SUMS, "facts"))
    inner = (
        f"SELECT {', '.join(select)}, {signed} FROM (SELECT *, {sign} AS sign FROM {{table}} "
        f"WHERE {where}) AS t"
    )
    group = ", ".join(columns)
    sql = (
        f"SELECT {group}, {_READ_SUMS_SQL} FROM ("
        f"{inner.format(table='usage_usagerollup')} UNION ALL "
        f"{inner.format(table='usage_usagerollupdelta')}"
        f") AS r GROUP BY {group}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (sign_params + params) * 2)
        rows = cursor.fetchall()
    # Sums of NOT NULL columns over at least one row are never NULL; PostgreSQL's come back
    # as integers and Decimals already (a large team's month is thousands of rows).
    names = (*columns, *SUMS, "facts")
    exact = connection.vendor == "postgresql"
    out = []
    for row in rows:
        if not row[-1]:
            continue
        item: dict = dict(zip(names, row, strict=True))
        if not exact:
            for name in (*SUMS, "facts"):
                item[name] = _decimal(item[name]) if name == "cost_usd" else int(item[name])
            if "day" in item:
                item["day"] = _as_date(item["day"])
        out.append(item)
    return out


def cost_by_key_sql(part: Slice, since: date | None, until: date | None) -> tuple[str, list]:
    """A subquery's SQL and parameters, for a query of one's own to join: one row per key of
    the facts `part` names in [since, until] (team days, inclusive; None is open) with
    columns key_id, key_text and cost_usd (USD); the same rows and costs as
    sums(by="key"), without the token sums the caller does not need."""
    where, params, sign, sign_params = _where(part, plan(since, until, days=False))
    inner = (
        "SELECT key_id, key_text, t.sign * t.cost_usd AS cost_usd, t.sign * t.facts AS facts "
        f"FROM (SELECT *, {sign} AS sign FROM {{table}} WHERE {where}) AS t"
    )
    sql = (
        f"SELECT key_id, key_text, SUM(cost_usd) AS cost_usd FROM ("
        f"{inner.format(table='usage_usagerollup')} UNION ALL "
        f"{inner.format(table='usage_usagerollupdelta')}"
        ") AS r GROUP BY key_id, key_text HAVING SUM(facts) <> 0"
    )
    return sql, (sign_params + params) * 2


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def daily_costs(part: Slice, first: date, today: date) -> dict[date, Decimal]:
    """Cost per team day of `part` from `first` to `today` (days without usage left out)."""
    return {row["day"]: row["cost_usd"] for row in sums(part, first, today, by="day")}


def has_cost_before(part: Slice, day: date) -> bool:
    """Whether `part` has any cost before `day` (costs are never negative, so a positive sum
    means a day with usage): answers from month rows, without scanning facts."""
    rows = sums(part, None, day - timedelta(days=1), by="key")
    return any(row["cost_usd"] > 0 for row in rows)


# --- keeping them --------------------------------------------------------------------------------
def fold_deltas() -> int:
    """Move PostgreSQL's pending rollup changes into UsageRollup; returns the delta rows moved
    (0 on SQLite, whose triggers write UsageRollup directly, or when another fold runs)."""
    if connection.vendor != "postgresql":
        return 0
    assign = ", ".join(f"{name} = r.{name} + excluded.{name}" for name in (*SUMS, "facts"))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [FOLD_LOCK])
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute(
            f"WITH moved AS (DELETE FROM usage_usagerollupdelta RETURNING {_COLUMNS}) "
            f"INSERT INTO usage_usagerollup AS r ({_COLUMNS}) "
            f"SELECT team_id, period, day, dimension, key_id, key_text, {_SUMS_SQL} FROM moved "
            "GROUP BY team_id, period, day, dimension, key_id, key_text "
            # One order for every fold: two folds never lock rows in opposite orders.
            "ORDER BY team_id, dimension, period, day, key_id, key_text "
            "ON CONFLICT (team_id, dimension, period, day, key_id, key_text) "
            f"DO UPDATE SET {assign}"
        )
        moved = cursor.rowcount
        cursor.execute("DELETE FROM usage_usagerollup WHERE facts = 0")
    return moved


def _month_sql(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(date_trunc('month', {column}) AS date)"
    return f"substr({column}, 1, 8) || '01'"


def _group_keys(*columns: str) -> str:
    """The GROUP BY tail of a rebuild's columns (PostgreSQL refuses constants there)."""
    return "".join(f", {c}" for c in columns if "." in c)


def rebuild(team_ids: Iterable[int] | None = None) -> None:
    """Recompute the rollups of some teams (all when None) from their facts, set-based: day
    rows from the facts, month rows from the day rows, all-time rows from the month rows.
    Safe to run at any time; concurrent ingests of those teams wait for it (it locks their
    machines)."""
    teams = None if team_ids is None else list(team_ids)
    team_filter = "" if teams is None else f"team_id IN ({', '.join(['%s'] * len(teams))})"
    params = [] if teams is None else teams
    sum_columns = ", ".join(f"SUM(f.{name})" for name in SUMS)
    keys = {
        MACHINE: ("f.machine_id", "f.source"),
        MEMBER: ("m.owner_id", "f.source"),
        TEAM: ("0", "''"),
        PROJECT: ("f.project_id", "''"),
        MODEL: ("0", "f.model"),
        SOURCE: ("0", "f.source"),
        MEMBER_PROJECT: ("m.owner_id", "CAST(f.project_id AS TEXT)"),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A fold moving this team's pending changes meanwhile would add them to the rows
            # rebuilt from the facts that already hold them: folds wait (they skip a turn).
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
            # Facts written while this runs would miss the rows deleted below.
            cursor.execute(
                "SELECT id FROM usage_machine"
                + (f" WHERE {team_filter}" if teams is not None else "")
                + " FOR UPDATE",
                params,
            )
        for table in ("usage_usagerollup", "usage_usagerollupdelta"):
            cursor.execute(
                f"DELETE FROM {table}" + (f" WHERE {team_filter}" if teams is not None else ""),
                params,
            )
        machine_filter = "" if teams is None else f"WHERE m.{team_filter}"
        for dimension, (key_id, key_text) in keys.items():
            cursor.execute(
                f"INSERT INTO usage_usagerollup ({_COLUMNS}) "
                f"SELECT m.team_id, %s, f.day, %s, {key_id}, {key_text}, {sum_columns}, COUNT(*) "
                "FROM usage_dailyusage f JOIN usage_machine m ON m.id = f.machine_id "
                f"{machine_filter} GROUP BY m.team_id, f.day{_group_keys(key_id, key_text)}",
                [RollupPeriod.DAY, dimension, *params],
            )
        month = _month_sql("day")
        day_filter = "" if teams is None else f"AND {team_filter}"
        cursor.execute(
            f"INSERT INTO usage_usagerollup ({_COLUMNS}) "
            f"SELECT team_id, %s, {month}, dimension, key_id, key_text, "
            + ", ".join(f"SUM({name})" for name in (*SUMS, "facts"))
            + f" FROM usage_usagerollup WHERE period = %s {day_filter} "
            f"GROUP BY team_id, {month}, dimension, key_id, key_text",
            [RollupPeriod.MONTH, RollupPeriod.DAY, *params],
        )
        cursor.execute(
            f"INSERT INTO usage_usagerollup ({_COLUMNS}) "
            "SELECT team_id, %s, %s, dimension, key_id, key_text, "
            + ", ".join(f"SUM({name})" for name in (*SUMS, "facts"))
            + f" FROM usage_usagerollup WHERE period = %s {day_filter} "
            "GROUP BY team_id, dimension, key_id, key_text",
            [RollupPeriod.ALL, ALL_TIME_DAY, RollupPeriod.MONTH, *params],
        )
