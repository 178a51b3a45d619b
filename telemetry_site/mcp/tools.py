"""The MCP tools: each one answers through the REST API's own views, for the caller's token.

A tool builds the query string of one or more /api/v1/ endpoints, runs those views in
process with the caller's `Authorization` header, and hands back their JSON. So a tool sees
exactly what the REST API shows that token (the same visibility rules, numbers, errors and
read throttle), and a change to an endpoint reaches its tool without a second copy.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlencode

from django.http import HttpRequest, QueryDict
from django.urls import resolve, reverse
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field, model_validator

from accounts.access import Viewer
from usage import queries

# Request headers an inner API call inherits: the token, and what the API uses to build links
# and tell clients apart (throttles, token last-used address).
INHERITED_META = (
    "HTTP_AUTHORIZATION",
    "HTTP_HOST",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "REMOTE_ADDR",
    "SERVER_NAME",
    "SERVER_PORT",
    "wsgi.url_scheme",
)
FIVE_HOURS = timedelta(hours=5)
SEVEN_DAYS = timedelta(days=7)


class ApiRefusal(Exception):
    """An endpoint answered with an error: its status and JSON body (`detail`, `errors`)."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


def api_get(outer: HttpRequest, route: str, params: dict[str, Any]) -> Any:
    """GET the API route named `route` in process, as the caller of `outer`; its JSON body.

    `params` become the query string (None left out, lists repeated). Raises ApiRefusal with
    the endpoint's status and error body for anything but 200.
    """
    inner = HttpRequest()
    inner.method = "GET"
    inner.path = inner.path_info = reverse(route)
    inner.META = {key: outer.META[key] for key in INHERITED_META if key in outer.META}
    query = QueryDict(mutable=True)
    for key, value in params.items():
        if value is None:
            continue
        query.setlist(key, [str(v) for v in value] if isinstance(value, list) else [str(value)])
    inner.GET = query
    inner.META["QUERY_STRING"] = urlencode(list(query.lists()), doseq=True)
    match = resolve(inner.path_info)
    response = match.func(inner, *match.args, **match.kwargs)
    response.render()
    body = json.loads(response.content or b"null")
    if response.status_code != 200:
        raise ApiRefusal(response.status_code, body)
    return body


def period(user, since: date | None, until: date | None) -> dict[str, Any]:
    """The period a result covers, in the caller's reporting timezone (null = unbounded)."""
    viewer = Viewer.of(user)
    return {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "timezone": str(viewer.zone),
        "today": viewer.today().isoformat(),
    }


# ---- inputs: JSON schemas with units, through pydantic ----

Scope = Literal["me", "team"]
# Typed Any: the field stands in for a Literal default, which mypy cannot see through Field().
SCOPE: Any = Field(
    "me",
    description="`me`: your own usage; `team`: every member's (admins, or when the team "
    "shares figures). A `member` or `machine` filter chooses whose data instead.",
)
MEMBER = Field(None, description="A member's email or public id (admins, or shared teams).")
SINCE = Field(None, description="First day, inclusive (YYYY-MM-DD, the team's timezone).")
UNTIL = Field(None, description="Last day, inclusive (YYYY-MM-DD, the team's timezone).")
PROJECT = Field(None, description="A project's public id or ccusage key (see list_projects).")
SUBSCRIPTION = Field(None, description="A subscription's public id (see get_limits).")
LIMIT = Field(50, ge=1, le=1000, description="At most this many rows (newest first).")


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DateRange(Input):
    since: date | None = SINCE
    until: date | None = UNTIL

    @model_validator(mode="after")
    def _ordered(self):
        if self.since and self.until and self.since > self.until:
            raise ValueError("until must not be before since")
        return self


