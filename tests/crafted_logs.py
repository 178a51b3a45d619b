"""Claude Code transcript lines at instants a test chooses, and the real ccusage run on them.

For rules that hinge on exact instants (block boundaries, first entries, burn rates), where the
seeded synthetic logs cannot put a line exactly where a test needs one. Run ccusage on them
with tests.usage.ccusage_runs.run_ccusage.
"""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

SONNET = "claude-sonnet-4-5-20250929"


def iso_ms(moment: datetime) -> str:
    """Claude Code's timestamp form: UTC with milliseconds."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def assistant_line(
    at: datetime,
    *,
    session_id: str,
    input_tokens: int = 1_000,
    output_tokens: int = 100,
    model: str = SONNET,
    message_id: str | None = None,
    request_id: str | None = None,
) -> str:
    """One assistant message with usage, as Claude Code writes it (compact JSON: ccusage
    20.0.24 skips lines written with spaces after the separators)."""
    record = {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": "/home/dev/src/app",
        "sessionId": session_id,
        "version": "2.0.42",
        "type": "assistant",
        "message": {
            "model": model,
            "id": message_id or f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "Done."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": output_tokens,
            },
        },
        "requestId": request_id or f"req_{uuid.uuid4().hex[:24]}",
        "uuid": str(uuid.uuid4()),
        "timestamp": iso_ms(at),
    }
    return json.dumps(record, separators=(",", ":"))


def write_session(config_dir: Path, lines: list[str], session_id: str | None = None) -> str:
    """A transcript file under `config_dir/projects/`; returns its session id."""
    session_id = session_id or str(uuid.uuid4())
    folder = config_dir / "projects" / "-home-dev-src-app"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{session_id}.jsonl").open("a", encoding="utf-8") as out:
        out.writelines(line + "\n" for line in lines)
    return session_id
