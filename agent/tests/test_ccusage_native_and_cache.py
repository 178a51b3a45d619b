"""Running ccusage's native binary without its Node launcher, and reusing reports whose logs
have not changed: the real ccusage 20.0.24 from node_modules, and a copy of its npm layout
whose binary counts its own runs."""

import json
import os
import shutil
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from agent_testlib import make_config
from claude_telemetry.ccusage import Runner
from claude_telemetry.native import find_native_binary, native_package_name
from claude_telemetry.report_cache import ReportCache
from test_end_to_end import issue_token

from tests.conftest import ROOT
from usage.ingest.parsers.base import Reader
from usage.ingest.parsers.ccusage_v20 import parse_daily_by_agent
from usage.models import IngestBatch

NODE_MODULES = ROOT / "node_modules"


@pytest.fixture
def real_native(ccusage_bin) -> Path:
    name = native_package_name()
    if name is None or not (NODE_MODULES / name).is_dir():
        pytest.skip("no native ccusage package for this platform in node_modules")
    return NODE_MODULES / name / "bin" / "ccusage"


@pytest.fixture
def counted_install(tmp_path, real_native) -> tuple[Path, Path]:
    """node_modules/ laid out as npm does, whose native `bin/ccusage` records each run in
    runs.log and then runs the real binary. Returns (the .bin launcher, runs.log)."""
    modules = tmp_path / "install" / "node_modules"
    launcher_pkg = modules / "ccusage"
    (launcher_pkg / "src").mkdir(parents=True)
    shutil.copy2(NODE_MODULES / "ccusage" / "package.json", launcher_pkg / "package.json")
    shutil.copy2(NODE_MODULES / "ccusage" / "src" / "cli.js", launcher_pkg / "src" / "cli.js")
    native_pkg = modules / native_package_name()
    (native_pkg / "bin").mkdir(parents=True)
    shutil.copy2(real_native.parent.parent / "package.json", native_pkg / "package.json")
    log = tmp_path / "runs.log"
    binary = native_pkg / "bin" / "ccusage"
    binary.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real_native} "$@"\n')
    binary.chmod(0o644)  # as npm may leave it: the launcher sets the bit before its first run
    (modules / ".bin").mkdir()
    (modules / ".bin" / "ccusage").symlink_to("../ccusage/src/cli.js")
    return modules / ".bin" / "ccusage", log


