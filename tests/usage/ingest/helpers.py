"""Ingest helpers: envelopes from the recorded ccusage fixtures, posting them, real ccusage runs.

The fixture set's constants (MANIFEST, ROLES, WEBAPP, API_SERVER, INFRA, ACTIVE_SESSION) live here
too; agent/tests and other areas import them from this module.
"""

import gzip
import json
import os
import subprocess
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from telemetry_site.synthetic_logs import parse_anchor, write_home
from tests.conftest import FIXTURES, ROOT, fixture_manifest
from tests.usage import ccusage_runs
from usage.ingest.pipeline import archive, process_batch
from usage.models import IngestBatch

OUTPUT = FIXTURES / "output"
OUTPUT_V18 = FIXTURES / "output-v18.0.11"
CCUSAGE = ROOT / "node_modules" / ".bin" / "ccusage"
MANIFEST = fixture_manifest()
# The anchor the fixture logs were generated with: their data ends the day before.
ANCHOR = MANIFEST["anchor"]
ROLES = MANIFEST["roles"]
# The fixture's project keys (ccusage's folder names) by their last path part.
PROJECT_KEYS = {info["cwd"].rsplit("/", 1)[-1]: key for key, info in MANIFEST["projects"].items()}
WEBAPP = PROJECT_KEYS["webapp"]
API_SERVER = PROJECT_KEYS["api-server"]
INFRA = PROJECT_KEYS["infra"]
ACTIVE_SESSION = ROLES["active_session"]
# The machine `ingest_reports` reports as.
PIPELINE_MACHINE = uuid.UUID("0b6c3a52-8a0e-4c8f-9a57-3f1f0c1d2e3f")
INGEST_URL = "/api/v1/ingest/"
USAGE_URL = "/api/v1/usage/"

# Every JSON file in output/ and what it is to the server: an accepted kind, or why not.
V20_FILES = {
    "claude-daily-instances.json": "claude_daily_instances",
    "claude-daily-instances-breakdown.json": "claude_daily_instances",
    "claude-daily-instances-project.json": "claude_daily_instances",
    "claude-session.json": "claude_session",
    "claude-session-breakdown.json": "claude_session",
    "claude-session-until.json": "claude_session",
    "empty-claude-session.json": "claude_session",
    # A fresh install: ccusage answers the plain daily shape, {"daily": []}, for --instances.
    "empty-claude-daily-instances.json": "claude_daily_instances",
    "all-daily-by-agent.json": "daily_by_agent",
    "empty-all-daily.json": "daily_by_agent",
    "empty-all-daily-by-agent.json": "daily_by_agent",
    "blocks.json": "blocks",
    "blocks-breakdown.json": "blocks",
    "blocks-recent.json": "blocks",
    "blocks-active.json": "blocks",
    "blocks-active-limit-500k.json": "blocks",
    "blocks-active-limit-max.json": "blocks",
    "blocks-limit-max.json": "blocks",
    "blocks-session-length-3.json": "blocks",
    "blocks-since-until.json": "blocks",
    "blocks-mode-calculate.json": "blocks",
    "empty-blocks.json": "blocks",
    "empty-blocks-active.json": "blocks",
    "empty-blocks-hourly.json": "blocks",
    # Reports the agent does not send: per-day without projects, unified without agents,
    # weekly/monthly roll-ups, one session's entries, Codex-only (daily_by_agent has Codex).
    "claude-daily.json": None,
    "claude-daily-breakdown.json": None,
    "claude-daily-mode-calculate.json": None,
    "claude-daily-mode-display.json": None,
    "claude-daily-order-desc.json": None,
    "claude-daily-project.json": None,
    "claude-daily-since-until.json": None,
    "claude-daily-tz-tokyo.json": None,
    "empty-claude-daily.json": None,
    "claude-weekly.json": None,
    "claude-weekly-monday.json": None,
    "claude-monthly.json": None,
    "claude-monthly-breakdown.json": None,
    "claude-session-id.json": None,
    "all-daily.json": None,
    "all-daily-breakdown.json": None,
    "all-daily-last3.json": None,
    "all-daily-no-cost.json": None,
    "all-daily-sections.json": None,
    "all-daily-since-until.json": None,
    "all-daily-tz-tokyo.json": None,
    "all-weekly.json": None,
    "all-monthly.json": None,
    "all-session.json": None,
    "all-session-by-agent.json": None,
    "all-session-until.json": None,
    "codex-daily.json": None,
    "codex-monthly.json": None,
    "codex-session.json": None,
    "statusline-input.json": None,
}
V18_FILES = {
    "daily-instances.json": "claude_daily_instances",
    "session.json": "claude_session",
    "blocks.json": "blocks",
    "blocks-active.json": "blocks",
    "blocks-active-limit-500k.json": "blocks",
}


def load(path: Path):
    """A fixture file as the server reads it: floats as exact Decimals."""
    return json.loads(path.read_text(), parse_float=Decimal)


def load_raw(path: Path):
    """A fixture file as an agent would embed it verbatim (plain JSON values)."""
    return json.loads(path.read_text())


