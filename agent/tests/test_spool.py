"""The on-disk spool: order, size cap, refused reports set aside, no half-written entries."""

import gzip
import json
import os
import time

from claude_telemetry.spool import Spool


def spool_at(tmp_path, max_bytes=10_000) -> Spool:
    return Spool(tmp_path / "spool", tmp_path / "spool" / "rejected", max_bytes)


def body(n: int, size: int = 100) -> bytes:
    return gzip.compress(json.dumps({"n": n, "pad": os.urandom(size).hex()}).encode(), mtime=0)


def test_entries_come_back_in_the_order_they_were_added(tmp_path):
    spool = spool_at(tmp_path)
    bodies = [body(i) for i in range(5)]
    for b in bodies:
        spool.add(b)
    assert [e.read() for e in spool.entries()] == bodies


def test_over_the_cap_the_oldest_entries_are_dropped_and_reported(tmp_path):
    first, second, third = (body(n, 400) for n in range(3))
    # Random padding compresses to slightly uneven sizes, so the cap is set from the bodies:
    # any two fit, all three do not.
    spool = spool_at(tmp_path, max_bytes=len(first) + len(second) + len(third) - 1)
    spool.add(first)
    spool.add(second)
    _, dropped = spool.add(third)
    assert len(dropped) == 1
    assert [json.loads(gzip.decompress(e.read()))["n"] for e in spool.entries()] == [1, 2]


def test_the_newest_entry_is_kept_even_when_it_alone_passes_the_cap(tmp_path):
    spool = spool_at(tmp_path, max_bytes=10)
    spool.add(body(0))
    entry, dropped = spool.add(body(1))
    assert len(dropped) == 1 and spool.entries() == [entry]


def test_a_half_written_temporary_file_is_never_sent_and_is_cleaned_up_later(tmp_path):
    spool = spool_at(tmp_path)
    spool.add(body(0))
    crash_leftover = spool.directory / ".tmp-abc123"
    crash_leftover.write_bytes(b"\x1f\x8b half")
    assert len(spool.entries()) == 1
    old = time.time() - 2 * 24 * 3600
    os.utime(crash_leftover, (old, old))
    spool.clean_stale_tmp()
    assert not crash_leftover.exists()


def test_a_refused_report_moves_to_rejected_with_the_reason(tmp_path):
    spool = spool_at(tmp_path)
    entry, _ = spool.add(body(0))
    target = spool.reject(entry.read(), {"status": 400, "error": "bad"}, source=entry)
    assert spool.entries() == []
    assert spool.rejected() == [target]
    reason = target.with_name(target.name.removesuffix(".json.gz") + ".error.json")
    assert json.loads(reason.read_text())["status"] == 400


def test_only_the_newest_refused_reports_are_kept(tmp_path):
    spool = spool_at(tmp_path)
    for i in range(25):
        spool.reject(body(i), {"status": 409, "error": f"refusal {i}"})
    kept = spool.rejected()
    assert len(kept) == 20
    assert json.loads(gzip.decompress(kept[0].read_bytes()))["n"] == 5
    assert len(list(spool.rejected_dir.glob("*.error.json"))) == 20
