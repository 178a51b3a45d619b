"""ccusage on the view of the recent transcripts gives its reports on all the logs, for the
window: the real ccusage 20.0.24 on the fixture logs, each transcript with the time Claude Code
leaves on it (its last line's)."""

import json
import os
from datetime import date, datetime
from pathlib import Path

import pytest
from agent_testlib import make_config
from claude_telemetry import log_view
from claude_telemetry.ccusage import REPORT_KINDS, Runner, claude_dirs
from claude_telemetry.config import Home, save_state
from claude_telemetry.request_keys import scan
from claude_telemetry.sync import Syncer

SINCE = date(2026, 11, 23)  # the fixture's logs run from 2026-11-16 to 2026-11-25


def stamp_like_claude_code(home: Path) -> None:
    """Each transcript's modification time is its last line's time (Claude Code appends)."""
    for path in home.rglob("*.jsonl"):
        last = None
        for text in path.read_text().splitlines():
            try:
                stamp = json.loads(text).get("timestamp")
            except (ValueError, AttributeError):
                continue  # the fixture has a line cut short, as a crash leaves it
            last = max(last or stamp, stamp) if isinstance(stamp, str) else last
        if last:
            moment = datetime.fromisoformat(last.replace("Z", "+00:00")).timestamp()
            os.utime(path, (moment, moment))


def window_keys(since: date) -> set[str]:
    hours = scan(claude_dirs().projects_dirs(), since)
    return {key for keys in hours.values() for key in keys}


@pytest.fixture
def runner(use_agent_env, fixture_home, tmp_path) -> Runner:
    stamp_like_claude_code(fixture_home)
    return Runner(make_config(), timezone="UTC", workdir=tmp_path)