def runs(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_the_launcher_in_node_modules_leads_to_its_native_binary(real_native):
    found = find_native_binary([str(NODE_MODULES / ".bin" / "ccusage")])
    assert found == real_native


def test_a_native_binary_of_another_version_is_not_used(counted_install):
    launcher, _ = counted_install
    package = launcher.parent.parent / native_package_name() / "package.json"
    data = json.loads(package.read_text())
    package.write_text(json.dumps({**data, "version": "19.0.0"}))
    assert find_native_binary([str(launcher)]) is None


def test_the_pinned_npx_command_finds_npms_own_install(tmp_path, counted_install):
    launcher, _ = counted_install
    cache = tmp_path / "npm-cache"
    (cache / "_npx" / "0123abcd").mkdir(parents=True)
    shutil.move(str(launcher.parent.parent), str(cache / "_npx" / "0123abcd" / "node_modules"))
    env = {"npm_config_cache": str(cache), "HOME": str(tmp_path)}
    found = find_native_binary(["/usr/bin/npx", "--yes", "ccusage@20.0.24"], env)
    assert found == cache / "_npx/0123abcd/node_modules" / native_package_name() / "bin/ccusage"
    assert find_native_binary(["/usr/bin/npx", "--yes", "ccusage@20.0.23"], env) is None
    # An unpinned `npx ccusage` may mean another version tomorrow: never resolved.
    assert find_native_binary(["/usr/bin/npx", "--yes", "ccusage@latest"], env) is None


def test_the_native_binary_gives_the_launchers_output_and_its_version_is_remembered(
    use_agent_env, tmp_path, counted_install, monkeypatch
):
    launcher, log = counted_install
    monkeypatch.setenv("CLAUDE_TELEMETRY_CCUSAGE", str(launcher))
    home = tmp_path / "agent-home"
    home.mkdir()
    runner = Runner(make_config(), timezone="UTC", workdir=tmp_path, cache_dir=home)
    assert runner.argv[0].endswith("/bin/ccusage") and runner.native
    assert os.stat(runner.argv[0]).st_mode & stat.S_IXUSR
    assert runner.version() == "20.0.24"
    report = runner.run_report("claude_session", None)
    assert runs(log) == [
        "--version",
        "claude session --json --offline --timezone UTC",
    ]
    # The same command through Node's launcher, as configured without this shortcut.
    plain = Runner(make_config(), timezone="UTC", workdir=tmp_path, prefer_native=False)
    assert plain.argv == [str(launcher)]
    assert plain.run_report("claude_session", None) == report

    again = Runner(make_config(), timezone="UTC", workdir=tmp_path, cache_dir=home)
    before = len(runs(log))
    assert again.version() == "20.0.24"
    assert len(runs(log)) == before, "the remembered version starts no process"


def test_unchanged_logs_reuse_every_report_and_a_new_request_runs_ccusage_again(
    use_agent_env, fixture_home, tmp_path, counted_install, monkeypatch
):
    launcher, log = counted_install
    monkeypatch.setenv("CLAUDE_TELEMETRY_CCUSAGE", str(launcher))
    home = tmp_path / "agent-home"
    home.mkdir()

    def run_all():
        runner = Runner(make_config(), timezone="UTC", workdir=tmp_path, cache_dir=home)
        return runner.run_all(since=None, cache=ReportCache(home))

    first = run_all()
    ran = len(runs(log))
    second = run_all()
    assert second == first
    assert len(runs(log)) == ran, "nothing changed: no ccusage process at all"

    # One more request in a Claude Code transcript: the reports are made again, and they are
    # what ccusage says about the changed logs (not the stored copy).
    transcript = next((fixture_home / ".claude" / "projects").rglob("*.jsonl"))
    lines = transcript.read_text().splitlines()
    entry = json.loads(next(x for x in reversed(lines) if '"assistant"' in x))
    entry["uuid"] = "00000000-0000-4000-8000-000000000001"
    entry["requestId"] = "req_cache_test_1"
    entry["message"]["id"] = "msg_cache_test_1"
    entry["message"]["usage"]["output_tokens"] += 1000
    entry["timestamp"] = entry["timestamp"][:14] + "59:59.000Z"  # later that hour
    with transcript.open("a") as fh:
        fh.write(json.dumps(entry, separators=(",", ":")) + "\n")
    third = run_all()
    rerun = [line.split(" --")[0] for line in runs(log)[ran:]]
    assert {"claude daily", "claude session", "blocks"} <= set(rerun)
    assert "daily" not in rerun, "only Claude's logs changed: the unified report is kept"
    fresh = Runner(make_config(), timezone="UTC", workdir=tmp_path, prefer_native=False)
    now_fresh = fresh.run_all(since=None)
    assert {k: v for k, v in third.items() if k != "daily_by_agent"} == {
        k: v for k, v in now_fresh.items() if k != "daily_by_agent"
    }
    assert (
        third["claude_session"]["totals"]["outputTokens"]
        > (first["claude_session"]["totals"]["outputTokens"])
    )
    # The kept unified report's Claude figures are older, but everything the server reads of
    # it (every other agent) is ccusage's answer on the changed logs, to the byte.
    assert other_agents(now_fresh["daily_by_agent"]), "the fixture has Codex usage"
    assert other_agents(third["daily_by_agent"]) == other_agents(now_fresh["daily_by_agent"])
    assert server_rows(third["daily_by_agent"]) == server_rows(now_fresh["daily_by_agent"])
    assert server_rows(third["daily_by_agent"]), "rows the server stores"

    # A Codex change makes it again.
    sessions = sorted((fixture_home / ".codex").rglob("rollout-*.jsonl"))
    copied = sessions[-1].with_name(
        sessions[-1].name[:-42] + "00000000-0000-4000-8000-00000000c0de.jsonl"
    )
    shutil.copy(sessions[-1], copied)
    ran = len(runs(log))
    fourth = run_all()
    assert "daily" in [line.split(" --")[0] for line in runs(log)[ran:]]
    assert fourth == fresh.run_all(since=None)
    assert (
        fourth["daily_by_agent"]["totals"]["totalTokens"]
        > third["daily_by_agent"]["totals"]["totalTokens"]
    )


def other_agents(unified: dict) -> list:
    """Every agent's part of a `daily --by-agent` report but Claude's, with its day."""
    return [
        (row["period"], part)
        for row in unified["daily"]
        for part in row.get("agents") or []
        if part["agent"] != "claude"
    ]


def server_rows(unified: dict) -> list:
    """The daily rows the server stores from a `daily --by-agent` report."""
    return parse_daily_by_agent(unified, "reports.daily_by_agent", Reader(datetime.now(UTC)))


def test_another_window_or_timezone_is_never_served_from_the_cache(
    use_agent_env, tmp_path, counted_install, monkeypatch
):
    launcher, log = counted_install
    monkeypatch.setenv("CLAUDE_TELEMETRY_CCUSAGE", str(launcher))
    home = tmp_path / "agent-home"
    home.mkdir()
    utc = Runner(make_config(), timezone="UTC", workdir=tmp_path, cache_dir=home)
    utc.run_all(since=None, cache=ReportCache(home))
    ran = len(runs(log))
    tokyo = Runner(make_config(), timezone="Asia/Tokyo", workdir=tmp_path, cache_dir=home)
    reports = tokyo.run_all(since=None, cache=ReportCache(home))
    assert len(runs(log)) >= ran + 4
    expected = json.loads(
        (ROOT / "tests/fixtures/ccusage/output/claude-daily-tz-tokyo.json").read_text()
    )
    days = {
        r["date"] for rows in reports["claude_daily_instances"]["projects"].values() for r in rows
    }
    assert days == {row["date"] for row in expected["daily"]}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_sync_with_unchanged_logs_starts_no_ccusage_and_still_reaches_the_server(
    server, cli, agent_env, counted_install
):
    launcher, log = counted_install
    env = {"CLAUDE_TELEMETRY_CCUSAGE": str(launcher)}
    done = cli(
        "setup", "--server", server.url, "--token", issue_token(), "--name", "laptop",
        "--non-interactive", env=env,
    )  # fmt: skip
    assert done.code == 0, done.output
    assert cli("sync", env=env).code == 0  # the whole history
    assert cli("sync", env=env).code == 0  # the first window: other arguments, so it runs
    ran = len(runs(log))
    state = Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "state.json"
    before = json.loads(state.read_text())["last_success_at"]
    time.sleep(1)  # the acknowledgement time has whole seconds

    done = cli("sync", env=env)

    assert done.code == 0, done.output
    assert len(runs(log)) == ran, "unchanged logs: no ccusage process at all"
    # The server still answered (the same report: it already had it).
    assert json.loads(state.read_text())["last_success_at"] > before
    assert "Nothing changed on the server" in done.stdout
    assert IngestBatch.objects.filter(status="processed").exists()
    # Nor are the request keys hashed and sent again: the server's answer is kept with them.
    cache = json.loads((state.parent / "reports-cache.json").read_text())
    assert cache["foreign_request_keys"]["report"] == []
    assert "run as its native binary" in cli("status", env=env).stdout
