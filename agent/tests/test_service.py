"""Background service files for each OS, checked with each platform's own format rules."""

import plistlib
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest
from claude_telemetry import service
from claude_telemetry.config import Home

TASK_NS = "{http://schemas.microsoft.com/windows/2004/02/mit/task}"


@pytest.fixture
def home(tmp_path):
    return Home(tmp_path / "agent home", explicit=True)


@pytest.fixture
def user_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user" / ".config"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude data%dir"))
    return tmp_path / "user"


def systemd_verify(paths, tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    runtime = tmp_path / "runtime"
    runtime.mkdir(exist_ok=True)
    return subprocess.run(
        ["systemd-analyze", "--user", "verify", *map(str, paths)],
        capture_output=True,
        text=True,
        env={"XDG_RUNTIME_DIR": str(runtime), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_the_systemd_unit_and_timer_pass_systemd_analyze(home, user_dirs, tmp_path):
    plan = service.plan_for("linux", home, 15)
    for f in plan.files:
        f.path.parent.mkdir(parents=True, exist_ok=True)
        f.path.write_bytes(f.content)
    done = systemd_verify([f.path for f in plan.files], tmp_path)
    assert done.returncode == 0, done.stderr
    unit = plan.files[0].content.decode()
    timer = plan.files[1].content.decode()
    assert "OnUnitActiveSec=15min" in timer
    # The home path has a space and the data dir a %: both survive unit-file escaping.
    assert f'--home "{home.root}" sync --service' in unit
    assert 'Environment="CLAUDE_CONFIG_DIR=' in unit and "data%%dir" in unit
    assert unit.count("ExecStart=") == 1 and "sync --service" in unit


def test_a_broken_unit_fails_systemd_analyze(tmp_path):
    bad = tmp_path / "broken.service"
    bad.write_text("[Service]\nType=oneshot\nExecStart=relative/path\n")
    assert systemd_verify([bad], tmp_path).returncode != 0


def test_the_launch_agent_is_a_valid_plist(home, user_dirs):
    plan = service.plan_for("macos", home, 20)
    (f,) = plan.files
    assert f.path == user_dirs / "Library" / "LaunchAgents" / "claude-telemetry.sync.plist"
    data = plistlib.loads(f.content)
    assert data["Label"] == "claude-telemetry.sync"
    assert data["StartInterval"] == 1200
    assert data["ProgramArguments"][1:] == [
        "-m", "claude_telemetry", "--home", str(home.root), "sync", "--service"
    ]  # fmt: skip
    assert data["EnvironmentVariables"]["CLAUDE_CONFIG_DIR"].endswith("claude data%dir")
    assert plan.enable[0][:2] == ["launchctl", "bootstrap"]


def test_the_scheduled_task_is_task_scheduler_xml(home):
    plan = service.windows_plan(home, 15, now=datetime(2026, 11, 25, 9, 30))
    (f,) = plan.files
    assert f.content[:2] in (b"\xff\xfe", b"\xfe\xff")  # UTF-16 with a byte order mark
    root = ET.fromstring(f.content.decode("utf-16").split("?>", 1)[1])
    assert root.tag == f"{TASK_NS}Task"
    trigger = root.find(f"{TASK_NS}Triggers/{TASK_NS}TimeTrigger")
    assert trigger.find(f"{TASK_NS}Repetition/{TASK_NS}Interval").text == "PT15M"
    assert trigger.find(f"{TASK_NS}StartBoundary").text == "2026-11-25T09:30:00"
    exec_ = root.find(f"{TASK_NS}Actions/{TASK_NS}Exec")
    assert f'--home "{home.root}" sync --service' in exec_.find(f"{TASK_NS}Arguments").text
    assert plan.enable[0][:3] == ["schtasks", "/Create", "/TN"]


def test_install_and_uninstall_touch_exactly_the_same_files(cli, tmp_path, agent_env):
    config_home = tmp_path / "home" / ".config"
    before = sorted(p for p in config_home.rglob("*"))
    setup_config(agent_env)
    done = cli("install-service", "--files-only", "--interval", "30")
    assert done.code == 0, done.output
    unit_dir = config_home / "systemd" / "user"
    made = sorted(p.name for p in unit_dir.iterdir())
    assert made == ["claude-telemetry-sync.service", "claude-telemetry-sync.timer"]
    assert "OnUnitActiveSec=30min" in (unit_dir / "claude-telemetry-sync.timer").read_text()
    assert "files only" in cli("status").stdout
    done = cli("uninstall-service")
    assert done.code == 0, done.output
    assert sorted(config_home.rglob("*")) == before


def test_install_refuses_to_overwrite_a_unit_it_did_not_make(cli, tmp_path, agent_env):
    setup_config(agent_env)
    unit_dir = tmp_path / "home" / ".config" / "systemd" / "user"
    unit_dir.mkdir(parents=True)
    (unit_dir / "claude-telemetry-sync.timer").write_text("mine")
    done = cli("install-service", "--files-only")
    assert done.code == 1 and "was not made by claude-telemetry" in done.stderr
    assert (unit_dir / "claude-telemetry-sync.timer").read_text() == "mine"
    assert not (unit_dir / "claude-telemetry-sync.service").exists()


def setup_config(env):
    from pathlib import Path

    from agent_testlib import make_config
    from claude_telemetry.config import save_config

    save_config(Home(Path(env["CLAUDE_TELEMETRY_HOME"])), make_config())
