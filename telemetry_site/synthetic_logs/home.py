"""The writer of one synthetic home: sessions, streamed and replayed lines, subagents, legacy
cost lines, limit lines, malformed lines and Codex rollouts."""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telemetry_site.synthetic_logs.catalog import (
    ANSWERS,
    MODELS,
    PROMPTS,
    TOOLS,
    Project,
    iso_ms,
    line,
)


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