class UsageInput(DateRange):
    group_by: Literal[queries.GROUP_BY] = Field(  # type: ignore[valid-type]
        "day",
        description="One row per day, ISO week (Monday), month, project, model, machine, "
        "member or source (claude-code, codex, …).",
    )
    scope: Scope = SCOPE
    member: str | None = MEMBER
    machine: str | None = Field(None, description="A machine's UUID (see list_machines).")
    project: str | None = PROJECT
    model: str | None = Field(None, description="A model name, e.g. claude-sonnet-4-5.")
    source: str | None = Field(None, description="claude-code, codex, opencode, …")


class SessionsInput(DateRange):
    scope: Scope = SCOPE
    member: str | None = MEMBER
    machine: str | None = Field(None, description="A machine's UUID.")
    project: str | None = PROJECT
    source: str | None = Field(None, description="claude-code, codex, …")
    order: Literal[tuple(queries.SESSION_ORDERS)] = Field(  # type: ignore[valid-type]
        "-last_activity", description="Sort key; a leading '-' sorts descending."
    )
    limit: int = LIMIT


class BlocksInput(DateRange):
    scope: Scope = SCOPE
    member: str | None = MEMBER
    subscription: str | None = SUBSCRIPTION
    machine: str | None = Field(
        None, description="One machine's own blocks (its hours alone) instead of merged ones."
    )
    limit: int = LIMIT


class WhoseInput(Input):
    scope: Scope = SCOPE
    member: str | None = MEMBER
    subscription: str | None = SUBSCRIPTION


class LimitsInput(WhoseInput):
    # The endpoint pages (a big team has a thousand subscriptions); `count` says how many.
    limit: int = Field(
        100, ge=1, le=1000, description="At most this many subscriptions (by owner email)."
    )
    offset: int = Field(0, ge=0, description="Skip this many subscriptions (the next page).")


class PaceInput(Input):
    scope: Scope = SCOPE
    member: str | None = MEMBER
    project: str | None = PROJECT
    budget_usd: Decimal | None = Field(
        None,
        ge=0,
        decimal_places=2,
        description="A monthly amount in USD: when would this pace reach it?",
    )


class PlanValueInput(DateRange):
    scope: Scope = SCOPE
    member: str | None = MEMBER
    subscription: str | None = SUBSCRIPTION
    # The endpoint pages (a big team has a thousand subscriptions); `count` says how many.
    limit: int = Field(
        100, ge=1, le=1000, description="At most this many subscriptions (by owner email)."
    )
    offset: int = Field(0, ge=0, description="Skip this many subscriptions (the next page).")


class ComparePeriodsInput(Input):
    first_since: date = Field(description="First period's first day (YYYY-MM-DD), inclusive.")
    first_until: date = Field(description="First period's last day, inclusive.")
    second_since: date = Field(description="Second period's first day, inclusive.")
    second_until: date = Field(description="Second period's last day, inclusive.")
    group_by: Literal["project", "model", "machine", "member", "source"] = Field(
        "project", description="The breakdown shown for each period."
    )
    scope: Scope = SCOPE
    member: str | None = MEMBER
    project: str | None = PROJECT

    @model_validator(mode="after")
    def _ordered(self):
        for name in ("first", "second"):
            if getattr(self, f"{name}_since") > getattr(self, f"{name}_until"):
                raise ValueError(f"{name}_until must not be before {name}_since")
        return self


class CompareProjectsInput(DateRange):
    first_project: str = Field(description="A project's public id or ccusage key.")
    second_project: str = Field(description="Another project's public id or ccusage key.")
    group_by: Literal["model", "member", "machine", "day", "week", "month"] = Field(
        "model",
        description="The breakdown shown for each project (`member`: admins, or "
        "when the team shares figures).",
    )
    scope: Scope = SCOPE


class BudgetsInput(Input):
    order: Literal["closest_to_cap", "name"] = Field(
        "closest_to_cap", description="`closest_to_cap`: highest percent of its amount first."
    )


class MachinesInput(Input):
    scope: Scope = SCOPE
    member: str | None = MEMBER
    order: Literal[tuple(queries.MACHINE_ORDERS)] = Field(  # type: ignore[valid-type]
        "name", description="Sort key; a leading '-' sorts descending."
    )


