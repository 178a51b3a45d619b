"""Run the real ccusage on generated Claude homes, the way the agent does on each machine."""

import json
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from telemetry_site.synthetic_logs import write_home
from tests.conftest import ROOT

CCUSAGE = ROOT / "node_modules" / ".bin" / "ccusage"


def require_ccusage() -> Path:
    if not CCUSAGE.exists():
        pytest.skip(f"the pinned ccusage is not installed at {CCUSAGE} (run `make install`)")
    return CCUSAGE


def generate_home(fixtures_dir: Path, home: Path, *, seed: int, anchor: datetime) -> Path:
    """A synthetic Claude home from the project's generator (deterministic per seed and anchor).

    `fixtures_dir` is no longer read; the parameter keeps the callers unchanged.
    """
    # Whole seconds, as the generator's command line takes them.
    write_home(home, anchor=anchor.astimezone(UTC).replace(microsecond=0), seed=seed)
    return home


def claude_dirs(home: Path) -> list[Path]:
    return [home / ".claude", home / ".config" / "claude"]


def run_ccusage(homes: list[Path], *args: str, cwd: Path) -> dict:
    """ccusage's JSON for the Claude logs of all `homes` at once (one home = one machine).

    `cwd` must be a folder without a .ccusage config, so nothing but the arguments counts.
    """
    binary = require_ccusage()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(homes[0]),
        "CLAUDE_CONFIG_DIR": ",".join(str(d) for h in homes for d in claude_dirs(h)),
        "CODEX_HOME": str(homes[0] / ".codex"),
        "TZ": "UTC",
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        [str(binary), *args, "--json", "--offline"],
        env=env,
        cwd=cwd,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return json.loads(done.stdout)


def envelope(name: str, machine_uuid: uuid.UUID, reports: dict, *, full: bool = True) -> bytes:
    """The agent's envelope around raw ccusage outputs."""
    return json.dumps(
        {
            "schema": 1,
            "machine": {
                "uuid": str(machine_uuid),
                "name": name,
                "hostname": name,
                "os": "Linux 6.1 x86_64",
                "agent_version": "0.1.0",
                "ccusage_version": "20.0.24",
                "timezone": "UTC",
            },
            "full": full,
            "since": None,
            "reports": reports,
            "projects": {},
        }
    ).encode()


def hourly_report(hours: list[str]) -> dict:
    """A `ccusage blocks --session-length 1` report: one block per hour ("2026-11-20T10")."""
    blocks = []
    for value in hours:
        start = datetime.fromisoformat(value + ":00:00+00:00")

        def iso(moment):
            return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")

        blocks.append(
            {
                "id": iso(start),
                "startTime": iso(start),
                "endTime": iso(start + timedelta(hours=1)),
                "actualEndTime": iso(start + timedelta(minutes=30)),
                "isActive": False,
                "isGap": False,
                "entries": 2,
                "tokenCounts": {
                    "inputTokens": 10,
                    "outputTokens": 20,
                    "cacheCreationInputTokens": 0,
                    "cacheReadInputTokens": 70,
                },
                "totalTokens": 100,
                "costUSD": 0.25,
                "models": ["claude-sonnet-4-5-20250929"],
                "burnRate": None,
                "projection": None,
            }
        )
    return {"blocks": blocks}