@pytest.mark.parametrize("timezone", ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_every_report_of_the_window_is_ccusages_own_on_all_the_logs(
    runner, tmp_path, fixture_home, timezone
):
    runner.timezone = timezone
    dirs = claude_dirs()
    view = log_view.prepare(tmp_path / "agent", dirs, SINCE, window_keys(SINCE))
    assert view is not None
    kept = [path for folder in view.split(",") for path in Path(folder).rglob("*.jsonl")]
    everything = [path for folder in dirs.projects_dirs() for path in folder.rglob("*.jsonl")]
    assert 0 < len(kept) < len(everything), "the view leaves some transcripts out"
    for kind in REPORT_KINDS:
        on_all = runner.run_report(kind, SINCE)
        on_view = runner.run_report(kind, SINCE, {"CLAUDE_CONFIG_DIR": view})
        assert on_view == on_all, kind
        assert json.dumps(on_all) != json.dumps(runner.run_report(kind, None)), "a real window"
    # The look-ups of the recent sessions, and run_all as a sync makes it.
    sessions = runner.run_report("claude_session", SINCE)
    ids = [s["sessionId"] for s in sessions["sessions"]][-3:]
    on_all = runner.lookup_sessions(ids)
    assert runner.run_all(SINCE, dirs, view=view) == runner.run_all(SINCE, dirs)
    runner._lookup_env = {"CLAUDE_CONFIG_DIR": view}
    assert runner.lookup_sessions(ids) == on_all


def test_the_view_follows_the_logs_file_by_file(runner, tmp_path, fixture_home):
    home = tmp_path / "agent"
    view = log_view.prepare(home, claude_dirs(), SINCE, window_keys(SINCE))
    transcript = max((fixture_home / ".claude" / "projects").rglob("*.jsonl"), key=os.path.getmtime)
    with transcript.open("a") as fh:
        fh.write(transcript.read_text().splitlines()[-1] + "\n")
    assert log_view.prepare(home, claude_dirs(), SINCE, window_keys(SINCE)) == view
    copy = Path(view.split(",")[0]) / "projects" / transcript.relative_to(transcript.parents[1])
    assert copy.read_bytes() == transcript.read_bytes()
    assert copy.stat().st_mtime_ns == transcript.stat().st_mtime_ns
    transcript.unlink()
    log_view.prepare(home, claude_dirs(), SINCE, window_keys(SINCE))
    assert not copy.exists()
    # Nothing old: ccusage reads the logs themselves.
    assert log_view.prepare(home, claude_dirs(), date(2026, 11, 1), set()) is None


def test_a_request_of_the_window_also_in_an_old_transcript_makes_ccusage_read_all_logs(
    runner, tmp_path, fixture_home
):
    # An old transcript holds a request of the window with more tokens: ccusage keeps one of
    # the two lines by their content, so on all the logs it counts the old line (its day is
    # outside the window) and the window loses that request; a view without the old file
    # would count it.
    projects = fixture_home / ".claude" / "projects"
    recent = max(projects.rglob("*.jsonl"), key=os.path.getmtime)
    line = next(
        json.loads(t)
        for t in reversed(recent.read_text().splitlines())
        if '"requestId"' in t and '"usage"' in t
    )
    line["timestamp"] = "2026-11-16T10:00:00.000Z"
    line["message"]["usage"]["output_tokens"] += 50_000
    old = recent.parent / "00000000-0000-4000-8000-0000000000aa.jsonl"
    old.write_text(json.dumps(line, separators=(",", ":")) + "\n")
    moment = datetime.fromisoformat("2026-11-16T10:00:00+00:00").timestamp()
    os.utime(old, (moment, moment))

    home = tmp_path / "agent"
    assert log_view.prepare(home, claude_dirs(), SINCE, window_keys(SINCE)) is None
    # Without that check the view would give another answer than ccusage on all the logs.
    unchecked = log_view.prepare(home, claude_dirs(), SINCE, set())
    assert unchecked is not None
    on_all = runner.run_report("claude_daily_instances", SINCE)
    assert runner.run_report("claude_daily_instances", SINCE, {"CLAUDE_CONFIG_DIR": unchecked}) != (
        on_all
    )
    # The old file's keys are kept, and read again only when it changes.
    kept = json.loads((home / log_view.OLD_KEYS_NAME).read_text())
    assert str(old) in kept


def test_on_another_drive_the_view_holds_copies_made_again_when_they_change(
    runner, tmp_path, fixture_home, monkeypatch
):
    def no_link(source, target):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(log_view.os, "link", no_link)
    home = tmp_path / "agent"
    view = log_view.prepare(home, claude_dirs(), SINCE, window_keys(SINCE))
    transcript = max((fixture_home / ".claude" / "projects").rglob("*.jsonl"), key=os.path.getmtime)
    copy = Path(view.split(",")[0]) / "projects" / transcript.relative_to(transcript.parents[1])
    assert copy.stat().st_ino != transcript.stat().st_ino
    assert runner.run_report("claude_session", SINCE, {"CLAUDE_CONFIG_DIR": view}) == (
        runner.run_report("claude_session", SINCE)
    )
    with transcript.open("a") as fh:
        fh.write(transcript.read_text().splitlines()[-1] + "\n")
    log_view.prepare(home, claude_dirs(), SINCE, window_keys(SINCE))
    assert copy.read_bytes() == transcript.read_bytes()


def test_a_sync_in_a_window_reads_the_view_and_sends_what_all_the_logs_give(
    runner, tmp_path, monkeypatch
):
    def dry_run(folder: Path) -> dict:
        home = Home(folder)
        home.ensure()
        # The server holds the history up to 2026-11-26: the window starts three days before.
        save_state(home, {"full_acked": True, "ccusage_version": "20.0.24",
                          "last_day": "2026-11-26", "timezone": "UTC"})  # fmt: skip
        out = folder / "envelope.json"
        assert Syncer(home, make_config()).run(dry_run=True, output=out).code == 0
        envelope = json.loads(out.read_text())
        assert envelope["since"] == SINCE.isoformat()
        return {k: envelope[k] for k in ("reports", "projects")}

    on_view = dry_run(tmp_path / "with-view")
    assert list((tmp_path / "with-view" / log_view.VIEW_NAME).rglob("*.jsonl"))
    monkeypatch.setattr(log_view, "prepare", lambda *args: None)
    assert dry_run(tmp_path / "all-logs") == on_view