class DataQualityInput(Input):
    scope: Scope = SCOPE
    member: str | None = MEMBER


class NoInput(Input):
    pass


# ---- the tools ----


def _dumped(args: BaseModel, *names: str) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names}


def get_usage(request: HttpRequest, args: UsageInput) -> dict:
    fields = ("group_by", "since", "until", "scope", "member", "machine", "project")
    params = _dumped(args, *fields, "model", "source")
    data = api_get(request, "api-usage", params)
    return {"period": period(request.user, args.since, args.until), **data}


def list_sessions(request: HttpRequest, args: SessionsInput) -> dict:
    params = _dumped(args, "since", "until", "scope", "member", "machine", "project", "source")
    data = api_get(request, "api-sessions", {**params, "order": args.order, "limit": args.limit})
    return {"period": period(request.user, args.since, args.until), **data}


def _blocks(request: HttpRequest, args: BlocksInput) -> dict:
    params = _dumped(args, "since", "until", "scope", "member", "subscription", "machine")
    return api_get(request, "api-blocks", {**params, "limit": args.limit})


def list_blocks(request: HttpRequest, args: BlocksInput) -> dict:
    data = _blocks(request, args)
    return {"period": period(request.user, args.since, args.until), **data}


def _minutes(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 60))


def running_blocks(request: HttpRequest, args: WhoseInput) -> dict:
    """The active blocks (merged across machines), each with the minutes left until it ends."""
    today = Viewer.of(request.user).today()
    blocks_args = BlocksInput(
        since=today - timedelta(days=1), until=today, limit=1000, **args.model_dump()
    )
    now = timezone.now()
    running = []
    for block in _blocks(request, blocks_args)["results"]:
        if not block["is_active"]:
            continue
        end = datetime.fromisoformat(block["end_time"])
        running.append({**block, "minutes_left": _minutes(end - now)})
    return {"now": now.isoformat(), "period": period(request.user, None, None), "results": running}


def _time_to_full(reading: dict | None, window: timedelta, now: datetime) -> dict | None:
    """Minutes until a quota window reaches 100% if it keeps its average pace since it opened.

    The window opened at `resets_at - window`; null when the reading is stale or has no reset
    time. `resets_first` says the window resets before it would fill.
    """
    if not reading or reading["stale"] or not reading["resets_at"]:
        return None
    resets_at = datetime.fromisoformat(reading["resets_at"])
    used = float(reading["used_percentage"])
    elapsed = (now - (resets_at - window)).total_seconds() / 60
    left = _minutes(resets_at - now)
    if used >= 100:
        return {"minutes_to_limit": 0, "minutes_to_reset": left, "resets_first": False}
    if used <= 0 or elapsed <= 0:
        return {"minutes_to_limit": None, "minutes_to_reset": left, "resets_first": True}
    to_full = int((100 - used) / (used / elapsed))
    return {"minutes_to_limit": to_full, "minutes_to_reset": left, "resets_first": to_full > left}


def get_limits(request: HttpRequest, args: LimitsInput) -> dict:
    """Official quota readings per subscription (a page of them: `limit`, `offset`) with the
    pace to each limit and the running block's burn rate."""
    now = timezone.now()
    whose = WhoseInput(**_dumped(args, "scope", "member", "subscription"))
    page = api_get(
        request,
        "api-rate-limits",
        {**whose.model_dump(), "limit": args.limit, "offset": args.offset},
    )
    quotas = page["results"]
    running = running_blocks(request, whose)["results"]
    results = []
    for quota in quotas:
        sub_id = quota["subscription"]["public_id"]
        block = next(
            (b for b in running if (b["subscription"] or {}).get("public_id") == sub_id), None
        )
        results.append(
            {
                **quota,
                "running_block": block
                and {
                    key: block[key]
                    for key in (
                        "start_time",
                        "end_time",
                        "minutes_left",
                        "cost_usd",
                        "total_tokens",
                        "burn_rate",
                        "projection",
                        "machines",
                    )
                },
                "pace_to_limit": {
                    "five_hour": _time_to_full(quota["five_hour"], FIVE_HOURS, now),
                    "seven_day": _time_to_full(quota["seven_day"], SEVEN_DAYS, now),
                    **{
                        name: _time_to_full(reading, SEVEN_DAYS, now)
                        for name, reading in quota["windows"].items()
                    },
                },
            }
        )
    return {
        "now": now.isoformat(),
        "method": "pace_to_limit: the window's used percentage divided by the minutes since it "
        "opened (its reset time minus 5 hours or 7 days), carried forward to 100%.",
        "count": page["count"],
        "next": page["next"],
        "previous": page["previous"],
        "results": results,
    }


