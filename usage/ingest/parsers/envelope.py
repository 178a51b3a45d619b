"""The ingest envelope (schema 1): the machine's identity plus raw ccusage reports by kind.

The report parsers are chosen by the ccusage version the machine reports: 18.x and 19.x
use `ccusage_v18`, anything newer (or unknown) `ccusage_v20`.
"""

import json
import re
import uuid
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from types import ModuleType

from telemetry_site.api.parsers import find_surrogate
from usage.ingest.parsers import ccusage_v18, ccusage_v20
from usage.ingest.parsers.base import ParseError, Reader
from usage.ingest.parsers.first_activity import attach, parse_hour_first_activity
from usage.ingest.parsers.request_keys import parse_request_keys
from usage.ingest.parsers.statusline import parse_statusline

SCHEMA_VERSION = 1
DAILY_KINDS = ("claude_daily_instances", "daily_by_agent")
KINDS = (
    "claude_daily_instances",
    "claude_session",
    "blocks_hourly",
    "daily_by_agent",
    "statusline",
    "request_keys",
)
# The agent's own addition to blocks_hourly (usage.ingest.parsers.first_activity).
FIRST_ACTIVITY_KIND = "hour_first_activity"
_VERSION = re.compile(r"\s*v?(\d+)\.")
_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
PROJECT_KEY_MODES = ("folder", "hashed")


@dataclass
class MachineInfo:
    uuid: uuid.UUID
    name: str
    hostname: str = ""
    os: str = ""
    agent_version: str = ""
    ccusage_version: str = ""
    timezone: str = ""
    # A SHA-256 (hex) of where the agent runs; empty from agents that do not send one.
    fingerprint: str = ""
    os_user: str = ""


@dataclass
class ProjectInfo:
    cwd: str = ""
    git_remote: str = ""
    hashed: bool = False
    # The folder's last part, sent instead of cwd when the agent withholds paths.
    name: str = ""


@dataclass
class Envelope:
    machine: MachineInfo
    full: bool = False
    since: date | None = None
    projects: dict[str, ProjectInfo] = field(default_factory=dict)
    # "folder" (ccusage's encoded folders) or "hashed"; empty when the report does not say.
    project_key_mode: str = ""
    # kind -> records (DailyRow, SessionRow, HourlyRow or RateLimitRow)
    reports: dict[str, list] = field(default_factory=dict)
    ignored_kinds: list[str] = field(default_factory=list)


