"""The OTLP machine's daily, hourly and session facts, summed from its stored events and metric
points; each source counted once (docs/ingest.md, "OTLP and the agent").

- `claude_code.api_request` events are the OTLP reference: a request counts once by its id.
- `claude_code.cost.usage` and `claude_code.token.usage` delta points fill what has no events:
  a point counts only when no event of the same session falls in the same UTC hour (a point
  without `session.id`: no event at all in that hour).
- An agent machine of the same owner and hostname beats both: its days (Claude Code source),
  hours and sessions are left out of the OTLP facts.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from usage.ingest import facts
from usage.ingest.parsers import DailyRow, HourlyRow, SessionRow, Tokens
from usage.models import (
    DailyUsage,
    HourlyUsage,
    IngestBatch,
    IngestPath,
    Machine,
    OtlpMetricPoint,
    OtlpRequest,
    Project,
    SessionUsage,
    Source,
)

COST = "claude_code.cost.usage"
TOKENS = "claude_code.token.usage"
# The `type` attribute of claude_code.token.usage, per Claude Code's monitoring docs.
TOKEN_TYPES = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cacheRead": "cache_read_tokens",
    "cacheCreation": "cache_creation_tokens",
}


@dataclass(frozen=True)
class Item:
    """One event or one metric point, as usage: when (UTC), model, session, figures."""

    at: datetime
    model: str
    session_id: str
    tokens: Tokens
    entries: int  # 1 for an api_request event, 0 for a metric point (it counts no request)


def hour_of(at: datetime) -> datetime:
    """The UTC hour an instant falls in."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def agent_machines(machine: Machine):
    """The agent machines whose figures beat this OTLP machine's: same owner, same hostname
    (case-insensitive)."""
    return Machine.objects.filter(
        owner_id=machine.owner_id,
        ingest_path=IngestPath.AGENT,
        hostname__iexact=machine.hostname,
    )


def rebuild(
    machine: Machine,
    batch: IngestBatch,
    team,
    *,
    days: set[date],
    hours: set[datetime],
    sessions: set[str],
) -> int:
    """Recompute the OTLP machine's daily facts of `days` (team days), hourly facts of `hours`
    (UTC) and session facts of `sessions` from every stored event and usage metric point.

    Returns how many of those keys were withheld because an agent machine reported them.
    """
    if not (days or hours or sessions):
        return 0
    zone = team.zone
    agents = agent_machines(machine)
    agent_days = set(
        DailyUsage.objects.filter(
            machine__in=agents, source=Source.CLAUDE_CODE, day__in=days
        ).values_list("day", flat=True)
    )
    agent_hours = set(
        HourlyUsage.objects.filter(machine__in=agents, hour__in=hours).values_list(
            "hour", flat=True
        )
    )
    agent_sessions = set(
        SessionUsage.objects.filter(machine__in=agents, session_id__in=sessions).values_list(
            "session_id", flat=True
        )
    )
    # The UTC span of those team days and hours (an hour may cross a day of a half-hour zone).
    all_days = days | {h.astimezone(zone).date() for h in hours}
    start, end = team.day_bounds(min(all_days), max(all_days))
    if hours:
        start, end = min(start, min(hours)), max(end, max(hours) + timedelta(hours=1))
    in_window = _items(machine, window=(start, end))
    of_sessions = _items(machine, sessions=sessions - agent_sessions) if sessions else []

    daily: dict[tuple[date, str], Tokens] = defaultdict(Tokens)
    hourly: dict[datetime, list[Item]] = defaultdict(list)
    for item in in_window:
        day = item.at.astimezone(zone).date()
        if day in days and day not in agent_days:
            daily[(day, item.model)] += item.tokens
        hour = hour_of(item.at)
        if hour in hours and hour not in agent_hours:
            hourly[hour].append(item)
    by_session: dict[str, list[Item]] = defaultdict(list)
    for item in of_sessions:
        by_session[item.session_id].append(item)

    project = no_project(team)
    DailyUsage.objects.filter(machine=machine, day__in=days).delete()
    HourlyUsage.objects.filter(machine=machine, hour__in=hours).delete()
    SessionUsage.objects.filter(machine=machine, session_id__in=sessions).delete()
    facts.upsert_daily(
        machine,
        batch,
        [
            DailyRow(Source.CLAUDE_CODE, day, "", model, tokens)
            for (day, model), tokens in daily.items()
            if tokens.total_tokens or tokens.cost_usd
        ],
        {"": project.pk},
        timezone=team.timezone,
    )
    facts.upsert_hourly(
        machine,
        batch,
        [
            HourlyRow(
                hour=hour,
                last_activity=max(i.at for i in items),
                entries=sum(i.entries for i in items),
                models=sorted({i.model for i in items if i.model}),
                limit_reset_at=None,
                tokens=_sum(items),
                first_activity=min(i.at for i in items),
            )
            for hour, items in hourly.items()
        ],
    )
    facts.upsert_sessions(
        machine,
        batch,
        [
            SessionRow(
                session_id=session_id,
                source=Source.CLAUDE_CODE,
                project_key="",
                first_activity=min(i.at for i in items),
                last_activity=max(i.at for i in items),
                models=sorted({i.model for i in items if i.model}),
                tokens=_sum(items),
            )
            for session_id, items in by_session.items()
        ],
        {"": project.pk},
    )
    return len(days & agent_days) + len(hours & agent_hours) + len(sessions & agent_sessions)


