"""The statusline capture and its install in Claude Code's settings.json."""

import json
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from claude_telemetry.claude_settings import (
    SettingsError,
    install_statusline,
    remove_member,
    set_member,
    settings_path,
    uninstall_statusline,
)
from claude_telemetry.config import Home
from claude_telemetry.statusline import (
    append_capture,
    capture_record,
    prune_sent_captures,
    read_new_captures,
)

from tests.conftest import FIXTURES

NOW = datetime(2026, 11, 24, 23, 40, 0, tzinfo=UTC)

# A settings.json as people write them: two-space indent, unicode, keys in their own order.
SETTINGS = """{
  "model": "opus",
  "statusLine": {
    "type": "command",
    "command": "ORIGINAL",
    "padding": 0
  },
  "permissions": {"allow": ["Bash(git diff:*)"], "deny": []},
  "env": {"GREETING": "héllo"}
}
"""


def statusline_input(**extra) -> dict:
    payload = json.loads((FIXTURES / "output" / "statusline-input.json").read_text())
    payload["rate_limits"] = {
        "five_hour": {"used_percentage": 42.5, "resets_at": 1795560000},
        "seven_day": {"used_percentage": 12, "resets_at": 1795900000},
        "seven_day_opus": {"used_percentage": 3.5, "resets_at": "2026-11-28T00:00:00Z"},
    }
    payload.update(extra)
    return payload


def test_a_capture_keeps_only_the_session_the_model_and_the_rate_limits():
    payload = statusline_input()
    session_id = payload["session_id"]
    payload["rate_limits"]["five_hour"]["note"] = "secret words"
    record = capture_record(payload, NOW)
    assert record == {
        "captured_at": "2026-11-24T23:40:00Z",
        "session_id": session_id,
        "model": "claude-opus-4-5-20251101",
        "rate_limits": {
            "five_hour": {"used_percentage": 42.5, "resets_at": 1795560000},
            "seven_day": {"used_percentage": 12, "resets_at": 1795900000},
            "seven_day_opus": {"used_percentage": 3.5, "resets_at": "2026-11-28T00:00:00Z"},
        },
    }


def test_an_input_without_rate_limits_is_not_captured(tmp_path):
    payload = json.loads((FIXTURES / "output" / "statusline-input.json").read_text())
    assert capture_record(payload, NOW) is None
    assert append_capture(tmp_path, payload, NOW) is False
    assert not list(tmp_path.iterdir())


def test_the_same_reading_within_a_minute_is_written_once(tmp_path):
    assert append_capture(tmp_path, statusline_input(), NOW)
    assert not append_capture(tmp_path, statusline_input(), NOW + timedelta(seconds=30))
    assert append_capture(tmp_path, statusline_input(), NOW + timedelta(seconds=90))
    changed = statusline_input()
    changed["rate_limits"]["five_hour"]["used_percentage"] = 43
    assert append_capture(tmp_path, changed, NOW + timedelta(seconds=95))
    lines = (tmp_path / "2026-11-24.jsonl").read_text().splitlines()
    assert len(lines) == 3


def test_new_captures_are_read_from_where_the_last_sync_stopped(tmp_path):
    append_capture(tmp_path, statusline_input(), NOW)
    records, offsets = read_new_captures(tmp_path, {})
    assert [r["captured_at"] for r in records] == ["2026-11-24T23:40:00Z"]
    # A line still being written (no newline yet) waits for the next sync.
    with open(tmp_path / "2026-11-24.jsonl", "a") as fh:
        fh.write('{"captured_at": "2026-11-24T23:45:00Z", "rate_')
    again, offsets2 = read_new_captures(tmp_path, offsets)
    assert again == [] and offsets2 == offsets


def test_sent_capture_files_of_past_days_are_removed_and_todays_kept(tmp_path):
    append_capture(tmp_path, statusline_input(), NOW - timedelta(days=3))
    append_capture(tmp_path, statusline_input(), NOW)
    _, offsets = read_new_captures(tmp_path, {})
    kept = prune_sent_captures(tmp_path, offsets, NOW)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-24.jsonl"]
    assert list(kept) == ["2026-11-24.jsonl"]


# --- settings.json ---------------------------------------------------------------------


@pytest.fixture
def claude_dir(tmp_path, monkeypatch):
    first, second = tmp_path / "claude-a", tmp_path / "claude-b"
    first.mkdir()
    second.mkdir()
    # Claude Code reads its settings from the first CLAUDE_CONFIG_DIR folder.
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", f"{first},{second}")
    return first


@pytest.fixture
def home(tmp_path):
    h = Home(tmp_path / "agent", explicit=True)
    h.ensure()
    return h


def original_script(tmp_path) -> str:
    script = tmp_path / "my statusline.py"
    script.write_text(
        "import json, sys\n"
        "data = json.load(sys.stdin)\n"
        "print(f\"[{data['model']['display_name']}] {data['workspace']['current_dir']}\")\n"
    )
    return shlex.join([sys.executable, str(script)])


def test_settings_live_in_the_first_claude_config_dir(claude_dir):
    assert settings_path() == claude_dir / "settings.json"


