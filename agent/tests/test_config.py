"""The agent's configuration, token file and state in its home folder."""

import os
import stat

import pytest
from agent_testlib import make_config
from claude_telemetry.config import (
    ConfigError,
    Home,
    load_config,
    load_state,
    load_token,
    normalize_server_url,
    resolve_home,
    save_config,
    save_state,
    save_token,
)


def test_a_saved_config_loads_back_with_every_setting(tmp_path):
    home = Home(tmp_path / "agent")
    config = make_config(hash_project_names=True, interval_minutes=30, ccusage_command='x "a b"')
    save_config(home, config)
    assert load_config(home) == config


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_the_token_file_and_the_home_are_readable_only_by_the_user(tmp_path):
    home = Home(tmp_path / "agent")
    config = make_config()
    save_config(home, config)
    save_token(home, config, "cct_secret")
    assert stat.S_IMODE(home.token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.root.stat().st_mode) == 0o700
    assert load_token(home, config) == "cct_secret"


def test_a_missing_config_says_to_run_setup(tmp_path):
    with pytest.raises(ConfigError, match="claude-telemetry setup"):
        load_config(Home(tmp_path))


def test_a_broken_config_names_the_file_and_the_problem(tmp_path):
    home = Home(tmp_path)
    home.config_file.write_text('[server]\nurl = "https://x.example"\n[machine\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(home)


def test_a_config_value_of_the_wrong_type_is_refused(tmp_path):
    home = Home(tmp_path)
    save_config(home, make_config())
    text = home.config_file.read_text().replace("interval_minutes = 15", 'interval_minutes = "x"')
    home.config_file.write_text(text)
    with pytest.raises(ConfigError, match=r"sync\.interval_minutes must be a int"):
        load_config(home)


def test_a_config_without_the_machine_uuid_is_refused(tmp_path):
    home = Home(tmp_path)
    home.config_file.write_text('[server]\nurl = "https://x.example"\n[machine]\nname = "a"\n')
    with pytest.raises(ConfigError, match=r"machine\.uuid"):
        load_config(home)


@pytest.mark.parametrize("url", ["telemetry.example.com", "ftp://x.example", "https://", ""])
def test_server_urls_without_http_and_a_host_are_refused(url):
    with pytest.raises(ConfigError):
        normalize_server_url(url)


def test_a_trailing_slash_is_dropped_from_the_server_url():
    assert normalize_server_url(" https://x.example/base/ ") == "https://x.example/base"


def test_the_home_comes_from_the_environment_unless_given(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_TELEMETRY_HOME", str(tmp_path / "env"))
    assert resolve_home() == (tmp_path / "env").resolve()
    assert resolve_home(tmp_path / "flag") == (tmp_path / "flag").resolve()


def test_a_damaged_state_file_reads_as_empty_so_the_next_sync_is_full(tmp_path):
    home = Home(tmp_path)
    save_state(home, {"full_acked": True})
    assert load_state(home) == {"full_acked": True}
    home.state_file.write_text("{not json")
    assert load_state(home) == {}


def test_a_config_written_without_a_hash_salt_gets_one_that_stays(tmp_path):
    home = Home(tmp_path)
    home.config_file.write_text(
        '[server]\nurl = "https://x.example"\n'
        '[machine]\nuuid = "6f1c2a9e-7a3b-4c55-9d7e-3b1f2a7c8d90"\nname = "pc"\n'
    )
    salt = load_config(home).hash_salt
    assert len(salt) == 32
    assert load_config(home).hash_salt == salt


def test_doctor_advises_chmod_only_for_files_that_exist(tmp_path):
    from claude_telemetry.doctor import FIX, check_permissions

    home = Home(tmp_path / "agent")
    home.root.mkdir(mode=0o755)
    home.root.chmod(0o755)
    check = check_permissions(home, None)
    assert check.level == FIX
    assert check.fix == f"chmod 700 {home.root}"  # no config or token written yet
    home.config_file.write_text("")
    home.config_file.chmod(0o644)
    assert check_permissions(home, None).fix == (
        f"chmod 700 {home.root} && chmod 600 {home.config_file}"
    )
