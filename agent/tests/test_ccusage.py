"""The ccusage runner against the real pinned binary and real failing programs."""

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from agent_testlib import make_config
from claude_telemetry.ccusage import CcusageError, Runner, claude_dirs

from tests.conftest import FIXTURES


def expected(name: str) -> dict:
    return json.loads((FIXTURES / "output" / name).read_text())


def runner(tmp_path, **config) -> Runner:
    return Runner(make_config(**config), timezone="UTC", workdir=tmp_path)


def python_command(code: str) -> str:
    return shlex.join([sys.executable, "-c", code])


def test_the_pinned_ccusage_reports_its_version(use_agent_env, tmp_path):
    assert runner(tmp_path).version() == "20.0.24"


def test_every_report_kind_is_ccusages_own_output_verbatim(use_agent_env, tmp_path):
    reports = runner(tmp_path).run_all(since=None)
    assert list(reports) == [
        "claude_daily_instances",
        "claude_session",
        "blocks_hourly",
        "daily_by_agent",
    ]
    assert reports["claude_daily_instances"] == expected("claude-daily-instances.json")
    assert reports["claude_session"] == expected("claude-session.json")
    assert reports["daily_by_agent"] == expected("all-daily-by-agent.json")
    hours = [b for b in reports["blocks_hourly"]["blocks"] if not b["isGap"]]
    assert all(b["startTime"][14:] == "00:00.000Z" for b in hours)  # one-hour buckets


def test_an_incremental_window_passes_since_to_ccusage(use_agent_env, tmp_path):
    r = runner(tmp_path)
    assert r.report_args("claude_daily_instances", date(2026, 11, 20))[-2:] == [
        "--since",
        "20261120",
    ]
    daily = r.run_report("claude_daily_instances", date(2026, 11, 22))
    days = {row["date"] for rows in daily["projects"].values() for row in rows}
    assert min(days) == "2026-11-22"


def test_offline_and_the_servers_timezone_are_always_passed(tmp_path):
    args = Runner(make_config(), timezone="Asia/Tokyo").report_args("blocks_hourly", None)
    assert args == [
        "blocks", "--json", "--session-length", "1", "--offline", "--timezone", "Asia/Tokyo"
    ]  # fmt: skip
    args = Runner(make_config(ccusage_offline=False)).report_args("claude_session", None)
    assert "--offline" not in args


def test_without_claude_data_only_the_other_agents_report_is_made(
    use_agent_env, tmp_path, monkeypatch, fixture_home
):
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "no-such-dir"))
    dirs = claude_dirs()
    assert dirs.valid == [] and dirs.from_env
    reports = runner(tmp_path).run_all(since=None, dirs=dirs)
    assert list(reports) == ["daily_by_agent"]
    agents = {a["agent"] for row in reports["daily_by_agent"]["daily"] for a in row["agents"]}
    assert agents == {"codex"}


def test_claude_dirs_are_found_by_their_projects_folder(use_agent_env, fixture_home, monkeypatch):
    monkeypatch.setenv(
        "CLAUDE_CONFIG_DIR", f"{fixture_home}/.claude/projects,{fixture_home}/missing"
    )
    dirs = claude_dirs()
    assert dirs.valid == [fixture_home / ".claude"]
    assert dirs.missing == [fixture_home / ".claude" / "projects", fixture_home / "missing"]
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    assert claude_dirs().valid == [fixture_home / ".config" / "claude", fixture_home / ".claude"]


def test_a_missing_ccusage_is_one_line_with_doctor_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_TELEMETRY_CCUSAGE", str(tmp_path / "nowhere" / "ccusage"))
    with pytest.raises(CcusageError) as err:
        runner(tmp_path).version()
    message = str(err.value)
    assert "\n" not in message
    assert "Cannot find" in message and "claude-telemetry doctor" in message


def test_missing_npx_names_nodejs(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_TELEMETRY_CCUSAGE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CcusageError, match=r"npx \(part of Node.js\)"):
        runner(tmp_path).version()