def get_headroom(request: HttpRequest, args: NoInput) -> dict:
    return {"now": timezone.now().isoformat(), **api_get(request, "api-headroom", {})}


def get_pace(request: HttpRequest, args: PaceInput) -> dict:
    params = _dumped(args, "scope", "member", "project")
    return api_get(request, "api-pace", {**params, "budget": args.budget_usd})


def get_plan_value(request: HttpRequest, args: PlanValueInput) -> dict:
    params = _dumped(args, "since", "until", "scope", "member", "subscription")
    return api_get(
        request, "api-plan-value", {**params, "limit": args.limit, "offset": args.offset}
    )


def _change(first: str, second: str) -> dict:
    a, b = Decimal(first), Decimal(second)
    percent = None if a == 0 else round(float((b - a) / a * 100), 1)
    return {"difference": str(b - a), "percent": percent}


def _compared(first: dict, second: dict) -> dict:
    return {
        "cost_usd": _change(first["totals"]["cost_usd"], second["totals"]["cost_usd"]),
        "total_tokens": _change(
            str(first["totals"]["total_tokens"]), str(second["totals"]["total_tokens"])
        ),
    }


def compare_periods(request: HttpRequest, args: ComparePeriodsInput) -> dict:
    common = {**_dumped(args, "group_by", "scope", "member", "project")}
    first = api_get(
        request, "api-usage", {**common, "since": args.first_since, "until": args.first_until}
    )
    second = api_get(
        request, "api-usage", {**common, "since": args.second_since, "until": args.second_until}
    )
    return {
        "first": {"period": period(request.user, args.first_since, args.first_until), **first},
        "second": {"period": period(request.user, args.second_since, args.second_until), **second},
        "second_vs_first": _compared(first, second),
    }


def compare_projects(request: HttpRequest, args: CompareProjectsInput) -> dict:
    common = _dumped(args, "group_by", "scope", "since", "until")
    first = api_get(request, "api-usage", {**common, "project": args.first_project})
    second = api_get(request, "api-usage", {**common, "project": args.second_project})
    return {
        "period": period(request.user, args.since, args.until),
        "first": {"project": args.first_project, **first},
        "second": {"project": args.second_project, **second},
        "second_vs_first": _compared(first, second),
    }


def list_budgets(request: HttpRequest, args: BudgetsInput) -> dict:
    data = api_get(request, "api-budgets", {"limit": 1000})
    if args.order == "closest_to_cap":
        data["results"].sort(key=lambda row: -row["percent"])
    return {"period": period(request.user, None, None), **data}


def list_machines(request: HttpRequest, args: MachinesInput) -> dict:
    return api_get(request, "api-machines", {**args.model_dump(), "limit": 1000})


def get_data_quality(request: HttpRequest, args: DataQualityInput) -> dict:
    return api_get(request, "api-data-quality", args.model_dump())


def list_projects(request: HttpRequest, args: NoInput) -> dict:
    return api_get(request, "api-projects", {"limit": 1000})


