"""The optional SessionEnd hook: installed next to the user's own hooks, removed exactly."""

import json

import pytest
from claude_telemetry.claude_settings import install_hooks, uninstall_hooks
from claude_telemetry.config import Home

SETTINGS = """{
  "hooks": {
    "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "audit.sh"}]}],
    "SessionEnd": [{"hooks": [{"type": "command", "command": "notify-send bye"}]}]
  },
  "model": "opus"
}
"""


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude"))
    (tmp_path / "claude").mkdir()
    return tmp_path / "claude" / "settings.json"


@pytest.fixture
def home(tmp_path):
    return Home(tmp_path / "agent")


def test_the_hook_is_added_after_the_users_own_and_removed_byte_for_byte(settings, home):
    settings.write_text(SETTINGS)
    install_hooks(home)
    data = json.loads(settings.read_text())
    session_end = data["hooks"]["SessionEnd"]
    assert session_end[0] == {"hooks": [{"type": "command", "command": "notify-send bye"}]}
    assert "hook-session-end" in session_end[1]["hooks"][0]["command"]
    assert data["hooks"]["PreToolUse"][0]["matcher"] == "Bash"
    assert "already installed" in install_hooks(home)
    uninstall_hooks(home)
    assert settings.read_text() == SETTINGS


def test_after_other_edits_only_the_hook_is_removed(settings, home):
    settings.write_text('{"model": "opus"}\n')
    install_hooks(home)
    settings.write_text(settings.read_text().replace('"opus"', '"sonnet"'))
    uninstall_hooks(home)
    assert json.loads(settings.read_text()) == {"model": "sonnet"}


def test_a_hooks_member_that_is_not_an_object_is_refused(settings, home):
    settings.write_text('{"hooks": []}')
    with pytest.raises(Exception, match="not an object"):
        install_hooks(home)
    assert settings.read_text() == '{"hooks": []}'


def test_the_hook_starts_at_most_one_sync_per_few_minutes(cli, agent_env, tmp_path):
    agent_home = tmp_path / "agent"
    first = cli("hook-session-end", stdin=b'{"session_id": "x", "reason": "exit"}')
    assert first.code == 0, first.output
    marker = agent_home / "hook-last-trigger"
    stamp = marker.stat().st_mtime_ns
    second = cli("hook-session-end", stdin=b"{}")
    assert second.code == 0
    assert marker.stat().st_mtime_ns == stamp


USER_HOOKS = """{
    "hooks": {
        "UserPromptSubmit": [
            {"hooks": [{"type": "command", "command": "~/bin/prompt-guard", "timeout": 3}]}
        ],
        "SessionStart": [{"matcher": "startup", "hooks": [{"type": "command", "command": "motd"}]}]
    },
    "statusLine": {"type": "command", "command": "echo hi"}
}"""


@pytest.mark.parametrize("original", [USER_HOOKS, '{"model": "opus"}', "{}", '{"a":1,"b":[2]}'])
def test_the_limit_hooks_join_the_users_own_and_uninstall_leaves_the_file_byte_identical(
    settings, home, original
):
    settings.write_text(original)
    install_hooks(home)
    data = json.loads(settings.read_text())
    for event, command in (
        ("UserPromptSubmit", "hook-prompt-submit"),
        ("SessionStart", "hook-session-start"),
        ("SessionEnd", "hook-session-end"),
    ):
        ours = data["hooks"][event][-1]["hooks"][0]
        assert command in ours["command"] and ours["type"] == "command"
    if original == USER_HOOKS:
        assert data["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"] == "~/bin/prompt-guard"
        assert data["hooks"]["SessionStart"][0]["matcher"] == "startup"
        assert data["statusLine"] == {"type": "command", "command": "echo hi"}
    assert "already installed" in install_hooks(home)
    uninstall_hooks(home)
    assert settings.read_text() == original


def test_without_a_settings_file_uninstall_removes_the_file_again(settings, home):
    install_hooks(home)
    assert settings.exists()
    uninstall_hooks(home)
    assert not settings.exists()


def test_after_other_edits_only_our_limit_hooks_are_removed_and_the_users_stay(settings, home):
    settings.write_text(USER_HOOKS)
    install_hooks(home)
    settings.write_text(settings.read_text().replace("echo hi", "echo hello"))
    uninstall_hooks(home)
    data = json.loads(settings.read_text())
    assert data["statusLine"]["command"] == "echo hello"
    assert set(data["hooks"]) == {"UserPromptSubmit", "SessionStart"}
    assert data["hooks"]["UserPromptSubmit"] == json.loads(USER_HOOKS)["hooks"]["UserPromptSubmit"]
    assert data["hooks"]["SessionStart"] == json.loads(USER_HOOKS)["hooks"]["SessionStart"]


def test_a_hook_event_that_is_not_a_list_is_refused_and_nothing_changes(settings, home):
    text = '{"hooks": {"UserPromptSubmit": {"command": "x"}}}'
    settings.write_text(text)
    with pytest.raises(Exception, match="not a list"):
        install_hooks(home)
    assert settings.read_text() == text
