"""What the synthetic logs are made of: models, versions, hours, projects, and how a line is
written (JSON with ISO 8601 millisecond times, as Claude Code writes them)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

# The recorded fixture set (tests/fixtures/ccusage/) was made from exactly these arguments.
FIXTURE_ANCHOR = datetime(2026, 11, 25, 0, 10, tzinfo=UTC)
FIXTURE_SEED = 20261125
FIXTURE_DAYS = 10

# The special cases sit up to 8 days before the anchor's day; fewer days would lose some.
MIN_DAYS = 10

MODELS = {
    "opus": "claude-opus-4-5-20251101",
    "opus41": "claude-opus-4-1-20250805",
    "sonnet": "claude-sonnet-4-5-20250929",
    "sonnet4": "claude-sonnet-4-20250514",
    "haiku": "claude-haiku-4-5-20251001",
}
MODEL_MIXES = (
    ("sonnet", "sonnet", "haiku"),
    ("opus", "haiku"),
    ("sonnet4", "haiku"),
    ("opus41", "sonnet"),
    ("sonnet",),
)
CODEX_MODELS = ("gpt-5.1-codex", "gpt-5.1-codex-mini", "gpt-5.1")
VERSIONS = ("2.0.31", "2.0.37", "2.0.42")
LEGACY_VERSION = "1.0.44"
CURRENT_VERSION = "2.0.42"
# Start hours of ordinary sessions; on the usage-limit day only the evening ones, so that
# nothing else shares the limit session's 5-hour block.
HOURS = (8, 9, 10, 11, 13, 14, 15, 16, 19, 21, 23)
EVENING_HOURS = (19, 21, 23)

PROMPTS = (
    "Add pagination to the orders endpoint",
    "Explain why this query is slow and fix it",
    "Write tests for the invoice rounding rules",
    "Update the README with setup instructions",
    "Split the settings module into base and local",
    "Rename the helper and update every caller",
    "Make the CSV export stream instead of loading everything",
)
ANSWERS = (
    "I changed the handler and added a test.",
    "The index was missing; a migration adds it.",
    "Done: the tests cover both rounding modes.",
    "The README now lists the setup steps.",
)
TOOLS = ("Read", "Edit", "Write", "Bash", "Grep", "Glob")


@dataclass(frozen=True)
class Project:
    """A working folder of Claude Code, and the config dir whose projects/ holds its logs."""

    config_dir: str
    cwd: str

    @property
    def key(self) -> str:
        # Claude Code's folder name for a project: every "/" of the path becomes "-".
        return self.cwd.replace("/", "-")

    @property
    def name(self) -> str:
        return self.cwd.rsplit("/", 1)[-1]


WEBAPP = Project(".claude", "/home/dev/src/webapp")
API_SERVER = Project(".claude", "/home/dev/src/api-server")
PIPELINE = Project(".claude", "/home/dev/work/data-pipeline")
# A second Claude config dir, as when CLAUDE_CONFIG_DIR names two of them.
INFRA = Project(".config/claude", "/home/dev/src/infra")
PROJECTS = (WEBAPP, API_SERVER, PIPELINE, INFRA)


def iso_ms(moment: datetime) -> str:
    """Claude Code's timestamp form: UTC with milliseconds."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def line(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)
