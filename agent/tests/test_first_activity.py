"""The first entry of each recent hour, read from the real ccusage on logs written minutes ago."""

import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from agent_testlib import make_config
from claude_telemetry.ccusage import FIRST_ACTIVITY_KIND, Runner

from tests.crafted_logs import assistant_line, iso_ms, write_session
from tests.usage.ccusage_runs import CCUSAGE


@pytest.fixture
def recent_home(tmp_path, monkeypatch):
    """Two sessions in the last three hours and one from the day before, in a fresh $HOME."""
    home = tmp_path / "home"
    config_dir = home / ".claude"
    for name in ("CLAUDE_CONFIG_DIR", "XDG_CONFIG_HOME", "CODEX_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("CLAUDE_TELEMETRY_CCUSAGE", str(CCUSAGE))
    monkeypatch.setenv("TZ", "UTC")
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    streamed = {"message_id": "msg_streamed", "request_id": "req_streamed"}
    write_session(
        config_dir,
        [
            # A streamed message: the partial first line, then the final one 1.5 s later.
            assistant_line(
                base + timedelta(minutes=35), session_id="a", output_tokens=5, **streamed
            ),
            assistant_line(base + timedelta(minutes=35, seconds=1.5), session_id="a", **streamed),
            # Stamped exactly on the next hour: ccusage's one-hour bucket keeps it.
            assistant_line(base + timedelta(hours=1), session_id="a"),
            assistant_line(base + timedelta(hours=1, minutes=10), session_id="a"),
        ],
        session_id="a",
    )
    write_session(
        config_dir,
        [assistant_line(base + timedelta(hours=1, minutes=5), session_id="b")],
        session_id="b",
    )
    write_session(
        config_dir, [assistant_line(base - timedelta(hours=20), session_id="c")], session_id="c"
    )
    return base


def test_each_recent_hour_gets_the_time_of_ccusages_first_entry(recent_home, tmp_path):
    base = recent_home
    runner = Runner(make_config(), timezone="UTC", workdir=tmp_path)
    reports = runner.run_all(since=None)
    hours = reports[FIRST_ACTIVITY_KIND]["hours"]
    assert hours == {
        # ccusage keeps a streamed message's final line, and so its time.
        iso_ms(base): iso_ms(base + timedelta(minutes=35, seconds=1.5)),
        # The entry at exactly base + 1 h belongs to the hour before.
        iso_ms(base + timedelta(hours=1)): iso_ms(base + timedelta(hours=1, minutes=5)),
    }


def test_the_first_entries_agree_with_ccusages_own_gap_blocks(recent_home, tmp_path):
    """Where a bucket follows a gap, ccusage itself says when its first entry was."""
    runner = Runner(make_config(), timezone="UTC", workdir=tmp_path)
    reports = runner.run_all(since=None)
    blocks = reports["blocks_hourly"]["blocks"]
    after_gap = [
        blocks[i + 1]["startTime"]
        for i, block in enumerate(blocks[:-1])
        if block["isGap"] and blocks[i + 1]["startTime"] in reports[FIRST_ACTIVITY_KIND]["hours"]
    ]
    assert after_gap
    for i, block in enumerate(blocks[:-1]):
        if block["isGap"] and blocks[i + 1]["startTime"] in after_gap:
            hours = reports[FIRST_ACTIVITY_KIND]["hours"]
            assert hours[blocks[i + 1]["startTime"]] == block["endTime"]


def test_hours_older_than_a_block_are_not_looked_up(recent_home, tmp_path):
    runner = Runner(make_config(), timezone="UTC", workdir=tmp_path)
    reports = runner.run_all(since=None)
    old_hour = iso_ms(recent_home - timedelta(hours=20))
    assert old_hour in {b["startTime"] for b in reports["blocks_hourly"]["blocks"]}
    assert old_hour not in reports[FIRST_ACTIVITY_KIND]["hours"]


def test_a_session_ccusage_cannot_read_means_no_first_entries_rather_than_late_ones(
    recent_home, tmp_path, monkeypatch
):
    runner = Runner(make_config(), timezone="UTC", workdir=tmp_path)
    hourly = runner.run_report("blocks_hourly", None)
    sessions = runner.run_report("claude_session", None)
    monkeypatch.setenv("CLAUDE_TELEMETRY_CCUSAGE", "false")
    assert Runner(make_config(), workdir=tmp_path).hour_first_activity(hourly, sessions) is None


def test_without_recent_usage_no_first_activity_report_is_sent(use_agent_env, tmp_path):
    # The fixture logs end days before now.
    reports = Runner(make_config(), timezone="UTC", workdir=tmp_path).run_all(since=None)
    assert FIRST_ACTIVITY_KIND not in reports


def test_sessions_named_by_the_last_report_are_looked_up_early_and_give_the_same_hours(
    recent_home, tmp_path
):
    """A sync after new usage looks up the sessions the previous `claude session` report
    named while the reports run; the fresh report decides: a session it no longer names is
    dropped and a new one is looked up after it."""
    from claude_telemetry.report_cache import ReportCache

    from tests.crafted_logs import write_session

    home = tmp_path / "agent-home"
    home.mkdir()
    runner = Runner(make_config(), timezone="UTC", workdir=tmp_path, cache_dir=home)
    runner.run_all(since=None, cache=ReportCache(home))
    cache = ReportCache(home)
    assert Runner.recent_session_ids(cache.latest("claude_session")) == ["a", "b"]
    # The last report also named a session that is gone now; and a new session starts.
    stored = cache.entries["claude_session"]["report"]
    stored["sessions"].append({**stored["sessions"][0], "sessionId": "gone"})
    cache.put("claude_session", "an older key", stored)
    cache.save()
    config_dir = tmp_path / "home" / ".claude"
    write_session(
        config_dir,
        [assistant_line(recent_home + timedelta(hours=2, minutes=1), session_id="d")],
        session_id="d",
    )
    looked_up: list[list[str]] = []
    lookup = Runner.lookup_sessions

    def recording(self, ids):
        looked_up.append(list(ids))
        return lookup(self, ids)

    runner = Runner(make_config(), timezone="UTC", workdir=tmp_path, cache_dir=home)
    runner.lookup_sessions = recording.__get__(runner)  # the real lookups, recorded
    early = runner.run_all(since=None, cache=ReportCache(home))
    assert looked_up[0] == ["a", "b", "gone"]  # from the last report, before the fresh one
    assert looked_up[1] == ["d"]  # only what the fresh report adds
    # Exactly what looking everything up after the fresh report gives.
    late = Runner(make_config(), timezone="UTC", workdir=tmp_path).run_all(since=None)
    assert early[FIRST_ACTIVITY_KIND] == late[FIRST_ACTIVITY_KIND]
    assert iso_ms(recent_home + timedelta(hours=2)) in early[FIRST_ACTIVITY_KIND]["hours"]


# --- reusing the last look-up (first_activity) ------------------------------------------------


class Syncs:
    """Runs ccusage as a sync after new usage does (the logs' sizes, the request keys, then the
    reports with the view's reuse of first entries), counting the session look-ups."""

    def __init__(self, tmp_path, since):
        from claude_telemetry.report_cache import ReportCache

        self.tmp_path = tmp_path
        self.since = since
        self.home = tmp_path / "agent-home"
        self.home.mkdir(exist_ok=True)
        self.cache = ReportCache(self.home)
        self.looked_up: list[list[str]] = []

    def run(self) -> dict:
        from claude_telemetry import first_activity
        from claude_telemetry.ccusage import claude_dirs
        from claude_telemetry.request_keys import scan_counting, scan_start

        dirs = claude_dirs()
        start = first_activity.window_start(datetime.now(UTC))
        sizes = first_activity.snapshot(dirs.projects_dirs(), start)
        _hours, lines = scan_counting(dirs.projects_dirs(), self.since)
        activity = first_activity.Snapshot(sizes, lines, scan_start(self.since))
        runner = Runner(make_config(), timezone="UTC", workdir=self.tmp_path, cache_dir=self.home)
        lookup = Runner.lookup_sessions

        def recording(runner_self, ids):
            if ids:
                self.looked_up.append(list(ids))
            return lookup(runner_self, ids)

        runner.lookup_sessions = recording.__get__(runner)
        reports = runner.run_all(self.since, dirs, cache=self.cache, activity=activity)
        return reports.get(FIRST_ACTIVITY_KIND, {}).get("hours", {})

    def fresh(self) -> dict:
        """What looking every recent session up on the logs as they are now gives."""
        reports = Runner(make_config(), timezone="UTC", workdir=self.tmp_path).run_all(self.since)
        return reports.get(FIRST_ACTIVITY_KIND, {}).get("hours", {})


def append(config_dir, session_id: str, *lines: str, newline: bool = True) -> None:
    path = next((config_dir / "projects").rglob(f"{session_id}.jsonl"))
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + ("\n" if newline else ""))


