"""Parsers for ccusage 18.x (fixtures' `output-v18.0.11/`): where its shapes differ from 20.x.

Daily-per-project and blocks reports have the 20.x shape. Sessions differ: 18.x groups by
project directory (`sessionId` is the directory, `projectPath` is "Unknown Project") and
`lastActivity` is a bare date. There is no unified all-agents report before 20.x.
"""

from datetime import UTC, datetime

from usage.ingest.parsers import ccusage_v20
from usage.ingest.parsers.base import ParseError, Reader, SessionRow
from usage.ingest.parsers.ccusage_v20 import parse_blocks_hourly, parse_claude_daily_instances

UNKNOWN_PROJECT = "Unknown Project"

__all__ = [
    "parse_blocks_hourly",
    "parse_claude_daily_instances",
    "parse_claude_session",
    "parse_daily_by_agent",
]


def parse_claude_session(data, path: str, r: Reader) -> list[SessionRow]:
    r.obj(data, path)
    rows: dict[str, SessionRow] = {}
    for i, row in enumerate(r.arr(r.get(data, "sessions", path), f"{path}.sessions")):
        row_path = f"{path}.sessions[{i}]"
        r.obj(row, row_path)
        last_value = r.get(row, "lastActivity", row_path)
        if isinstance(last_value, str) and len(last_value) == 10:
            # A date only: the session's last day, at its first instant.
            day = r.day(last_value, f"{row_path}.lastActivity")
            row = {**row, "lastActivity": datetime(day.year, day.month, day.day, tzinfo=UTC)}
            row["lastActivity"] = row["lastActivity"].isoformat()
        # 18.x sessions are project folders; its own branch below places subagent rows.
        parsed = ccusage_v20.session_row(r, row, row_path, nested=False)
        if parsed.project_key in ("", UNKNOWN_PROJECT):
            # 18.x names the session after the project directory when it knows it.
            parsed.project_key = parsed.session_id if parsed.session_id.startswith("-") else ""
        elif "/" in parsed.project_key:
            # Subagent transcripts are reported as "<project>/<parent session>".
            parsed.project_key = parsed.project_key.split("/", 1)[0]
        if parsed.session_id in rows:
            earlier = rows[parsed.session_id]
            earlier.tokens = earlier.tokens + parsed.tokens
            earlier.last_activity = max(earlier.last_activity, parsed.last_activity)
        else:
            rows[parsed.session_id] = parsed
    return list(rows.values())


def parse_daily_by_agent(data, path: str, r: Reader):
    raise ParseError(path, "the all-agents report needs ccusage 20 or newer")
