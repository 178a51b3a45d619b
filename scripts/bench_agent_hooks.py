#!/usr/bin/env python3
"""Measure what the agent's limit hooks add to each Claude Code prompt (the goal: under 50 ms
at the 95th percentile over a bare Python start).

Usage (from the repository, with the venv):
    .venv/bin/python scripts/bench_agent_hooks.py [--runs 50]

Runs `python -m claude_telemetry hook-prompt-submit` as Claude Code does (a new process, the
documented JSON on stdin) against a scratch agent home whose status says ok, warn and stop, and
`python -c pass` as the baseline; prints the median and p95 of each and of the difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECK = {
    "subject": "budget:bench",
    "kind": "budget",
    "name": "Team cap (whole team, monthly)",
    "threshold": 90,
    "percent": 95.0,
    "spent_usd": "95.00",
    "cap_usd": "100.00",
    "resets_at": "2099-01-01T00:00:00Z",
    "exempt": False,
    "exempt_until": None,
}


def status(level: str) -> dict:
    checks = [] if level == "ok" else [{**CHECK, "level": level}]
    return {"decision": level, "contacts": ["owner@example.com"], "checks": checks}


def timings(argv: list[str], stdin: bytes, runs: int) -> list[float]:
    spent = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, input=stdin, capture_output=True, check=True)
        spent.append((time.perf_counter() - started) * 1000)
    return sorted(spent)


def p95(values: list[float]) -> float:
    return values[max(0, int(len(values) * 0.95) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    baseline = timings([sys.executable, "-c", "pass"], b"", args.runs)
    base_median, base_p95 = statistics.median(baseline), p95(baseline)
    print(f"{'python -c pass':<22} median {base_median:6.1f} ms  p95 {base_p95:6.1f} ms")
    for level in ("ok", "warn", "stop"):
        with tempfile.TemporaryDirectory() as home:
            record = {"fetched_at": time.time(), "status": status(level)}
            (Path(home) / "limits-status.json").write_text(json.dumps(record))
            payload = json.dumps(
                {
                    "session_id": f"bench-{time.time()}",
                    "hook_event_name": "UserPromptSubmit",
                    "prompt": "hello",
                    "cwd": home,
                    "transcript_path": "",
                }
            ).encode()
            argv = [sys.executable, "-m", "claude_telemetry", "--home", home, "hook-prompt-submit"]
            hook = timings(argv, payload, args.runs)
        median = statistics.median(hook)
        print(
            f"{'hook, status ' + level:<22} median {median:6.1f} ms  p95 {p95(hook):6.1f} ms  "
            f"added: median {median - base_median:5.1f} ms, p95 {p95(hook) - base_p95:5.1f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