@pytest.fixture
def syncs(recent_home, tmp_path):
    runs = Syncs(tmp_path, (recent_home - timedelta(days=1)).date())
    runs.run()  # the first sync looks every recent session up
    assert runs.looked_up == [["a", "b"]]
    runs.looked_up.clear()
    return runs


def test_requests_made_after_each_hours_first_entry_need_no_look_up(recent_home, syncs, tmp_path):
    config_dir = tmp_path / "home" / ".claude"
    append(
        config_dir,
        "b",
        assistant_line(recent_home + timedelta(hours=1, minutes=40), session_id="b"),
    )
    append(config_dir, "a", assistant_line(recent_home + timedelta(minutes=50), session_id="a"))
    firsts = syncs.run()
    assert syncs.looked_up == []
    assert (
        firsts
        == syncs.fresh()
        == {
            iso_ms(recent_home): iso_ms(recent_home + timedelta(minutes=35, seconds=1.5)),
            iso_ms(recent_home + timedelta(hours=1)): iso_ms(
                recent_home + timedelta(hours=1, minutes=5)
            ),
        }
    )
    # And again after more of the same: each sync checks only what was appended since.
    append(
        config_dir,
        "b",
        assistant_line(recent_home + timedelta(hours=1, minutes=45), session_id="b"),
    )
    assert syncs.run() == firsts and syncs.looked_up == []