@dataclass(frozen=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input: type[BaseModel]
    run: Callable[[HttpRequest, Any], dict]


TOOLS = [
    ToolSpec(
        "get_usage",
        "Usage totals",
        "Tokens and cost (USD) grouped by day, week, month, project, model, machine, member or "
        "source, with totals, for a date range in the team's timezone. Same as GET /api/v1/usage/.",
        UsageInput,
        get_usage,
    ),
    ToolSpec(
        "list_sessions",
        "Sessions",
        "Coding sessions (Claude Code, Codex) with tokens and cost (USD), newest first by "
        "default, filtered by days, project, machine, member or source.",
        SessionsInput,
        list_sessions,
    ),
    ToolSpec(
        "list_blocks",
        "5-hour blocks",
        "5-hour billing blocks per subscription, merged across all its machines (ccusage's "
        "rule), with burn rate and projection; default: the last 7 days.",
        BlocksInput,
        list_blocks,
    ),
    ToolSpec(
        "get_running_blocks",
        "Running blocks and time left",
        "The 5-hour blocks running now across every machine of each subscription: minutes left, "
        "cost (USD) and tokens so far, burn rate (tokens/minute, USD/hour) and the projected "
        "totals at the block's end.",
        WhoseInput,
        running_blocks,
    ),
    ToolSpec(
        "get_limits",
        "Quota, burn rate and time to the limits",
        "Official quota readings per subscription (5-hour, weekly and per-model weekly "
        "windows, in percent, with reset times), the running block's burn rate, and the "
        "minutes until each window reaches 100% at its pace so far (or whether it resets first). "
        "A big team's subscriptions come a page at a time (`limit`, `offset`; `count`).",
        LimitsInput,
        get_limits,
    ),
    ToolSpec(
        "get_team_headroom",
        "Team headroom",
        "Every member's current quota use, closest to a limit first (team admins only).",
        NoInput,
        get_headroom,
    ),
    ToolSpec(
        "get_pace",
        "Pace, trend and forecast",
        "Daily average and rate (USD), trend, unusual days (z-score), this week's and month's "
        "spend and projected totals, and when the pace reaches a monthly budget or a weekly quota.",
        PaceInput,
        get_pace,
    ),
    ToolSpec(
        "get_plan_value",
        "Plan value and cheapest fit",
        "What each subscription's usage would cost at API prices (USD) against its plan's "
        "price, limit hits, and the cheapest plan that fits the usage.",
        PlanValueInput,
        get_plan_value,
    ),
    ToolSpec(
        "compare_periods",
        "Compare two periods",
        "Usage totals (USD, tokens) of two date ranges side by side with a breakdown and the "
        "change from the first to the second.",
        ComparePeriodsInput,
        compare_periods,
    ),
    ToolSpec(
        "compare_projects",
        "Compare two projects",
        "Two projects' usage (USD, tokens) over the same days, broken down by model (default), "
        "member, machine or time, with the difference.",
        CompareProjectsInput,
        compare_projects,
    ),
    ToolSpec(
        "list_budgets",
        "Budgets and their status",
        "Budgets you may see with spend in the current period (USD), percent of the amount, "
        "the projected total and day it is reached, and the alert level; closest to its cap "
        "first by default.",
        BudgetsInput,
        list_budgets,
    ),
    ToolSpec(
        "list_machines",
        "Machines and their health",
        "Machines with owner, subscription, agent and ccusage versions, last seen time and "
        "the last sync's status, error and counts.",
        MachinesInput,
        list_machines,
    ),
    ToolSpec(
        "get_data_quality",
        "Data-quality findings",
        "What may be off in the figures of the machines you may see: days a machine's logs "
        "lost (still counted), agent folders copied between PCs, sessions reported by two "
        "machines (with the USD counted twice), requests another machine reported first, and "
        "models counted at $0 for lack of a price. Same as GET /api/v1/data-quality/.",
        DataQualityInput,
        get_data_quality,
    ),
    ToolSpec(
        "list_projects",
        "Projects",
        "Your team's projects: public ids, ccusage keys and names (for the `project` inputs).",
        NoInput,
        list_projects,
    ),
]
TOOLS_BY_NAME = {tool.name: tool for tool in TOOLS}
