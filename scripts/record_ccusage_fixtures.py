#!/usr/bin/env python3
"""Record tests/fixtures/ccusage/: the real ccusage's output on the project's synthetic logs.

Usage (from the repository, with the venv):
    .venv/bin/python scripts/record_ccusage_fixtures.py [--ccusage PATH] [--ccusage-v18 PATH]

--ccusage defaults to the pinned node_modules/.bin/ccusage (20.0.24). Without --ccusage-v18,
ccusage@18.0.11 is installed with npm into a scratch folder for the run. The input logs are
written to a temporary $HOME from FIXTURE_ANCHOR and FIXTURE_SEED and are not kept: the tests
write the same bytes again. See tests/fixtures/ccusage/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from telemetry_site.synthetic_logs import (  # noqa: E402
    FIXTURE_ANCHOR,
    FIXTURE_DAYS,
    FIXTURE_SEED,
    WEBAPP,
    write_home,
)

V20 = "20.0.24"
V18 = "18.0.11"
OUT = ROOT / "tests" / "fixtures" / "ccusage"
# Written into recorded messages instead of the temporary folder, so no local path is kept.
PLACEHOLDER = "FIXTURES"
JSON = ("--json", "--offline")


def v20_cases(active_session: str) -> list[tuple[str, str, list[str]]]:
    """(file name, which data, arguments) for every ccusage 20 report the tests read."""
    project = f"--project={WEBAPP.key}"
    cases = [
        ("all-daily", "home", ["daily", *JSON]),
        ("all-daily-by-agent", "home", ["daily", *JSON, "--by-agent"]),
        ("all-daily-breakdown", "home", ["daily", *JSON, "--breakdown"]),
        (
            "all-daily-since-until",
            "home",
            ["daily", *JSON, "--since", "20261118", "--until", "2026-11-22"],
        ),
        ("all-daily-tz-tokyo", "home", ["daily", *JSON, "--timezone", "Asia/Tokyo"]),
        ("all-daily-no-cost", "home", ["daily", *JSON, "--no-cost"]),
        ("all-daily-last3", "home", ["daily", *JSON, "--last", "3"]),
        ("all-daily-sections", "home", ["daily", *JSON, "--sections", "weekly,monthly,session"]),
        ("all-weekly", "home", ["weekly", *JSON]),
        ("all-monthly", "home", ["monthly", *JSON]),
        ("all-session", "home", ["session", *JSON]),
        ("all-session-by-agent", "home", ["session", *JSON, "--by-agent"]),
        ("all-session-until", "home", ["session", *JSON, "--until", "20261124"]),
        ("all-daily-instances", "home", ["daily", *JSON, "--instances"]),
        ("claude-daily", "home", ["claude", "daily", *JSON]),
        ("claude-daily-breakdown", "home", ["claude", "daily", *JSON, "--breakdown"]),
        ("claude-daily-instances", "home", ["claude", "daily", *JSON, "--instances"]),
        (
            "claude-daily-instances-breakdown",
            "home",
            ["claude", "daily", *JSON, "--instances", "--breakdown"],
        ),
        ("claude-daily-project", "home", ["claude", "daily", *JSON, project]),
        (
            "claude-daily-instances-project",
            "home",
            ["claude", "daily", *JSON, "--instances", project],
        ),
        # A value that starts with "-" must be glued on with "=": ccusage refuses this form.
        (
            "claude-daily-project-separate-arg",
            "home",
            ["claude", "daily", *JSON, "--project", WEBAPP.key],
        ),
        (
            "claude-daily-since-until",
            "home",
            ["claude", "daily", *JSON, "--since", "20261118", "--until", "20261122"],
        ),
        ("claude-daily-tz-tokyo", "home", ["claude", "daily", *JSON, "--timezone", "Asia/Tokyo"]),
        ("claude-daily-mode-calculate", "home", ["claude", "daily", *JSON, "--mode", "calculate"]),
        ("claude-daily-mode-display", "home", ["claude", "daily", *JSON, "--mode", "display"]),
        ("claude-daily-order-desc", "home", ["claude", "daily", *JSON, "--order", "desc"]),
        ("claude-weekly", "home", ["claude", "weekly", *JSON]),
        ("claude-weekly-monday", "home", ["claude", "weekly", *JSON, "--start-of-week", "monday"]),
        ("claude-monthly", "home", ["claude", "monthly", *JSON]),
        ("claude-monthly-breakdown", "home", ["claude", "monthly", *JSON, "--breakdown"]),
        ("claude-session", "home", ["claude", "session", *JSON]),
        ("claude-session-breakdown", "home", ["claude", "session", *JSON, "--breakdown"]),
        ("claude-session-until", "home", ["claude", "session", *JSON, "--until", "20261124"]),
        ("claude-session-id", "home", ["claude", "session", *JSON, "--id", active_session]),
        ("blocks", "home", ["blocks", *JSON]),
        ("blocks-breakdown", "home", ["blocks", *JSON, "--breakdown"]),
        ("blocks-recent", "home", ["blocks", *JSON, "--recent"]),
        ("blocks-active", "home", ["blocks", *JSON, "--active"]),
        (
            "blocks-active-limit-500k",
            "home",
            ["blocks", *JSON, "--active", "--token-limit", "500000"],
        ),
        ("blocks-active-limit-max", "home", ["blocks", *JSON, "--active", "--token-limit", "max"]),
        ("blocks-limit-max", "home", ["blocks", *JSON, "--token-limit", "max"]),
        ("blocks-session-length-3", "home", ["blocks", *JSON, "--session-length", "3"]),
        (
            "blocks-since-until",
            "home",
            ["blocks", *JSON, "--since", "20261120", "--until", "20261122"],
        ),
        ("blocks-mode-calculate", "home", ["blocks", *JSON, "--mode", "calculate"]),
        ("codex-daily", "home", ["codex", "daily", *JSON]),
        ("codex-monthly", "home", ["codex", "monthly", *JSON]),
        ("codex-session", "home", ["codex", "session", *JSON]),
        ("empty-claude-daily", "empty", ["claude", "daily", *JSON]),
        ("empty-all-daily", "empty", ["daily", *JSON]),
        ("empty-claude-session", "empty", ["claude", "session", *JSON]),
        ("empty-blocks", "empty", ["blocks", *JSON]),
        ("empty-blocks-active", "empty", ["blocks", *JSON, "--active"]),
        # The four reports the agent sends, on a fresh Claude Code install (no session yet).
        ("empty-claude-daily-instances", "empty", ["claude", "daily", *JSON, "--instances"]),
        ("empty-blocks-hourly", "empty", ["blocks", *JSON, "--session-length", "1"]),
        ("empty-all-daily-by-agent", "empty", ["daily", *JSON, "--by-agent"]),
        ("missing-dir-claude-daily", "missing", ["claude", "daily", *JSON]),
        ("missing-dir-all-daily", "missing", ["daily", *JSON]),
        (
            "statusline",
            "statusline",
            ["statusline", "--offline", "--no-cache", "--visual-burn-rate", "emoji-text"],
        ),
        (
            "statusline-cost-both",
            "statusline",
            ["statusline", "--offline", "--no-cache", "--cost-source", "both"],
        ),
    ]
    return cases


V18_CASES = [
    ("daily", "home", ["daily", *JSON]),
    ("daily-breakdown", "home", ["daily", *JSON, "--breakdown"]),
    ("daily-instances", "home", ["daily", *JSON, "--instances"]),
    ("daily-project", "home", ["daily", *JSON, f"--project={WEBAPP.key}"]),
    ("daily-calculate", "home", ["daily", *JSON, "--mode", "calculate"]),
    ("weekly", "home", ["weekly", *JSON]),
    ("monthly", "home", ["monthly", *JSON]),
    ("session", "home", ["session", *JSON]),
    ("blocks", "home", ["blocks", *JSON]),
    ("blocks-active", "home", ["blocks", *JSON, "--active"]),
    ("blocks-active-limit-500k", "home", ["blocks", *JSON, "--active", "--token-limit", "500000"]),
]


def statusline_input(home: Path, manifest: dict) -> dict:
    """What Claude Code pipes to a status line command during the active session."""
    roles = manifest["roles"]
    cwd = roles["active_session_cwd"]
    transcript = f".claude/projects/{roles['active_session_project']}/{roles['active_session']}"
    return {
        "session_id": roles["active_session"],
        "transcript_path": str(home / f"{transcript}.jsonl"),
        "cwd": cwd,
        "model": {"id": "claude-opus-4-5-20251101", "display_name": "Opus 4.5"},
        "workspace": {"current_dir": cwd, "project_dir": cwd},
        "version": "2.0.42",
        "output_style": {"name": "default"},
        "cost": {
            "total_cost_usd": 1.23,
            "total_duration_ms": 5_400_000,
            "total_api_duration_ms": 900_000,
            "total_lines_added": 120,
            "total_lines_removed": 30,
        },
        "exceeds_200k_tokens": False,
    }


class Recorder:
    def __init__(self, scratch: Path, home: Path, stdin_file: Path):
        self.scratch = scratch
        empty = scratch / "empty"
        (empty / "projects").mkdir(parents=True)
        missing = scratch / "does-not-exist"
        self.data = {
            "home": (home, f"{home}/.claude,{home}/.config/claude", home / ".codex"),
            "statusline": (home, f"{home}/.claude,{home}/.config/claude", home / ".codex"),
            "empty": (empty, str(empty), empty / ".codex"),
            "missing": (empty, str(missing), empty / ".codex"),
        }
        self.stdin_file = stdin_file
        # No .ccusage/ config folder here, so only the arguments count.
        self.cwd = scratch / "cwd"
        self.cwd.mkdir()

    def env(self, which: str) -> dict:
        home, claude, codex = self.data[which]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE_", "CODEX_"))}
        env.pop("XDG_CONFIG_HOME", None)
        env.update(
            HOME=str(home),
            CLAUDE_CONFIG_DIR=claude,
            CODEX_HOME=str(codex),
            TZ="UTC",
            NO_COLOR="1",
        )
        return env

    def record(self, binary: Path, cases, out: Path) -> None:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        codes = ["name\texit_code\tcommand"]
        for name, which, args in cases:
            stdin = self.stdin_file.read_bytes() if which == "statusline" else None
            done = subprocess.run(
                [str(binary), *args],
                env=self.env(which),
                cwd=self.cwd,
                input=stdin,
                capture_output=True,
                timeout=300,
                check=False,
            )
            command = shlex.join(["ccusage", *args])
            if stdin is not None:
                command += " < statusline-input.json"
            codes.append(f"{name}\t{done.returncode}\t{command}")
            if done.returncode == 0:
                suffix = ".txt" if which == "statusline" else ".json"
                (out / f"{name}{suffix}").write_bytes(done.stdout)
            stderr = done.stderr.decode("utf-8", "replace").replace(str(self.scratch), PLACEHOLDER)
            if done.returncode != 0 or stderr.strip():
                (out / f"{name}.stderr").write_text(stderr)
            print(f"  {name}: exit {done.returncode}")
        (out / "_exit_codes.tsv").write_text("\n".join(codes) + "\n")


def version_of(binary: Path) -> str:
    done = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip().split()[-1]


def install_v18(scratch: Path) -> Path:
    if shutil.which("npm") is None:
        sys.exit("npm is needed to install ccusage@18.0.11 (or pass --ccusage-v18 PATH)")
    folder = scratch / "ccusage-18"
    folder.mkdir()
    print(f"Installing ccusage@{V18} with npm into a scratch folder…")
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--silent", f"ccusage@{V18}"],
        cwd=folder,
        check=True,
        timeout=600,
    )
    return folder / "node_modules" / ".bin" / "ccusage"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ccusage", type=Path, default=ROOT / "node_modules" / ".bin" / "ccusage")
    parser.add_argument("--ccusage-v18", type=Path, help="a ccusage 18.0.11 (default: npm install)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    for binary, wanted in ((args.ccusage, V20), (args.ccusage_v18, V18)):
        if binary is not None and version_of(binary) != wanted:
            sys.exit(f"{binary} is not ccusage {wanted}")

    with tempfile.TemporaryDirectory(prefix="cct-record-") as tmp:
        scratch = Path(tmp)
        v18 = args.ccusage_v18 or install_v18(scratch)
        if version_of(v18) != V18:
            sys.exit(f"{v18} is not ccusage {V18}")
        home = scratch / "home"
        manifest = write_home(home, anchor=FIXTURE_ANCHOR, seed=FIXTURE_SEED, days=FIXTURE_DAYS)
        payload = statusline_input(home, manifest)
        stdin_file = scratch / "statusline-input.json"
        stdin_file.write_text(json.dumps(payload, separators=(",", ":")))

        recorder = Recorder(scratch, home, stdin_file)
        print(f"ccusage {V20} -> {args.out / 'output'}")
        cases = v20_cases(manifest["roles"]["active_session"])
        recorder.record(args.ccusage, cases, args.out / "output")
        print(f"ccusage {V18} -> {args.out / f'output-v{V18}'}")
        recorder.record(v18, V18_CASES, args.out / f"output-v{V18}")

    # Kept without the scratch folder: the path is relative to the generated home.
    payload["transcript_path"] = str(Path(payload["transcript_path"]).relative_to(home))
    (args.out / "output" / "statusline-input.json").write_text(
        json.dumps(payload, separators=(",", ":")) + "\n"
    )
    recorded = {
        "generator": "telemetry_site.synthetic_logs.write_home",
        **manifest,
        "ccusage": {"output": V20, f"output-v{V18}": V18},
        "recorded_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    (args.out / "MANIFEST.json").write_text(json.dumps(recorded, indent=2) + "\n")
    print(f"Wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