@pytest.mark.parametrize(
    "case",
    ["earlier than the first", "a new hour", "a copy of a known request", "on the hour"],
)
def test_a_line_that_may_change_a_first_entry_is_looked_up(recent_home, syncs, tmp_path, case):
    config_dir = tmp_path / "home" / ".claude"
    if case == "earlier than the first":
        line = assistant_line(recent_home + timedelta(hours=1, minutes=2), session_id="b")
    elif case == "a new hour":
        line = assistant_line(recent_home + timedelta(hours=2, minutes=30), session_id="b")
    elif case == "a copy of a known request":
        # The streamed request of 35 minutes past, logged again later in the hour: ccusage keeps
        # one of its lines by their content, which may move the hour's first entry.
        line = assistant_line(
            recent_home + timedelta(minutes=50),
            session_id="a",
            message_id="msg_streamed",
            request_id="req_streamed",
            output_tokens=900,
        )
    else:
        line = assistant_line(recent_home + timedelta(hours=1), session_id="b")
    append(config_dir, "a" if "copy" in case else "b", line)
    firsts = syncs.run()
    assert syncs.looked_up, "the sessions must be looked up again"
    assert firsts == syncs.fresh()
    if case == "earlier than the first":
        assert firsts[iso_ms(recent_home + timedelta(hours=1))] == iso_ms(
            recent_home + timedelta(hours=1, minutes=2)
        )


