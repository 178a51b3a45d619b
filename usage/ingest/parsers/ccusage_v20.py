"""Parsers for ccusage 20.x JSON reports (the shapes in the shared fixtures' `output/`).

Each function takes the decoded report, the JSON path it sits at, and a Reader; it returns
records and ignores every field it does not need, so additive ccusage changes never break it.
"""

import re
from collections.abc import Iterable
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from usage.figures import COST_PLACES
from usage.ingest.parsers.base import (
    MAX_COST,
    MAX_TOKENS,
    DailyRow,
    HourlyRow,
    ParseError,
    Reader,
    SessionRow,
    Tokens,
)

CLAUDE_SOURCE = "claude-code"
# ccusage's agent ids in the unified report; claude facts come from the per-project report.
CLAUDE_AGENT = "claude"
UNKNOWN_MODEL = "unknown"
# An API-error placeholder, not a model anyone used.
SYNTHETIC_MODEL = "<synthetic>"
MAX_MODEL = 200
MAX_PROJECT_KEY = 500
MAX_SESSION_ID = 200
ZERO_COST = Decimal(0).quantize(COST_PLACES)


def tokens(r: Reader, row: dict, path: str, *, cost_key: str = "totalCost") -> Tokens:
    inp, out = row.get("inputTokens"), row.get("outputTokens")
    created, read = row.get("cacheCreationTokens", 0), row.get("cacheReadTokens", 0)
    cost = row.get(cost_key)
    # The common case, checked without building a JSON path per field: whole numbers and a
    # Decimal cost, all in range (what Reader.integer and Reader.decimal would return as is).
    if (
        type(inp) is int
        and type(out) is int
        and type(created) is int
        and type(read) is int
        and min(inp, out, created, read) >= 0
        and max(inp, out, created, read) <= MAX_TOKENS
        and type(cost) is Decimal
        and cost.is_finite()
        and 0 <= cost <= MAX_COST
    ):
        # -0.0 (ccusage's empty report) is simply zero, as Reader.decimal makes it.
        cost_usd = cost.quantize(COST_PLACES, rounding=ROUND_HALF_EVEN) if cost else ZERO_COST
        return Tokens(inp, out, created, read, cost_usd)
    return Tokens(
        input_tokens=r.integer(r.get(row, "inputTokens", path), f"{path}.inputTokens"),
        output_tokens=r.integer(r.get(row, "outputTokens", path), f"{path}.outputTokens"),
        cache_creation_tokens=r.integer(
            r.get(row, "cacheCreationTokens", path, 0), f"{path}.cacheCreationTokens"
        ),
        cache_read_tokens=r.integer(
            r.get(row, "cacheReadTokens", path, 0), f"{path}.cacheReadTokens"
        ),
        cost_usd=r.decimal(r.get(row, cost_key, path), f"{path}.{cost_key}"),
    )


def model_tokens(r: Reader, row: dict, path: str) -> Iterable[tuple[str, Tokens]]:
    """(model, tokens) per entry of `modelBreakdowns`; the row itself when there is none."""
    breakdowns = row.get("modelBreakdowns")
    if breakdowns is None or breakdowns == []:
        totals = tokens(r, row, path)
        if totals.total_tokens or totals.cost_usd:
            yield UNKNOWN_MODEL, totals
        return
    for i, item in enumerate(r.arr(breakdowns, f"{path}.modelBreakdowns")):
        item_path = f"{path}.modelBreakdowns[{i}]"
        r.obj(item, item_path)
        model = r.string(
            r.get(item, "modelName", item_path), f"{item_path}.modelName", max_length=MAX_MODEL
        )
        if model == SYNTHETIC_MODEL:
            continue
        yield model, tokens(r, item, item_path, cost_key="cost")


def row_day(r: Reader, row: dict, path: str):
    # `claude …` reports say "date"; the unified all-agents reports say "period".
    key = "date" if "date" in row else "period"
    return r.day(r.get(row, key, path), f"{path}.{key}")


def project_key(r: Reader, value, path: str) -> str:
    return r.string(value, path, max_length=MAX_PROJECT_KEY, allow_empty=True)


def merge_daily(rows: Iterable[DailyRow]) -> list[DailyRow]:
    """One record per natural key; parts of the same bucket within one report add up."""
    merged: dict[tuple, DailyRow] = {}
    for row in rows:
        key = (row.source, row.day, row.project_key, row.model)
        if key in merged:
            merged[key].tokens = merged[key].tokens + row.tokens
        else:
            merged[key] = row
    return list(merged.values())