def test_a_failing_ccusage_reports_its_exit_code_and_last_error_line(tmp_path, monkeypatch):
    code = "import sys; print('noise'); sys.stderr.write('first\\nError: boom\\n'); sys.exit(3)"
    monkeypatch.setenv("CLAUDE_TELEMETRY_CCUSAGE", python_command(code))
    with pytest.raises(CcusageError, match=r"failed \(exit 3\): Error: boom\. Run"):
        runner(tmp_path).run_report("claude_session", None)


def test_output_that_is_not_json_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_TELEMETRY_CCUSAGE", python_command("print('Usage report')"))
    with pytest.raises(CcusageError, match="not JSON"):
        runner(tmp_path).run_report("claude_session", None)


def test_json_of_another_shape_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_TELEMETRY_CCUSAGE", python_command("print('{\"daily\": []}')"))
    with pytest.raises(CcusageError, match="without 'sessions'"):
        runner(tmp_path).run_report("claude_session", None)


def test_a_ccusage_that_hangs_is_stopped_at_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("CLAUDE_TELEMETRY_CCUSAGE", python_command("import time; time.sleep(60)"))
    with pytest.raises(CcusageError, match="did not finish within 1 s"):
        runner(tmp_path, ccusage_timeout_seconds=1).run_report("claude_session", None)


def test_one_failing_kind_fails_the_whole_run(use_agent_env, tmp_path, monkeypatch):
    # A real ccusage wrapper that only breaks the blocks report.
    script = tmp_path / "flaky.py"
    script.write_text(
        "import os, sys\n"
        "if 'blocks' in sys.argv: sys.exit('Error: disk on fire')\n"
        f"os.execv({str(use_agent_env['CLAUDE_TELEMETRY_CCUSAGE'])!r}, "
        f"[{str(use_agent_env['CLAUDE_TELEMETRY_CCUSAGE'])!r}, *sys.argv[1:]])\n"
    )
    monkeypatch.setenv("CLAUDE_TELEMETRY_CCUSAGE", shlex.join([sys.executable, str(script)]))
    with pytest.raises(CcusageError, match="ccusage blocks failed"):
        runner(tmp_path).run_all(since=None)


def slow_ccusage(tmp_path, *, slow_version: bool) -> Path:
    """A stand-in ccusage that notes its pid in pids/ and sleeps a minute (on `--version`
    too when `slow_version`); returns the pids folder."""
    pids = tmp_path / "pids"
    pids.mkdir()
    script = tmp_path / "slow_ccusage.py"
    script.write_text(
        "import os, pathlib, sys, time\n"
        f"if '--version' in sys.argv and not {slow_version}:\n"
        "    print('ccusage 20.0.24'); sys.exit(0)\n"
        f"pathlib.Path({str(pids)!r}, str(os.getpid())).touch()\n"
        "time.sleep(60)\n"
    )
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child killed but not yet waited for is a zombie: gone for this purpose.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    return True


@pytest.mark.parametrize("step", ["reports", "--version"])
def test_ctrl_c_stops_ccusage_at_once_and_leaves_no_process_behind(
    use_agent_env, tmp_path, monkeypatch, step
):
    pids = slow_ccusage(tmp_path, slow_version=step == "--version")
    monkeypatch.setenv(
        "CLAUDE_TELEMETRY_CCUSAGE", shlex.join([sys.executable, str(tmp_path / "slow_ccusage.py")])
    )
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from claude_telemetry.ccusage import Runner\n"
        "runner = Runner(None, timezone='UTC', workdir=Path(sys.argv[1]))  # 600 s timeout\n"
        "try:\n"
        "    runner.version() if sys.argv[2] == '--version' else runner.run_all(since=None)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted')\n"
        "    sys.exit(130)\n"
    )
    expected = 1 if step == "--version" else 4
    sync = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), step], stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while len(list(pids.iterdir())) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    started_pids = [int(p.name) for p in pids.iterdir()]
    assert len(started_pids) == expected
    time.sleep(0.2)
    sync.send_signal(signal.SIGINT)  # Ctrl-C in its terminal
    out, _ = sync.communicate(timeout=10)
    assert (sync.returncode, out.strip()) == (130, "interrupted")
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in started_pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in started_pids if alive(pid)]