def envelope(reports: dict, *, machine_uuid=None, name="laptop", version="20.0.24", **extra):
    body = {
        "schema": 1,
        "machine": {
            "uuid": str(machine_uuid or uuid.uuid4()),
            "name": name,
            "hostname": f"{name}.local",
            "os": "Linux 6.1 x86_64",
            "agent_version": "0.1.0",
            "ccusage_version": version,
            "timezone": "UTC",
        },
        "full": True,
        "since": None,
        "reports": reports,
        "projects": {},
    }
    body.update(extra)
    return body


def encode(body) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def post(client, body, *, gzip_it=True, **headers):
    """POST an envelope (dict) or raw bytes to the ingest endpoint."""
    data = body if isinstance(body, bytes) else encode(body)
    if gzip_it and not isinstance(body, bytes):
        data = gzip.compress(data, mtime=0)
        headers.setdefault("HTTP_CONTENT_ENCODING", "gzip")
    return client.post(INGEST_URL, data=data, content_type="application/json", **headers)


def fixture_reports(directory: Path = OUTPUT, *, hourly=None) -> dict:
    reports = {
        "claude_daily_instances": load_raw(directory / "claude-daily-instances.json"),
        "claude_session": load_raw(directory / "claude-session.json"),
        "daily_by_agent": load_raw(directory / "all-daily-by-agent.json"),
    }
    if hourly is not None:
        reports["blocks_hourly"] = hourly
    return reports


def expected_totals(directory: Path) -> dict:
    """What ccusage says one machine used: Claude per project plus every other agent."""
    claude = load(directory / "claude-daily-instances.json")["totals"]
    tokens, cost = claude["totalTokens"], claude["totalCost"]
    by_agent = directory / "all-daily-by-agent.json"
    if by_agent.exists():
        for row in load(by_agent)["daily"]:
            for agent in row.get("agents", []):
                if agent["agent"] != "claude":
                    tokens += agent["totalTokens"]
                    cost += agent["totalCost"]
    return {"total_tokens": tokens, "cost_usd": cost}


def cents(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def need_ccusage():
    if not CCUSAGE.exists():
        pytest.skip(
            f"real ccusage binary missing at {CCUSAGE.relative_to(ROOT)} (run `make install`)"
        )


def ccusage_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XDG_CONFIG_HOME"}
    env.update(
        HOME=str(home),
        CLAUDE_CONFIG_DIR=f"{home}/.claude,{home}/.config/claude",
        CODEX_HOME=f"{home}/.codex",
        TZ="UTC",
        NO_COLOR="1",
    )
    return env


def run_ccusage(home: Path, *args: str):
    result = subprocess.run(
        [str(CCUSAGE), *args, "--json", "--offline"],
        env=ccusage_env(home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def ccusage_reports(home: Path) -> dict:
    """The four JSON reports the agent sends, from the real ccusage on `home`."""
    return {
        "claude_daily_instances": run_ccusage(home, "claude", "daily", "--instances"),
        "claude_session": run_ccusage(home, "claude", "session"),
        "blocks_hourly": run_ccusage(home, "blocks", "--session-length", "1"),
        "daily_by_agent": run_ccusage(home, "daily", "--by-agent"),
    }


def generate_home(tmp: Path, seed: int) -> Path:
    """Synthetic Claude Code and Codex logs for one more machine (the fixture's anchor)."""
    home = tmp / f"home-{seed}"
    write_home(home, anchor=parse_anchor(ANCHOR), seed=seed, days=MANIFEST["days"])
    return home


def ingest_reports(user, reports: dict, *, full: bool = True, capture=None) -> IngestBatch:
    """Archive and process one envelope of `reports` from the laptop, as the ingest task does."""
    body = ccusage_runs.envelope("laptop", PIPELINE_MACHINE, reports, full=full)
    batch = archive(user, None, body)
    process_batch(batch, body=body)
    batch.refresh_from_db()
    return batch


SONNET = "claude-sonnet-4-5-20250929"


def daily_report(project: str, day: str, input_tokens: int, output_tokens: int, *more) -> dict:
    """A `claude daily --instances` report with one row per (project, day, input, output)."""
    projects: dict[str, list] = {}
    for key, date, inp, out in ((project, day, input_tokens, output_tokens), *more):
        counts = {
            "inputTokens": inp,
            "outputTokens": out,
            "cacheCreationTokens": 0,
            "cacheReadTokens": 0,
        }
        breakdown = {"modelName": SONNET, **counts, "cost": 0.01}
        row = {"date": date, **counts, "totalCost": 0.01, "modelBreakdowns": [breakdown]}
        projects.setdefault(key, []).append(row)
    return {"claude_daily_instances": {"projects": projects, "totals": {}}}


def hourly_report(*hours: str) -> dict:
    """A `blocks --session-length 1` report with one 1,000-token entry in each UTC hour."""
    blocks = []
    for hour in hours:
        start = datetime.fromisoformat(hour.replace("Z", "+00:00"))
        blocks.append(
            {
                "startTime": start.isoformat(),
                "endTime": (start + timedelta(hours=1)).isoformat(),
                "actualEndTime": (start + timedelta(minutes=5)).isoformat(),
                "isGap": False,
                "entries": 1,
                "tokenCounts": {"inputTokens": 100, "outputTokens": 900},
                "costUSD": 0.01,
                "models": [SONNET],
            }
        )
    return {"blocks_hourly": {"blocks": blocks}}