def decode_json(body: bytes):
    """Bytes to JSON values, floats as exact Decimals; NaN, Infinity and lone surrogates are
    refused (ParseError naming the body or the JSON path)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError("body", f"not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ParseError(
            "body", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise ParseError("body", f"not valid JSON: {exc}") from None
    # JSON may escape a lone UTF-16 surrogate; no UTF-8 database can store the string it gives.
    # Only a \uD800-\uDFFF escape can make one (strict UTF-8 decoding refuses raw ones), so a
    # body without such an escape needs no walk over every value.
    where = find_surrogate(data, "body") if _SURROGATE_ESCAPE.search(text) else None
    if where is not None:
        raise ParseError(where.removeprefix("body."), "not valid Unicode text (a lone surrogate)")
    return data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def peek_machine_uuid(data) -> uuid.UUID | None:
    """The machine UUID of a possibly invalid envelope, to record a failed sync against."""
    try:
        return uuid.UUID(str(data["machine"]["uuid"]))
    except (TypeError, KeyError, ValueError, AttributeError):
        return None


def parser_for(ccusage_version: str) -> ModuleType:
    match = _VERSION.match(ccusage_version or "")
    if match and int(match.group(1)) < 20:
        return ccusage_v18
    return ccusage_v20


def parse_envelope(data, *, now: datetime | None = None) -> Envelope:
    r = Reader(now or datetime.now(UTC))
    r.obj(data, "body")
    schema = data.get("schema")
    if schema is None:
        raise ParseError("schema", "required")
    if isinstance(schema, bool) or schema != SCHEMA_VERSION:
        raise ParseError("schema", f"unsupported envelope schema {schema!r}; expected 1")
    machine = _machine(r, r.get(data, "machine", ""), "machine")
    envelope = Envelope(machine=machine)
    full = data.get("full")
    envelope.full = r.boolean(full, "full") if full is not None else False
    since = data.get("since")
    envelope.since = r.day(since, "since") if since is not None else None
    envelope.projects = _projects(r, data.get("projects") or {}, "projects")
    envelope.project_key_mode = _project_key_mode(r, data.get("project_keys"), envelope.projects)

    reports = r.obj(r.get(data, "reports", ""), "reports")
    module = parser_for(machine.ccusage_version)
    parsers = {
        "claude_daily_instances": module.parse_claude_daily_instances,
        "claude_session": module.parse_claude_session,
        "blocks_hourly": module.parse_blocks_hourly,
        "daily_by_agent": module.parse_daily_by_agent,
        "statusline": parse_statusline,
        "request_keys": parse_request_keys,
    }
    firsts = None
    for kind, report in reports.items():
        if kind == FIRST_ACTIVITY_KIND:
            # Not facts of its own: it completes blocks_hourly's rows below.
            if report is not None:
                firsts = parse_hour_first_activity(report, f"reports.{kind}", r)
            continue
        if kind not in parsers:
            envelope.ignored_kinds.append(str(kind)[:60])
            continue
        if report is None:
            continue
        envelope.reports[kind] = parsers[kind](report, f"reports.{kind}", r)
    if firsts:
        attach(envelope.reports.get("blocks_hourly", []), firsts, f"reports.{FIRST_ACTIVITY_KIND}")
    return envelope


def _machine(r: Reader, value, path: str) -> MachineInfo:
    r.obj(value, path)
    raw_uuid = r.string(r.get(value, "uuid", path), f"{path}.uuid", max_length=64)
    try:
        machine_uuid = uuid.UUID(raw_uuid)
    except ValueError:
        raise ParseError(f"{path}.uuid", f"{raw_uuid!r} is not a UUID") from None

    def text(key: str, max_length: int) -> str:
        item = value.get(key)
        if item is None:
            return ""
        return r.string(item, f"{path}.{key}", max_length=max_length, allow_empty=True).strip()

    hostname = text("hostname", 255)
    name = text("name", 100) or hostname[:100] or f"machine-{str(machine_uuid)[:8]}"
    tz = text("timezone", 64)
    if tz and tz not in _timezones():
        raise ParseError(f"{path}.timezone", f"{tz!r} is not an IANA timezone")
    fingerprint = text("fingerprint", 64).lower()
    if fingerprint and not _FINGERPRINT.fullmatch(fingerprint):
        raise ParseError(f"{path}.fingerprint", "expected 64 hexadecimal characters (SHA-256)")
    return MachineInfo(
        uuid=machine_uuid,
        fingerprint=fingerprint,
        os_user=text("os_user", 100),
        name=name,
        hostname=hostname,
        os=text("os", 100),
        agent_version=text("agent_version", 40),
        ccusage_version=text("ccusage_version", 40),
        timezone=tz,
    )


def _project_key_mode(r: Reader, value, projects: dict[str, ProjectInfo]) -> str:
    """How the report names projects: the agent's `project_keys`, else what `projects` shows."""
    if value is not None:
        mode = r.string(value, "project_keys", max_length=10)
        if mode not in PROJECT_KEY_MODES:
            raise ParseError("project_keys", f"expected one of {', '.join(PROJECT_KEY_MODES)}")
        return mode
    if not projects:
        return ""
    return "hashed" if all(info.hashed for info in projects.values()) else "folder"


def _projects(r: Reader, value, path: str) -> dict[str, ProjectInfo]:
    r.obj(value, path)
    projects = {}
    for key, info in value.items():
        item_path = f'{path}["{key}"]'
        r.string(key, item_path, max_length=ccusage_v20.MAX_PROJECT_KEY, allow_empty=True)
        if info is None:
            continue
        r.obj(info, item_path)
        hashed = info.get("hashed")
        projects[key] = ProjectInfo(
            cwd=_optional_text(r, info, "cwd", item_path, 1000),
            git_remote=_optional_text(r, info, "git_remote", item_path, 1000),
            name=_optional_text(r, info, "name", item_path, 200).strip(),
            hashed=r.boolean(hashed, f"{item_path}.hashed") if hashed is not None else False,
        )
    return projects


def _optional_text(r: Reader, o: dict, key: str, path: str, max_length: int) -> str:
    value = o.get(key)
    if value is None:
        return ""
    return r.string(value, f"{path}.{key}", max_length=max_length, allow_empty=True)


@cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())
