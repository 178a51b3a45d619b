"""The agent's request keys: ccusage's dedupe key hashed per hour, and logs without some."""

import json
import os
from datetime import UTC, date, datetime

from claude_telemetry.ccusage import claude_dirs
from claude_telemetry.request_keys import OwnedKeys, request_key, scan, without_requests


def line(message_id: str, request_id: str | None, at: str, **extra) -> str:
    record = {"type": "assistant", "timestamp": at, "message": {"id": message_id, "usage": {}}}
    if request_id is not None:
        record["requestId"] = request_id
    record.update(extra)
    return json.dumps(record, separators=(",", ":")) + "\n"


def write(tmp_path, lines: list[str]):
    folder = tmp_path / ".claude" / "projects" / "-home-dev-webapp"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "s1.jsonl"
    path.write_text("".join(lines))
    return path


def test_streamed_lines_of_one_request_share_one_key_in_its_first_hour(tmp_path):
    write(
        tmp_path,
        [
            line("msg_1", "req_1", "2026-11-24T09:59:59.000Z"),
            line("msg_1", "req_1", "2026-11-24T10:00:01.000Z"),
            line("msg_2", None, "2026-11-24T10:05:00.000Z"),  # no request id: never deduped
            '{"type":"user","message":{"content":"a prompt"}}\n',
            "not json\n",
        ],
    )
    hours = scan([tmp_path / ".claude" / "projects"])
    assert hours == {"2026-11-24T09:00:00Z": [request_key("msg_1", "req_1")]}
    assert len(request_key("msg_1", "req_1")) == 16


def test_a_window_keeps_two_days_of_slack_before_its_first_day(tmp_path):
    write(
        tmp_path,
        [
            line("msg_old", "req_old", "2026-11-18T23:00:00.000Z"),
            line("msg_edge", "req_edge", "2026-11-19T01:00:00.000Z"),
            line("msg_new", "req_new", "2026-11-22T01:00:00.000Z"),
        ],
    )
    hours = scan([tmp_path / ".claude" / "projects"], since=date(2026, 11, 21))
    assert sorted(hours) == ["2026-11-19T01:00:00Z", "2026-11-22T01:00:00Z"]


def test_the_copy_leaves_out_only_the_foreign_requests_and_keeps_file_times(tmp_path):
    kept = [line("msg_1", "req_1", "2026-11-24T09:00:00.000Z"), '{"type":"summary"}\n']
    dropped = line("msg_2", "req_2", "2026-11-24T09:05:00.000Z")
    path = write(tmp_path, [kept[0], dropped, kept[1]])
    os.utime(path, (1_700_000_000, 1_700_000_000))
    dirs = claude_dirs({"CLAUDE_CONFIG_DIR": str(tmp_path / ".claude")})

    value = without_requests(dirs, {request_key("msg_2", "req_2")}, tmp_path / "copy")

    copy = tmp_path / "copy" / "0" / "projects" / "-home-dev-webapp" / "s1.jsonl"
    assert value == str(tmp_path / "copy" / "0")
    assert copy.read_text() == "".join(kept)
    assert copy.stat().st_mtime == 1_700_000_000
    assert path.read_text().count("msg_2") == 1  # the real logs are untouched


def test_keys_confirmed_as_owned_are_not_asked_about_again_for_the_same_server_and_machine(
    tmp_path,
):
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    hours = {"2026-11-24T10:00:00Z": ["a1", "b2"], "2026-11-24T11:00:00Z": ["c3"]}
    owned = OwnedKeys(tmp_path, "server-1")
    assert owned.unasked(hours) == hours

    owned.confirm(hours, {"b2"}, now)

    again = OwnedKeys(tmp_path, "server-1")
    # Another machine's key is asked about every time; owned ones never again.
    assert again.unasked(hours) == {"2026-11-24T10:00:00Z": ["b2"]}
    newer = {**hours, "2026-11-24T12:00:00Z": ["d4"]}
    assert again.unasked(newer) == {"2026-11-24T10:00:00Z": ["b2"], "2026-11-24T12:00:00Z": ["d4"]}
    # Another server or machine starts with nothing confirmed.
    assert OwnedKeys(tmp_path, "server-2").unasked(hours) == hours
    # Hours older than KEEP are forgotten when the next answer is kept.
    later = datetime(2026, 11, 30, 12, tzinfo=UTC)
    again.confirm({"2026-11-30T12:00:00Z": ["d4"]}, set(), later + OwnedKeys.KEEP)
    assert OwnedKeys(tmp_path, "server-1").hours == {"2026-11-30T12:00:00Z": {"d4"}}


def test_an_unreadable_owned_keys_file_only_means_asking_again(tmp_path):
    (tmp_path / OwnedKeys.FILE).write_text("{not json")
    hours = {"2026-11-24T10:00:00Z": ["a1"]}
    assert OwnedKeys(tmp_path, "s").unasked(hours) == hours