def _items(
    machine: Machine,
    *,
    window: tuple[datetime, datetime] | None = None,
    sessions: set[str] | None = None,
) -> list[Item]:
    """Events and the usage points no event covers, in a time window or of some sessions."""
    events = OtlpRequest.objects.filter(machine=machine)
    points = OtlpMetricPoint.objects.filter(machine=machine, metric__in=(COST, TOKENS))
    if window is not None:
        events = events.filter(occurred_at__gte=window[0], occurred_at__lt=window[1])
        points = points.filter(end_at__gte=window[0], end_at__lt=window[1])
    if sessions is not None:
        events = events.filter(session_id__in=sessions)
        points = points.filter(session_id__in=sessions)
    items = [
        Item(
            at=e.occurred_at,
            model=e.model,
            session_id=e.session_id,
            tokens=Tokens(
                e.input_tokens,
                e.output_tokens,
                e.cache_creation_tokens,
                e.cache_read_tokens,
                Decimal(e.cost_usd),
            ),
            entries=1,
        )
        for e in events
    ]
    point_rows = list(points)
    if not point_rows:
        return items
    # Which (session, hour) the events cover, over every hour the points touch, so a point is
    # withheld even when the event that covers it lies outside this window or session set.
    point_hours = {hour_of(p.end_at) for p in point_rows}
    covering = OtlpRequest.objects.filter(
        machine=machine,
        occurred_at__gte=min(point_hours),
        occurred_at__lt=max(point_hours) + timedelta(hours=1),
    ).values_list("session_id", "occurred_at")
    covered: set[tuple[str, datetime]] = set()
    busy_hours: set[datetime] = set()
    for session_id, occurred_at in covering:
        covered.add((session_id, hour_of(occurred_at)))
        busy_hours.add(hour_of(occurred_at))
    for p in point_rows:
        hour = hour_of(p.end_at)
        if (p.session_id, hour) in covered or (not p.session_id and hour in busy_hours):
            continue
        items.append(
            Item(
                at=p.end_at,
                model=p.model,
                session_id=p.session_id,
                tokens=point_tokens(p),
                entries=0,
            )
        )
    return items


def point_tokens(point: OtlpMetricPoint) -> Tokens:
    """A usage point as figures: a cost point is its USD, a token point its count of one kind."""
    if point.metric == COST:
        return Tokens(cost_usd=Decimal(point.value))
    count = int(point.value)
    kind = TOKEN_TYPES.get(point.kind)
    return Tokens(
        input_tokens=count if kind == "input_tokens" else 0,
        output_tokens=count if kind == "output_tokens" else 0,
        cache_creation_tokens=count if kind == "cache_creation_tokens" else 0,
        cache_read_tokens=count if kind == "cache_read_tokens" else 0,
    )


def no_project(team) -> Project:
    """The team's project of usage that names none (Claude Code's events and usage metrics)."""
    project, _ = Project.objects.get_or_create(
        team=team, key="", defaults={"display_name": facts.display_name_for("", None)}
    )
    return project


def _sum(items: list[Item]) -> Tokens:
    total = Tokens()
    for item in items:
        total += item.tokens
    return total
