"""Synthetic Claude Code and Codex logs, the same bytes for the same seed and anchor.

The tests' recorded ccusage outputs were made from these logs, and `load_demo` feeds them to
the real agent. Standard library only; nothing in them comes from a real person.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


@dataclass
class _Session:
    project: Project
    session_id: str
    version: str
    sidechain: bool = False
    agent_id: str | None = None
    legacy_cost: bool = False


class _Home:
    """One generated home: a seeded random source, stable ids, and the files to write."""

    def __init__(self, seed: int):
        self.seed = seed
        self.rng = random.Random(seed)
        self.count = 0
        self.files: dict[str, tuple[list[str], datetime]] = {}

    def token(self) -> str:
        # Ids come from a hash of (seed, counter), never from the clock or os.urandom.
        self.count += 1
        return hashlib.sha256(f"{self.seed}:{self.count}".encode()).hexdigest()

    def uuid(self) -> str:
        return str(uuid.UUID(hex=self.token()[:32], version=4))

    def add(self, relative: str, lines: list[str], modified: datetime) -> None:
        """A file to write, and when it was last written (its mtime, as a real log's)."""
        self.files[relative] = (lines, modified)

    # --- Claude Code transcripts --------------------------------------------------------

    def claude_path(self, project: Project, name: str) -> str:
        return f"{project.config_dir}/projects/{project.key}/{name}.jsonl"

    def usage(self, model: str, context: int, first: bool) -> dict:
        rng = self.rng
        created = (
            rng.randint(2_000, 24_000) if first else rng.choice((0, 0, rng.randint(300, 5_000)))
        )
        output = rng.randint(20, 450) if model == "haiku" else rng.randint(50, 2_400)
        return {
            "input_tokens": rng.randint(1, 50),
            "cache_creation_input_tokens": created,
            "cache_read_input_tokens": 0 if first else context,
            "cache_creation": {
                "ephemeral_5m_input_tokens": created,
                "ephemeral_1h_input_tokens": 0,
            },
            "output_tokens": output,
            "service_tier": "standard",
        }

    def conversation(
        self,
        session: _Session,
        start: datetime,
        turns: int,
        models: tuple[str, ...],
        *,
        step: tuple[int, int] = (1, 6),
        fast_turn: int | None = None,
        replayable: list[str] | None = None,
    ) -> tuple[list[str], datetime]:
        """A session's lines: user turns and assistant answers, some streamed as two lines.

        Returns the lines and the time of the last one. Complete assistant lines are also
        appended to `replayable`, for a later session that resumes this one.
        """
        rng = self.rng
        lines: list[str] = []
        if not session.sidechain and rng.random() < 0.5:
            summary = {"type": "summary", "summary": rng.choice(PROMPTS), "leafUuid": self.uuid()}
            lines.append(line(summary))
        common = {
            "isSidechain": session.sidechain,
            "userType": "external",
            "cwd": session.project.cwd,
            "sessionId": session.session_id,
            "version": session.version,
            "gitBranch": "main",
        }
        if session.agent_id:
            common["agentId"] = session.agent_id
        moment, parent, context, last_at = start, None, 0, start
        for turn in range(turns):
            user_id = self.uuid()
            if turn == 0 or rng.random() < 0.3:
                content: str | list = rng.choice(PROMPTS)
            else:
                content = [{"type": "tool_result", "tool_use_id": f"toolu_01{self.token()[:24]}"}]
                content[0]["content"] = "ok"
            user = {"parentUuid": parent, **common, "type": "user", "uuid": user_id}
            user["message"] = {"role": "user", "content": content}
            user["timestamp"] = iso_ms(moment)
            lines.append(line(user))
            parent = user_id
            moment += timedelta(seconds=rng.randint(4, 45), milliseconds=rng.randint(0, 999))

            model = rng.choice(models)
            usage = self.usage(model, context, turn == 0)
            context = min(
                context + usage["cache_creation_input_tokens"] + rng.randint(400, 3_500), 190_000
            )
            if turn == fast_turn:
                usage["speed"] = "fast"
            message_id = f"msg_01{self.token()[:24]}"
            request_id = f"req_011C{self.token()[:20]}"
            text: dict[str, Any] = {"type": "text", "text": rng.choice(ANSWERS)}
            tool: dict[str, Any] = {
                "type": "tool_use",
                "id": f"toolu_01{self.token()[:24]}",
                "name": rng.choice(TOOLS),
                "input": {"file_path": f"{session.project.cwd}/src/app.py"},
            }

            # Both lines of a streamed message share the model, message id and request id.
            head = {"model": MODELS[model], "id": message_id, "type": "message"}

            def answer(parent_id, body, tokens, stop, when, uid, head=head, rid=request_id):
                record = {"parentUuid": parent_id, **common, "type": "assistant"}
                record["message"] = {
                    **head,
                    "role": "assistant",
                    "content": body,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": tokens,
                }
                record.update(requestId=rid, uuid=uid, timestamp=iso_ms(when))
                if session.legacy_cost:
                    # Old Claude Code versions logged their own cost on each line.
                    record["costUSD"] = round(rng.uniform(0.002, 0.35), 6)
                return record

            if rng.random() < 0.35:
                # Streaming: the first line of a message has a partial output count, the
                # second (same message id and request id) the final one.
                partial = {**usage, "output_tokens": rng.randint(1, 12)}
                first_id = self.uuid()
                lines.append(line(answer(parent, [text], partial, None, moment, first_id)))
                parent = first_id
                moment += timedelta(milliseconds=rng.randint(150, 2_400))
                body = [tool]
            else:
                body = [rng.choice((text, tool))]
            stop = "tool_use" if body[0]["type"] == "tool_use" else "end_turn"
            answer_id = self.uuid()
            final = line(answer(parent, body, usage, stop, moment, answer_id))
            lines.append(final)
            if replayable is not None:
                replayable.append(final)
            parent, last_at = answer_id, moment
            moment += timedelta(minutes=rng.randint(*step), seconds=rng.randint(0, 59))
        return lines, last_at

    def limit_and_broken_lines(self, session: _Session, at: datetime, reset: datetime) -> list[str]:
        """The usage-limit API error, then lines ccusage drops without a word."""
        common: dict[str, Any] = {
            "parentUuid": None,
            "isSidechain": False,
            "userType": "external",
            "cwd": session.project.cwd,
            "sessionId": session.session_id,
            "version": session.version,
            "gitBranch": "main",
        }
        zero = {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        limit = {**common, "type": "assistant", "uuid": self.uuid(), "timestamp": iso_ms(at)}
        limit["message"] = {
            "id": f"msg_01{self.token()[:24]}",
            "model": "<synthetic>",
            "role": "assistant",
            "type": "message",
            "stop_reason": "stop_sequence",
            "stop_sequence": "",
            "usage": zero,
            "content": [
                {"type": "text", "text": f"Claude AI usage limit reached|{int(reset.timestamp())}"}
            ],
        }
        limit["isApiErrorMessage"] = True

        def valid(offset_minutes: int) -> dict:
            record = {**common, "type": "assistant", "uuid": self.uuid()}
            record["timestamp"] = iso_ms(at + timedelta(minutes=offset_minutes))
            record["requestId"] = f"req_011C{self.token()[:20]}"
            record["message"] = {
                "model": MODELS["sonnet"],
                "id": f"msg_01{self.token()[:24]}",
                "type": "message",
                "role": "assistant",
                "content": [],
                "usage": {**zero, "input_tokens": 10, "output_tokens": 10},
            }
            return record

        cut = line(valid(1))
        string_tokens = valid(2)
        string_tokens["message"]["usage"]["input_tokens"] = "12"
        no_model = valid(3)
        no_model["message"]["model"] = None
        microseconds = valid(4)
        # ccusage accepts second or millisecond precision only.
        microseconds["timestamp"] = (at + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        not_semver = valid(5)
        not_semver["version"] = "dev-build"
        return [
            line(limit),
            cut[: len(cut) // 2],  # a write cut short
            "this is not json at all",
            "",
            line(string_tokens),
            line(no_model),
            line(microseconds),
            line(not_semver),
        ]

    # --- Codex rollouts ------------------------------------------------------------------

    def codex_rollout(self, start: datetime, model: str, cwd: str) -> str:
        """One Codex CLI session; its token_count events carry running totals."""
        rng = self.rng
        session_id = self.uuid()
        lines = [
            line(
                {
                    "timestamp": iso_ms(start),
                    "type": "session_meta",
                    "payload": {
                        "id": session_id,
                        "timestamp": iso_ms(start),
                        "cwd": cwd,
                        "originator": "codex_cli_rs",
                        "cli_version": "0.63.0",
                        "source": "cli",
                        "model_provider": "openai",
                    },
                }
            ),
            line(
                {
                    "timestamp": iso_ms(start),
                    "type": "turn_context",
                    "payload": {
                        "cwd": cwd,
                        "approval_policy": "on-request",
                        "model": model,
                        "effort": "medium",
                        "summary": "auto",
                    },
                }
            ),
        ]
        keys = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")
        running = dict.fromkeys((*keys, "total_tokens"), 0)
        moment = start
        for turn in range(rng.randint(4, 8)):
            moment += timedelta(minutes=rng.randint(1, 4), seconds=rng.randint(0, 59))
            fresh = rng.randint(2_500, 28_000)
            output = rng.randint(120, 2_800)
            last = {
                "input_tokens": fresh,
                "cached_input_tokens": int(fresh * rng.uniform(0.3, 0.9)) if turn else 0,
                "output_tokens": output,
                "reasoning_output_tokens": int(output * rng.uniform(0.1, 0.6)),
                "total_tokens": fresh + output,
            }
            for key in running:
                running[key] += last[key]
            stamp = iso_ms(moment)
            lines.append(
                line(
                    {
                        "timestamp": stamp,
                        "type": "response_item",
                        "payload": {
                            "type": "message",
                            "role": "assistant",
                            "content": [{"type": "output_text", "text": rng.choice(ANSWERS)}],
                        },
                    }
                )
            )
            info = {
                "total_token_usage": dict(running),
                "last_token_usage": last,
                "model_context_window": 272_000,
            }
            lines.append(
                line(
                    {
                        "timestamp": stamp,
                        "type": "event_msg",
                        "payload": {"type": "token_count", "info": info, "rate_limits": None},
                    }
                )
            )
        stamp = start.strftime("%Y-%m-%dT%H-%M-%S")
        relative = f".codex/sessions/{start:%Y/%m/%d}/rollout-{stamp}-{session_id}.jsonl"
        self.add(relative, lines, moment)
        return session_id


def write_home(
    home: Path, *, anchor: datetime, seed: int = FIXTURE_SEED, days: int = FIXTURE_DAYS
) -> dict:
    """Write `days` days of synthetic logs ending shortly before `anchor` under `home`.

    `home` plays $HOME: Claude Code transcripts go under `.claude/projects/` and
    `.config/claude/projects/`, Codex rollouts under `.codex/sessions/`. The same arguments
    always give byte-identical files. Existing files of the same names are overwritten.

    Returns a manifest (JSON-ready): the arguments, every project, which session plays which
    role (legacy costs, subagents, fast mode, replay, usage limit, active) and the line count.
    """
    if anchor.tzinfo is None:
        raise ValueError("anchor must be timezone-aware")
    if days < MIN_DAYS:
        raise ValueError(f"days must be at least {MIN_DAYS}")
    anchor = anchor.astimezone(UTC)
    gen = _Home(seed)
    rng = gen.rng
    first_day = (anchor - timedelta(days=days - 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    last = days - 1  # the anchor's own day
    # Where the special cases sit, counted from the first day (the anchor's day is `last`).
    legacy_days = (0, 1)
    replay_day, subagent_day, fast_day = last - 6, last - 5, last - 4
    resume_day, limit_day = last - 3, last - 2
    codex_days = (last - 7, last - 3, last - 1)

    roles: dict = {"legacy_costUSD_sessions": []}
    replayable: list[str] = []
    sessions = 0

    # Ordinary days: one to three sessions each, none later than 8 hours before the anchor
    # (the active session below is then alone in its block).
    for index in range(days):
        day = first_day + timedelta(days=index)
        for number in range(rng.randint(1, 3)):
            project = rng.choice(PROJECTS)
            hour = rng.choice(EVENING_HOURS if index == limit_day else HOURS)
            start = day + timedelta(
                hours=hour, minutes=rng.randint(0, 59), seconds=rng.randint(0, 59)
            )
            models = rng.choice(MODEL_MIXES)
            turns = rng.randint(8, 22)
            version = rng.choice(VERSIONS)
            if start > anchor - timedelta(hours=8):
                continue
            leading = number == 0
            legacy = leading and index in legacy_days
            if leading and index in (*legacy_days, subagent_day):
                project = WEBAPP
            if leading and index == replay_day:
                # Claude Code resumes a session in its own project folder.
                project = API_SERVER
            if leading and index == fast_day:
                models = ("opus",)
            session = _Session(project, gen.uuid(), LEGACY_VERSION if legacy else version)
            session.legacy_cost = legacy
            lines, end = gen.conversation(
                session,
                start,
                turns,
                models,
                fast_turn=2 if leading and index == fast_day else None,
                replayable=replayable if leading and index == replay_day else None,
            )
            gen.add(gen.claude_path(project, session.session_id), lines, end)
            sessions += 1
            if legacy:
                roles["legacy_costUSD_sessions"].append(session.session_id)
            if leading and index == fast_day:
                roles["fast_speed_session"] = session.session_id
            if leading and index == replay_day:
                roles["replayed_session"] = session.session_id
            if leading and index == subagent_day:
                roles["session_with_subagents"] = session.session_id
                roles["subagent_transcripts"] = write_subagents(gen, session, start)

    # A resumed session: Claude Code copies the earlier session's answers into the new file.
    session = _Session(API_SERVER, gen.uuid(), CURRENT_VERSION)
    start = first_day + timedelta(days=resume_day, hours=10, minutes=3)
    lines, end = gen.conversation(session, start, 6, ("sonnet",))
    gen.add(gen.claude_path(API_SERVER, session.session_id), replayable[:5] + lines, end)
    roles["resumed_session_with_replayed_duplicates"] = session.session_id
    roles["replayed_lines"] = min(5, len(replayable))
    sessions += 1

    # A session that hit the usage limit: its block starts at 14:00 and resets at 16:00.
    session = _Session(WEBAPP, gen.uuid(), CURRENT_VERSION)
    block = first_day + timedelta(days=limit_day, hours=14)
    lines, end = gen.conversation(session, block + timedelta(minutes=2), 5, ("opus",), step=(1, 5))
    reset = block + timedelta(hours=2)
    lines += gen.limit_and_broken_lines(session, end + timedelta(minutes=1), reset)
    gen.add(gen.claude_path(WEBAPP, session.session_id), lines, end + timedelta(minutes=6))
    roles["session_with_malformed_and_usage_limit_lines"] = session.session_id
    roles["usage_limit_block"] = iso_ms(block)
    roles["usage_limit_reset"] = iso_ms(reset)
    sessions += 1

    # The active session: starts 2 h 05 before the anchor, its last answer about 25 min before.
    session = _Session(API_SERVER, gen.uuid(), CURRENT_VERSION)
    start = anchor - timedelta(hours=2, minutes=5)
    lines, end = gen.conversation(session, start, 12, ("opus", "sonnet", "haiku"), step=(8, 8))
    gen.add(gen.claude_path(API_SERVER, session.session_id), lines, end)
    roles["active_session"] = session.session_id
    roles["active_session_project"] = API_SERVER.key
    roles["active_session_cwd"] = API_SERVER.cwd
    sessions += 1

    roles["codex_sessions"] = [
        gen.codex_rollout(
            first_day + timedelta(days=day, hours=15, minutes=12), model, API_SERVER.cwd
        )
        for day, model in zip(codex_days, CODEX_MODELS, strict=True)
    ]

    total, digest = 0, hashlib.sha256()
    for relative, (lines, modified) in sorted(gen.files.items()):
        data = ("\n".join(lines) + "\n").encode()
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        # Tools that look for the newest transcript go by mtime, as on a real machine.
        stamp = modified.timestamp()
        os.utime(path, (stamp, stamp))
        total += len(lines)
        digest.update(f"{relative}\0{len(data)}\0".encode() + data)
    return {
        "anchor": anchor.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seed": seed,
        "days": days,
        "first_day": first_day.date().isoformat(),
        "projects": {p.key: {"cwd": p.cwd, "config_dir": p.config_dir} for p in PROJECTS},
        "claude_sessions": sessions,
        "roles": roles,
        "files": len(gen.files),
        "total_lines": total,
        # Of every file's path and bytes: equal digests mean byte-identical homes.
        "sha256": digest.hexdigest(),
    }


def write_subagents(gen: _Home, parent: _Session, start: datetime) -> list[str]:
    """Two sidechain transcripts of one session: a plain subagent and one inside a workflow."""
    written = []
    folders = ("subagents", f"subagents/workflows/wf_{gen.token()[:8]}")
    for offset, (folder, turns) in enumerate(zip(folders, (6, 4), strict=True)):
        agent_id = gen.token()[:8]
        session = _Session(parent.project, parent.session_id, parent.version, True, agent_id)
        when = start + timedelta(minutes=5 + 20 * offset)
        lines, end = gen.conversation(session, when, turns, ("haiku", "sonnet"), step=(0, 1))
        relative = f"{parent.project.config_dir}/projects/{parent.project.key}/{parent.session_id}"
        relative += f"/{folder}/agent-{agent_id}.jsonl"
        gen.add(relative, lines, end)
        written.append(relative.split("/projects/", 1)[1])
    return written


def parse_anchor(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m telemetry_site.synthetic_logs", description=write_home.__doc__
    )
    parser.add_argument("home", type=Path, help="the folder that plays $HOME")
    parser.add_argument(
        "--anchor",
        type=parse_anchor,
        default=FIXTURE_ANCHOR,
        help="'now' for the logs, as YYYY-MM-DDTHH:MM:SSZ (default: the fixture anchor)",
    )
    parser.add_argument("--seed", type=int, default=FIXTURE_SEED)
    parser.add_argument("--days", type=int, default=FIXTURE_DAYS)
    parser.add_argument("--manifest", type=Path, help="also write the manifest to this file")
    args = parser.parse_args(argv)
    try:
        manifest = write_home(args.home, anchor=args.anchor, seed=args.seed, days=args.days)
    except ValueError as error:
        parser.error(str(error))
    text = json.dumps(manifest, indent=2) + "\n"
    if args.manifest:
        args.manifest.write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