def test_install_then_uninstall_restores_settings_byte_for_byte(claude_dir, home, tmp_path):
    path = claude_dir / "settings.json"
    original = SETTINGS.replace("ORIGINAL", original_script(tmp_path).replace('"', '\\"'))
    path.write_bytes(original.encode())
    install_statusline(home)
    installed = json.loads(path.read_text())
    assert "statusline-capture" in installed["statusLine"]["command"]
    assert installed["statusLine"]["padding"] == 0
    # Every other member is untouched, byte for byte.
    text = path.read_text()
    assert '  "permissions": {"allow": ["Bash(git diff:*)"], "deny": []},\n' in text
    assert text.endswith('  "env": {"GREETING": "héllo"}\n}\n')
    assert "already installed" in install_statusline(home)
    assert "exactly as it was" in uninstall_statusline(home)
    assert path.read_bytes() == original.encode()
    assert not home.installs_dir.joinpath("statusline.json").exists()


def test_the_wrapper_captures_and_shows_the_users_own_status_line(claude_dir, home, tmp_path):
    path = claude_dir / "settings.json"
    command = original_script(tmp_path)
    path.write_text(json.dumps({"statusLine": {"type": "command", "command": command}}))
    expected = subprocess.run(
        command, shell=True, input=json.dumps(statusline_input()).encode(), capture_output=True
    ).stdout
    install_statusline(home)
    wrapper = json.loads(path.read_text())["statusLine"]["command"]
    shown = subprocess.run(
        wrapper, shell=True, input=json.dumps(statusline_input()).encode(), capture_output=True
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == expected == f"[Opus 4.5] {statusline_input()['cwd']}\n".encode()
    records, _ = read_new_captures(home.captures_dir, {})
    assert [r["rate_limits"]["five_hour"]["used_percentage"] for r in records] == [42.5]
    assert "transcript_path" not in json.dumps(records)


def test_the_wrapper_still_shows_the_status_line_when_the_input_is_not_json(
    claude_dir, home, tmp_path
):
    path = claude_dir / "settings.json"
    path.write_text(json.dumps({"statusLine": {"type": "command", "command": "echo ok"}}))
    install_statusline(home)
    wrapper = json.loads(path.read_text())["statusLine"]["command"]
    shown = subprocess.run(wrapper, shell=True, input=b"{oops", capture_output=True)
    assert shown.stdout == b"ok\n"
    assert "JSONDecodeError" in (home.logs_dir / "statusline-errors.log").read_text()


def test_without_a_settings_file_uninstall_removes_the_one_install_made(claude_dir, home):
    path = claude_dir / "settings.json"
    install_statusline(home)
    assert json.loads(path.read_text())["statusLine"]["type"] == "command"
    uninstall_statusline(home)
    assert not path.exists()


def test_without_a_status_line_the_key_is_added_and_removed_again(claude_dir, home):
    path = claude_dir / "settings.json"
    original = b'{\n    "model": "sonnet"\n}\n'
    path.write_bytes(original)
    install_statusline(home)
    assert path.read_text().startswith('{\n    "model": "sonnet",\n    "statusLine": {\n')
    uninstall_statusline(home)
    assert path.read_bytes() == original


def test_user_edits_made_after_install_survive_uninstall(claude_dir, home):
    path = claude_dir / "settings.json"
    path.write_text(SETTINGS)
    install_statusline(home)
    edited = path.read_text().replace('"model": "opus"', '"model": "sonnet"')
    path.write_text(edited)
    message = uninstall_statusline(home)
    assert "was edited since the install" in message
    data = json.loads(path.read_text())
    assert data["model"] == "sonnet"
    assert data["statusLine"] == {"type": "command", "command": "ORIGINAL", "padding": 0}


def test_an_invalid_settings_file_is_left_alone(claude_dir, home):
    path = claude_dir / "settings.json"
    path.write_text('{"model": "opus",}')
    with pytest.raises(SettingsError, match="not valid JSON"):
        install_statusline(home)
    assert path.read_text() == '{"model": "opus",}'
    assert not home.installs_dir.joinpath("statusline.json").exists()


def test_uninstall_without_install_says_so(claude_dir, home):
    with pytest.raises(SettingsError, match="not installed"):
        uninstall_statusline(home)


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        '{"a": 1}',
        '{\n  "a": 1,\n  "b": [1, 2]\n}\n',
        '{"a":1,"b":{"c":2}}',
        '\t{\n\t"a": 1\n}',
    ],
)
def test_adding_then_removing_a_member_gives_back_the_same_text(text):
    added = set_member(text, "statusLine", {"type": "command", "command": "x"})
    assert json.loads(added)["statusLine"]["command"] == "x"
    if text != "{}":
        assert remove_member(added, "statusLine") == text


def test_the_capture_command_line_round_trip_through_the_cli(claude_dir, cli, agent_env):
    env = {"CLAUDE_CONFIG_DIR": str(claude_dir)}
    path = claude_dir / "settings.json"
    path.write_bytes(SETTINGS.replace("ORIGINAL", "echo hi").encode())
    done = cli("install-statusline", env=env)
    assert done.code == 0, done.output
    wrapper = json.loads(path.read_text())["statusLine"]["command"]
    shown = subprocess.run(
        wrapper, shell=True, input=json.dumps(statusline_input()).encode(), capture_output=True
    )
    assert shown.stdout == b"hi\n"
    done = cli("install-statusline", "--uninstall", env=env)
    assert done.code == 0, done.output
    assert path.read_bytes() == SETTINGS.replace("ORIGINAL", "echo hi").encode()
