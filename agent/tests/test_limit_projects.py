"""How the hooks find a session's project among a status's project budgets, with the folder
names Claude Code gives projects under ~/.claude/projects/ (examples from its issue tracker)."""

from __future__ import annotations

import pytest
from claude_telemetry.limits import (
    HASH_SALT_KEY,
    _encode_folder,
    applies,
    live_checks,
    now_utc,
    session_project_keys,
)
from claude_telemetry.projects import hashed_name


@pytest.mark.parametrize(
    ("cwd", "folder"),
    [
        # anthropics/claude-code#24067: underscores become dashes too.
        (
            "/home/chris/2_project-files/projects/m2-clients/101-cal",
            "-home-chris-2-project-files-projects-m2-clients-101-cal",
        ),
        # anthropics/claude-code#18829: a Windows folder, drive colon and backslashes.
        ("C:\\git\\cc-plus", "C--git-cc-plus"),
        # anthropics/claude-code#9221: spaces.
        (
            "/Users/foo/Projects/Open Source/checkmate",
            "-Users-foo-Projects-Open-Source-checkmate",
        ),
        # One dash per character, letters outside ASCII included.
        ("/home/dev/Проект", "-home-dev-------"),
    ],
)
def test_a_working_folder_is_encoded_as_claude_code_names_it(cwd, folder):
    assert _encode_folder(cwd) == folder


def test_the_transcripts_folder_is_the_key_wherever_the_session_went():
    payload = {
        "transcript_path": "/home/dev/.claude/projects/-home-dev-src-app/abc.jsonl",
        "cwd": "/home/dev/src/app/lib",
    }
    assert session_project_keys(payload, {}) == {"-home-dev-src-app", "-home-dev-src-app-lib"}
    windows = {"transcript_path": "C:\\Users\\dev\\.claude\\projects\\C--src-app\\abc.jsonl"}
    assert session_project_keys(windows, {}) == {"C--src-app"}
    assert session_project_keys({"cwd": 7, "transcript_path": None}, {}) == set()


def test_with_hashed_names_the_keys_are_the_agents_salted_hashes():
    payload = {"transcript_path": "/h/.claude/projects/-src-app/abc.jsonl"}
    keys = session_project_keys(payload, {HASH_SALT_KEY: "pepper"})
    assert keys == {hashed_name("-src-app", "pepper")}


def test_a_project_check_holds_in_its_project_only():
    check = {"level": "stop", "project": {"keys": ["-src-app", "-src-app-old"]}}
    assert applies(check, {"-src-app-old"})
    assert not applies(check, {"-src-other"})
    assert not applies(check, set())  # the session's project is unknown: not stopped
    assert applies(check, None)  # listing every limit (`claude-telemetry limits`)
    assert not applies({"project": {"keys": "-src-app"}}, {"-src-app"})  # damaged: fail open
    assert applies({"level": "stop", "project": None}, set())  # not a project budget
    status = {"checks": [check, {"level": "warn", "project": None, "subject": "team"}]}
    assert [c["level"] for c in live_checks(status, now_utc(), {"-src-other"})] == ["warn"]
