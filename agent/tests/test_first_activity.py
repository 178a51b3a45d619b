"""The first entry of each recent hour, read from the real ccusage on logs written minutes ago."""

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