def parse_claude_daily_instances(data, path: str, r: Reader) -> list[DailyRow]:
    """`ccusage claude daily --json --instances`: {"projects": {key: [day rows]}, "totals"}.

    With no usage at all ccusage 20 answers the plain daily shape instead, `{"daily": [],
    "totals"}` (a fresh Claude Code install): an empty report, nothing to store.
    """
    r.obj(data, path)
    if "projects" not in data and data.get("daily") == []:
        return []
    if "projects" not in data:
        raise ParseError(
            f"{path}.projects", "required (run `ccusage claude daily --json --instances`)"
        )
    projects = r.obj(data["projects"], f"{path}.projects")
    rows = []
    for key, days in projects.items():
        key_path = f"{path}.projects[{_quote(key)}]"
        project = project_key(r, key, key_path)
        for i, row in enumerate(r.arr(days, key_path)):
            row_path = f"{key_path}[{i}]"
            r.obj(row, row_path)
            day = row_day(r, row, row_path)
            for model, counts in model_tokens(r, row, row_path):
                rows.append(DailyRow(CLAUDE_SOURCE, day, project, model, counts))
    return merge_daily(rows)


def parse_daily_by_agent(data, path: str, r: Reader) -> list[DailyRow]:
    """`ccusage daily --json --by-agent`: every agent but Claude, with no project."""
    r.obj(data, path)
    rows = []
    for i, row in enumerate(r.arr(r.get(data, "daily", path), f"{path}.daily")):
        row_path = f"{path}.daily[{i}]"
        r.obj(row, row_path)
        day = row_day(r, row, row_path)
        agents = row.get("agents")
        if agents is None:
            only = (row.get("metadata") or {}).get("agents") if isinstance(row, dict) else None
            if only == [CLAUDE_AGENT]:
                continue  # a Claude-only day: nothing for this kind to store
            raise ParseError(f"{row_path}.agents", "required (run `ccusage daily --by-agent`)")
        for j, agent_row in enumerate(r.arr(agents, f"{row_path}.agents")):
            agent_path = f"{row_path}.agents[{j}]"
            r.obj(agent_row, agent_path)
            agent = r.string(
                r.get(agent_row, "agent", agent_path), f"{agent_path}.agent", max_length=40
            )
            source = source_for_agent(agent, f"{agent_path}.agent")
            if source == CLAUDE_SOURCE:
                # Claude facts come from claude_daily_instances, per project: never twice.
                continue
            for model, counts in model_tokens(r, agent_row, agent_path):
                rows.append(DailyRow(source, day, "", model, counts))
    return merge_daily(rows)


def source_for_agent(agent: str, path: str) -> str:
    name = agent.strip().lower()
    if name == CLAUDE_AGENT:
        return CLAUDE_SOURCE
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise ParseError(path, f"{agent!r} is not an agent name")
    return name


def parse_claude_session(data, path: str, r: Reader) -> list[SessionRow]:
    """`ccusage claude session --json`: one row per session with its project and times."""
    r.obj(data, path)
    rows: dict[str, SessionRow] = {}
    for i, row in enumerate(r.arr(r.get(data, "sessions", path), f"{path}.sessions")):
        row_path = f"{path}.sessions[{i}]"
        r.obj(row, row_path)
        parsed = session_row(r, row, row_path)
        if parsed.session_id in rows:
            # The same id twice in one report are parts of one session.
            earlier = rows[parsed.session_id]
            earlier.tokens = earlier.tokens + parsed.tokens
            earlier.last_activity = max(earlier.last_activity, parsed.last_activity)
            if parsed.first_activity is not None and (
                earlier.first_activity is None or parsed.first_activity < earlier.first_activity
            ):
                earlier.first_activity = parsed.first_activity
            earlier.models = sorted(set(earlier.models) | set(parsed.models))
        else:
            rows[parsed.session_id] = parsed
    return list(rows.values())


def session_row(r: Reader, row: dict, path: str, *, nested: bool = True) -> SessionRow:
    """One session row; `nested` gives subagent transcripts to their parent (session_owner)."""
    session_id = r.string(
        r.get(row, "sessionId", path), f"{path}.sessionId", max_length=MAX_SESSION_ID
    )
    last = r.instant(r.get(row, "lastActivity", path), f"{path}.lastActivity")
    first = row.get("firstActivity")
    first_at = r.instant(first, f"{path}.firstActivity") if first is not None else None
    key = project_key(r, row.get("projectPath", ""), f"{path}.projectPath")
    parent = None
    if nested:
        key, parent = session_owner(key)
    return SessionRow(
        session_id=parent or session_id,
        source=CLAUDE_SOURCE,
        project_key=key,
        first_activity=first_at,
        last_activity=last,
        models=_models(r, row.get("modelsUsed", []), f"{path}.modelsUsed"),
        tokens=tokens(r, row, path),
    )