def test_a_line_being_written_is_not_judged(recent_home, syncs, tmp_path):
    config_dir = tmp_path / "home" / ".claude"
    line = assistant_line(recent_home + timedelta(hours=1, minutes=40), session_id="b")
    append(config_dir, "b", line[:40], newline=False)
    assert syncs.run() == syncs.fresh()
    assert syncs.looked_up
    syncs.looked_up.clear()
    # Finished by the next sync: its start was read in a region that began mid-line.
    append(config_dir, "b", line[40:])
    assert syncs.run() == syncs.fresh()
    assert syncs.looked_up


def test_a_line_written_while_ccusage_runs_is_looked_up(recent_home, syncs, tmp_path, monkeypatch):
    config_dir = tmp_path / "home" / ".claude"
    append(
        config_dir,
        "b",
        assistant_line(recent_home + timedelta(hours=1, minutes=40), session_id="b"),
    )
    early = assistant_line(recent_home + timedelta(hours=1, minutes=1), session_id="b")
    run = Runner._run

    def writing_meanwhile(self, args, label, env_overrides=None):
        out = run(self, args, label, env_overrides)
        if label == "blocks":
            append(config_dir, "b", early)  # after ccusage read the hours, before the check
        return out

    monkeypatch.setattr(Runner, "_run", writing_meanwhile)
    firsts = syncs.run()
    assert syncs.looked_up
    assert firsts == syncs.fresh()


def test_more_appended_bytes_than_worth_reading_are_looked_up(
    recent_home, syncs, tmp_path, monkeypatch
):
    from claude_telemetry import first_activity

    monkeypatch.setattr(first_activity, "MAX_APPENDED_BYTES", 100)
    config_dir = tmp_path / "home" / ".claude"
    append(
        config_dir,
        "b",
        assistant_line(recent_home + timedelta(hours=1, minutes=40), session_id="b"),
    )
    assert syncs.run() == syncs.fresh()
    assert syncs.looked_up


def without_request_id(line: str) -> str:
    record = json.loads(line)
    del record["requestId"]
    return json.dumps(record, separators=(",", ":"))


def test_a_message_logged_again_without_a_request_id_is_looked_up(recent_home, tmp_path):
    # ccusage deduplicates lines without a request id by their message id (in one transcript)
    # and keeps the one with more output: a later line can move the hour's first entry.
    config_dir = tmp_path / "home" / ".claude"
    first = recent_home + timedelta(hours=2, minutes=10)
    write_session(
        config_dir,
        [
            without_request_id(
                assistant_line(first, session_id="e", message_id="msg_x", output_tokens=5)
            )
        ],
        session_id="e",
    )
    runs = Syncs(tmp_path, (recent_home - timedelta(days=1)).date())
    runs.run()
    runs.looked_up.clear()
    later = assistant_line(
        first + timedelta(seconds=2), session_id="e", message_id="msg_x", output_tokens=500
    )
    append(config_dir, "e", without_request_id(later))
    firsts = runs.run()
    assert runs.looked_up
    assert firsts == runs.fresh()
    assert firsts[iso_ms(recent_home + timedelta(hours=2))] == iso_ms(first + timedelta(seconds=2))


def test_the_first_hour_of_the_window_skips_an_entry_the_hour_before_keeps(recent_home, tmp_path):
    # ccusage's one-hour bucket before the window ends with the entry stamped exactly on the
    # window's first hour; that entry is not that hour's first.
    config_dir = tmp_path / "home" / ".claude"
    start = recent_home - timedelta(hours=3)  # six hours back, on the hour: the window's start
    lines = [
        assistant_line(start - timedelta(minutes=30), session_id="e"),
        assistant_line(start, session_id="e"),
        assistant_line(start + timedelta(minutes=20), session_id="e"),
    ]
    write_session(config_dir, lines, session_id="e")
    reports = Runner(make_config(), timezone="UTC", workdir=tmp_path).run_all(since=None)
    before = next(
        b
        for b in reports["blocks_hourly"]["blocks"]
        if b["startTime"] == iso_ms(start - timedelta(hours=1))
    )
    assert before["actualEndTime"] == iso_ms(start)
    hours = reports[FIRST_ACTIVITY_KIND]["hours"]
    assert hours[iso_ms(start)] == iso_ms(start + timedelta(minutes=20))


