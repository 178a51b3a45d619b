"""Synthetic Claude Code and Codex logs, the same bytes for the same seed and anchor.

The tests' recorded ccusage outputs were made from these logs, and `load_demo` feeds them to
the real agent. Standard library only; nothing in them comes from a real person.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from telemetry_site.synthetic_logs.catalog import (
    API_SERVER,
    CODEX_MODELS,
    CURRENT_VERSION,
    EVENING_HOURS,
    FIXTURE_ANCHOR,
    FIXTURE_DAYS,
    FIXTURE_SEED,
    HOURS,
    INFRA,
    LEGACY_VERSION,
    MIN_DAYS,
    MODEL_MIXES,
    PIPELINE,
    PROJECTS,
    VERSIONS,
    WEBAPP,
    Project,
    iso_ms,
)
from telemetry_site.synthetic_logs.home import _Home, _Session, write_subagents

__all__ = [
    "API_SERVER",
    "FIXTURE_ANCHOR",
    "FIXTURE_DAYS",
    "FIXTURE_SEED",
    "INFRA",
    "PIPELINE",
    "PROJECTS",
    "WEBAPP",
    "Project",
    "parse_anchor",
    "write_home",
]


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


def parse_anchor(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