def session_owner(project_path: str) -> tuple[str, str | None]:
    """(project key, parent session id or None) of a transcript's `projectPath`.

    Claude Code writes a session's own transcripts inside a folder named after it:
    `<project>/<session>/subagents/agent-x.jsonl` and, in newer versions,
    `<project>/<session>/subagents/workflows/wf_…/agent-x.jsonl`. ccusage 20.0.24 names the
    nested ones after their innermost folder (session `wf_…`, project
    `<project>/<session>/subagents/workflows`). An encoded project folder never holds a path
    separator, so the first part is the project and the second the session that owns the
    usage.
    """
    parts = [part for part in re.split(r"[/\\]", project_path) if part]
    if len(parts) < 2:
        return project_path, None
    return parts[0], parts[1][:MAX_SESSION_ID]


def parse_blocks_hourly(data, path: str, r: Reader, *, hours: int | None = 1) -> list[HourlyRow]:
    """`ccusage blocks --json --session-length 1`: one row per UTC hour with usage.

    Gap blocks carry no usage and are skipped. `hours=None` accepts any block length
    (tests read the 5-hour fixtures with it); ingest insists on one-hour blocks, because
    cross-machine 5-hour blocks can only be rebuilt from hourly buckets.
    """
    r.obj(data, path)
    rows: dict = {}
    for i, block in enumerate(r.arr(r.get(data, "blocks", path), f"{path}.blocks")):
        block_path = f"{path}.blocks[{i}]"
        r.obj(block, block_path)
        if block.get("isGap") is True:
            continue
        start = r.instant(r.get(block, "startTime", block_path), f"{block_path}.startTime")
        if start.minute or start.second or start.microsecond:
            raise ParseError(f"{block_path}.startTime", "must start on a whole hour")
        end_value = block.get("endTime")
        if hours is not None and end_value is not None:
            end = r.instant(end_value, f"{block_path}.endTime")
            if end - start != timedelta(hours=hours):
                raise ParseError(
                    f"{block_path}.endTime",
                    f"expected {hours}-hour blocks (run `ccusage blocks --session-length {hours}`)",
                )
        actual_end = block.get("actualEndTime")
        last = (
            r.instant(actual_end, f"{block_path}.actualEndTime")
            if actual_end is not None
            else start
        )
        counts = r.obj(r.get(block, "tokenCounts", block_path), f"{block_path}.tokenCounts")
        counts_path = f"{block_path}.tokenCounts"
        reset = block.get("usageLimitResetTime")
        rows[start] = HourlyRow(
            hour=start,
            last_activity=last,
            entries=r.integer(block.get("entries", 0), f"{block_path}.entries"),
            models=_models(r, block.get("models", []), f"{block_path}.models"),
            # A reset time is in the future by nature: up to a week for weekly limits.
            limit_reset_at=r.instant(
                reset, f"{block_path}.usageLimitResetTime", latest=r.now + timedelta(days=31)
            )
            if reset is not None
            else None,
            tokens=Tokens(
                input_tokens=r.integer(
                    r.get(counts, "inputTokens", counts_path), f"{counts_path}.inputTokens"
                ),
                output_tokens=r.integer(
                    r.get(counts, "outputTokens", counts_path), f"{counts_path}.outputTokens"
                ),
                cache_creation_tokens=r.integer(
                    counts.get("cacheCreationInputTokens", 0),
                    f"{counts_path}.cacheCreationInputTokens",
                ),
                cache_read_tokens=r.integer(
                    counts.get("cacheReadInputTokens", 0), f"{counts_path}.cacheReadInputTokens"
                ),
                cost_usd=r.decimal(r.get(block, "costUSD", block_path), f"{block_path}.costUSD"),
            ),
        )
    return list(rows.values())


def _models(r: Reader, value, path: str) -> list[str]:
    return sorted(set(r.strings(value, path, max_length=MAX_MODEL)) - {SYNTHETIC_MODEL})


def _quote(key) -> str:
    return '"' + str(key).replace('"', '\\"') + '"'
