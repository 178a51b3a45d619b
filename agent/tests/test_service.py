"""Background service files for each OS, checked with each platform's own format rules."""

import plistlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest
from claude_telemetry import doctor, service
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


def test_without_a_user_systemd_bus_it_prints_the_commands_and_a_cron_line(
    cli, tmp_path, agent_env
):
    """A container or an SSH session has no user bus: say exactly what to run, and where
    nothing can run a service, the cron line."""
    setup_config(agent_env)
    no_bus = {
        "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus",
        "XDG_RUNTIME_DIR": str(tmp_path / "no-runtime"),
    }
    done = cli("install-service", "--interval", "20", env=no_bus)
    assert done.code == 1
    out = done.stdout
    assert "run it yourself" not in out
    assert (
        "systemctl --user daemon-reload && systemctl --user enable --now "
        "claude-telemetry-sync.timer"
    ) in out
    assert "loginctl enable-linger" in out
    cron = next(line for line in out.splitlines() if "| crontab -" in line)
    home = agent_env["CLAUDE_TELEMETRY_HOME"]
    assert f"*/20 * * * * {sys.executable} -m claude_telemetry --home {home} sync --service" in (
        cron
    )
    # The cron line is a real crontab entry: five time fields and a command.
    entry = cron.split("echo ", 1)[1].split(") | crontab", 1)[0].strip("'")
    assert len(entry.split(maxsplit=5)) == 6
    assert "files written, not started" in cli("status", env=no_bus).stdout

    # doctor names the same steps instead of the command that just failed.
    check = doctor.check_service(Home(Path(home)))
    assert check.level == "fix"
    assert "install-service" not in check.fix.replace("uninstall-service", "")
    assert "systemctl --user daemon-reload" in check.fix and "crontab -" in check.fix


def test_doctor_explains_how_to_get_nodejs_when_it_is_missing_or_too_old(tmp_path, monkeypatch):
    real = shutil.which("node")
    # ccusage's npm launcher without its native package: it needs Node.js to run.
    launcher = tmp_path / "ccusage" / "src" / "cli.js"
    launcher.parent.mkdir(parents=True)
    launcher.write_text("#!/usr/bin/env node\n")
    launcher.chmod(0o755)
    (tmp_path / "ccusage" / "package.json").write_text('{"name": "ccusage", "version": "20.0.24"}')
    monkeypatch.setenv("CLAUDE_TELEMETRY_CCUSAGE", str(launcher))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    missing = doctor.check_node(None)
    assert missing.level == "fix" and "not on PATH" in missing.detail
    assert "Node.js 20 or newer" in missing.fix and "nodejs.org" in missing.fix
    old_node = bin_dir / "node"
    old_node.write_text("#!/bin/sh\necho v18.19.0\n")
    old_node.chmod(0o755)
    old = doctor.check_node(None)
    assert old.level == "fix" and "v18.19.0" in old.detail and "too old" in old.detail
    if real:  # the Node.js of this machine, as it is
        old_node.unlink()
        old_node.symlink_to(real)
        found = doctor.node_version(str(old_node))
        assert doctor.check_node(None).level == ("ok" if found and found[0] >= 20 else "fix")