@pytest.mark.parametrize(
    "minutes",
    [
        [0, 60, 90],  # the window's first hour loses its only entry: the bucket goes
        [0, 40],  # it keeps a later one: its first entry moves
    ],
)
def test_a_line_just_before_the_window_that_regroups_its_first_hour_is_looked_up(
    recent_home, tmp_path, minutes
):
    config_dir = tmp_path / "home" / ".claude"
    start = recent_home - timedelta(hours=3)
    lines = [assistant_line(start + timedelta(minutes=m), session_id="e") for m in minutes]
    write_session(config_dir, lines, session_id="e")
    runs = Syncs(tmp_path, (recent_home - timedelta(days=1)).date())
    runs.run()
    runs.looked_up.clear()
    # Half an hour before the window: its bucket now ends with the entry on the window's start.
    write_session(config_dir, [assistant_line(start - timedelta(minutes=30), session_id="z")], "z")
    firsts = runs.run()
    assert runs.looked_up
    assert firsts == runs.fresh()


@pytest.mark.parametrize("edit", ["cut short", "same size", "grown"])
def test_a_transcript_edited_in_place_is_looked_up(recent_home, syncs, tmp_path, edit):
    # The hour's first entry (1 h 5 min past) is gone: cleaned up (a later line written
    # instead), or moved to 1 h 25 min in place with the file the same size or grown as if
    # appended to. Only a look-up can tell the new first entry.
    config_dir = tmp_path / "home" / ".claude"
    path = next((config_dir / "projects").rglob("b.jsonl"))
    size = path.stat().st_size
    if edit == "cut short":
        later = assistant_line(
            recent_home + timedelta(hours=1, minutes=30),
            session_id="b",
            input_tokens=1,
            output_tokens=1,
        )
        path.write_text(later + "\n")  # a few bytes shorter than the line it replaces
    else:
        old = iso_ms(recent_home + timedelta(hours=1, minutes=5))
        new = iso_ms(recent_home + timedelta(hours=1, minutes=25))
        text = path.read_text().replace(old, new)
        if edit == "grown":
            more = assistant_line(recent_home + timedelta(hours=1, minutes=40), session_id="b")
            text += more + "\n"
        with path.open("r+") as fh:  # the same file (inode), rewritten
            fh.write(text)
    assert (path.stat().st_size == size) is (edit == "same size")
    firsts = syncs.run()
    assert syncs.looked_up
    assert firsts == syncs.fresh()
    assert firsts[iso_ms(recent_home + timedelta(hours=1))] == iso_ms(
        recent_home + timedelta(hours=1, minutes=10)
    )


def test_a_transcript_appended_to_and_given_an_old_time_is_looked_up(recent_home, syncs, tmp_path):
    config_dir = tmp_path / "home" / ".claude"
    append(
        config_dir, "b", assistant_line(recent_home + timedelta(hours=1, minutes=2), session_id="b")
    )
    path = next((config_dir / "projects").rglob("b.jsonl"))
    three_days_ago = time.time() - 3 * 86400
    os.utime(path, (three_days_ago, three_days_ago))  # a copy that kept another PC's clock
    firsts = syncs.run()
    assert syncs.looked_up
    assert firsts == syncs.fresh()


@pytest.mark.parametrize("case", ["escaped field name", "nested too deep"])
def test_lines_written_unusually_are_judged_or_skipped_without_failing(
    recent_home, syncs, tmp_path, case
):
    config_dir = tmp_path / "home" / ".claude"
    earlier = assistant_line(recent_home + timedelta(hours=1, minutes=2), session_id="b")
    if case == "escaped field name":
        line = earlier.replace('"timestamp"', '"timest\\u0061mp"')
    else:
        line = earlier[:-1] + ',"deep":' + "[" * 1100 + "]" * 1100 + "}"
    append(config_dir, "b", line)
    firsts = syncs.run()
    assert firsts == syncs.fresh()
    if case == "escaped field name":
        assert syncs.looked_up  # ccusage reads the field: the line is earlier than the first
