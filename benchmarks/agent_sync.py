"""`make bench` (agent part): what one steady-state `claude-telemetry sync` costs on a PC.

Writes 90 days of synthetic Claude Code and Codex logs, starts the real server on a scratch
SQLite database (its own VAR_DIR, no worker: derived work stays queued as it would for a
worker), connects the real agent to it and sends the full history once. Then it times:

- one `ccusage daily --json --offline` run, through the npm launcher and the native binary
  (the anchor the goal is stated against);
- steady-state syncs with no new usage since the last one;
- steady-state syncs after one more Claude Code request was appended to a log;

each as a new process, as the background service runs it, with its peak RSS and the gzip
payload it sent. The figures replace the agent section of docs/benchmarks.md (between its
markers), leaving the other sections alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import sections  # noqa: E402

LAUNCHER = ROOT / "node_modules" / ".bin" / "ccusage"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run `argv` in a fresh helper process that reports its own child's wall time and peak
    RSS (ru_maxrss of the child and everything it waited for), so earlier runs never mask it."""
    helper = (
        "import json, resource, subprocess, sys, time\n"
        "started = time.time()\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "wall = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "sys.stderr.write(p.stderr.decode('utf-8', 'replace'))\n"
        "print(json.dumps({'wall': wall, 'rss_kib': rss, 'code': p.returncode, 'at': started,\n"
        "                  'out': p.stdout.decode('utf-8', 'replace')}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", helper, *argv], env=env, capture_output=True, text=True
    )
    data = json.loads(done.stdout.strip().splitlines()[-1])
    if data["code"] != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({data['code']}):\n{done.stderr}")
    LAST_START[0] = data["at"]
    return data["wall"], data["rss_kib"], data["out"]


# When the last run_measured process started (epoch seconds), for the phases of a sync.
LAST_START = [0.0]


def sync_phases(log_file: Path, started: float, wall: float) -> dict[str, float] | None:
    """Seconds of one sync's phases from the agent's own log lines (millisecond times):
    start (Python start and imports, to "running ccusage"), ccusage (the reports and the
    request keys, to "reports ready"), ingest (to "sync finished") and after (the limits
    refresh and the exit). None when the lines are missing."""
    moments: dict[str, float] = {}
    marks = {
        "claude_telemetry.sync: running ccusage": "ccusage",
        "claude_telemetry.sync: reports ready": "ingest",
        "claude_telemetry.sync: sync finished": "after",
    }
    for line in log_file.read_text("utf-8").splitlines():
        try:
            when = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").astimezone().timestamp()
        except ValueError:
            continue
        if when < started - 1:
            continue
        for text, phase in marks.items():
            if text in line:
                moments[phase] = when
    if len(moments) != 3:
        return None
    return {
        "start": moments["ccusage"] - started,
        "ccusage": moments["ingest"] - moments["ccusage"],
        "ingest": moments["after"] - moments["ingest"],
        "after": started + wall - moments["after"],
    }


def reused_first_entries(log_file: Path, started: float) -> bool:
    """Did the sync that started at `started` (epoch seconds) reuse the last look-up of the
    hours' first entries (first_activity), by the agent's own log?"""
    for line in log_file.read_text("utf-8").splitlines():
        try:
            when = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").astimezone().timestamp()
        except ValueError:
            continue
        if when >= started - 1 and "first entries as last looked up" in line:
            return True
    return False


def append_request(home: Path, moment: datetime) -> None:
    """One more assistant message in the newest Claude Code transcript (a fresh request)."""
    logs = sorted((home / ".claude" / "projects").rglob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    newest = logs[-1]
    last = None
    for line in newest.read_text("utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("type") == "assistant" and isinstance(entry.get("message"), dict):
            last = entry
    if last is None:
        raise SystemExit(f"no assistant entry in {newest}")
    entry = json.loads(json.dumps(last))
    entry["uuid"] = str(uuid.uuid4())
    entry["timestamp"] = (
        moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )
    entry["message"]["id"] = f"msg_bench_{uuid.uuid4().hex[:20]}"
    entry["requestId"] = f"req_bench_{uuid.uuid4().hex[:20]}"
    with newest.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, separators=(",", ":")) + "\n")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    if not LAUNCHER.exists():
        raise SystemExit(f"ccusage is not installed at {LAUNCHER}: run `make install`.")
    python = sys.executable
    work = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    server = None
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        home = work / "home"
        print(f"Writing {args.days} days of synthetic logs…", flush=True)
        subprocess.run(
            [
                python,
                "-m",
                "telemetry_site.synthetic_logs",
                str(home),
                "--days",
                str(args.days),
                "--anchor",
                now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        port = free_port()
        server_env = {
            **os.environ,
            "VAR_DIR": str(work / "var"),
            "SITE_URL": f"http://127.0.0.1:{port}",
            "INGEST_THROTTLE_RATE": "100000/minute",
            "LOG_LEVEL": "WARNING",
        }
        server_env.pop("DATABASE_URL", None)
        server_env.pop("REDIS_URL", None)
        manage = [python, str(ROOT / "manage.py")]
        print("Preparing the server…", flush=True)
        subprocess.run(
            [*manage, "migrate", "--no-input"], env=server_env, check=True, capture_output=True
        )
        subprocess.run(
            [*manage, "createcachetable"], env=server_env, check=True, capture_output=True
        )
        subprocess.run(
            [*manage, "adduser", "bench@example.com", "--team", "bench", "--role", "owner"],
            env=server_env,
            check=True,
            capture_output=True,
        )
        token = subprocess.run(
            [
                *manage,
                "create_api_token",
                "bench@example.com",
                "--name",
                "bench",
                "--scopes",
                "ingest,read",
            ],
            env=server_env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        server = subprocess.Popen(
            [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
            env=server_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        agent_env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE_", "CODEX_"))}
        agent_env.update(
            HOME=str(home),
            CLAUDE_CONFIG_DIR=f"{home}/.claude,{home}/.config/claude",
            CODEX_HOME=str(home / ".codex"),
            CLAUDE_TELEMETRY_HOME=str(work / "agent"),
            CLAUDE_TELEMETRY_CCUSAGE=str(LAUNCHER),
            NO_COLOR="1",
        )
        agent = [str(_install_agent(work, server_env, manage)), "-m", "claude_telemetry"]
        subprocess.run(
            [
                *agent,
                "setup",
                "--server",
                f"http://127.0.0.1:{port}",
                "--token",
                token,
                "--name",
                "bench-pc",
                "--non-interactive",
            ],
            env=agent_env,
            check=True,
            capture_output=True,
        )
        print("First (full) sync…", flush=True)
        full_wall, _, _ = run_measured([*agent, "sync"], agent_env)
        state_file = work / "agent" / "state.json"
        full_bytes = json.loads(state_file.read_text())["last_sync"]["bytes"]

        daily = ["daily", "--json", "--offline", "--timezone", "UTC"]
        launcher_runs = [run_measured([str(LAUNCHER), *daily], agent_env) for _ in range(args.runs)]
        native = _native_binary()
        native_runs = (
            [run_measured([str(native), *daily], agent_env) for _ in range(args.runs)]
            if native
            else []
        )
        print("Steady-state syncs…", flush=True)
        idle, active = [], []
        for _ in range(args.runs):
            wall, rss, _ = run_measured([*agent, "sync", "--service"], agent_env)
            idle.append((wall, rss, json.loads(state_file.read_text())["last_sync"]["bytes"]))
        phases: list[dict[str, float]] = []
        reused = 0
        for _ in range(args.runs):
            append_request(home, datetime.now(UTC))
            wall, rss, _ = run_measured([*agent, "sync", "--service"], agent_env)
            active.append((wall, rss, json.loads(state_file.read_text())["last_sync"]["bytes"]))
            found = sync_phases(work / "agent" / "logs" / "agent.log", LAST_START[0], wall)
            if found:
                phases.append(found)
            reused += reused_first_entries(work / "agent" / "logs" / "agent.log", LAST_START[0])
        import_ms = _import_ms(agent[0], agent_env)
        # The floor of the ccusage part after new usage: what the agent starts then (the three
        # Claude reports of the window and one session look-up; the unified report is kept
        # while Codex's logs are unchanged), at once, without Python.
        window = json.loads(state_file.read_text())["last_sync"].get("window", "")
        floor_cmd = _ccusage_floor(native, window, work / "agent") if native else None
        floor_ms = (
            median([run_measured(floor_cmd, agent_env)[0] for _ in range(args.runs)]) * 1000
            if floor_cmd
            else None
        )
        # The parts of a sync that are not ccusage: a bare start of the agent's Python, and the
        # limits refresh every sync ends with (one GET of /api/v1/agent/status/).
        bare = [agent[0], "-c", "pass"]
        bare_ms = median([run_measured(bare, agent_env)[0] for _ in range(args.runs)]) * 1000
        refresh = [*agent, "limits", "--refresh", "--quiet"]
        refresh_ms = median([run_measured(refresh, agent_env)[0] for _ in range(args.runs)]) * 1000
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"Scratch folder kept: {work}")

    anchor = median([w for w, _, _ in launcher_runs])
    anchor_native = median([w for w, _, _ in native_runs]) if native_runs else None

    def row(label: str, runs: list[tuple[float, int, int]]) -> str:
        wall = median([w for w, _, _ in runs])
        ratio_native = f"{wall / anchor_native:.2f}x" if anchor_native else "n/a"
        return (
            f"| {label} | {wall * 1000:,.0f} | {wall / anchor:.2f}x | {ratio_native} | "
            f"{max(r for _, r, _ in runs) / 1024:,.0f} | "
            f"{median([b for _, _, b in runs]) / 1024:,.1f} |"
        )

    lines = [
        "## Agent: one sync on a PC",
        "",
        "Made by `make bench` (`benchmarks/agent_sync.py`): the real agent and the real ccusage "
        f"{_ccusage_version()} on {args.days} days of synthetic Claude Code and Codex logs, "
        "against the real server on this machine; each figure the median of "
        f"{args.runs} runs, each run a new process as the background service starts it. "
        "Peak RSS is the largest process of the run (the agent or a ccusage it started).",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; Python {platform.python_version()}; "
        f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the end (other jobs "
        "share the cores: wall times grow with it, the ratios to ccusage timed alongside less).",
        f"- One `ccusage daily --json --offline`: {anchor * 1000:,.0f} ms through the npm "
        "launcher"
        + (f", {anchor_native * 1000:,.0f} ms as the native binary" if anchor_native else "")
        + f" (peak RSS {max(r for _, r, _ in launcher_runs) / 1024:,.0f} MiB).",
        f"- First sync (whole history): {full_wall * 1000:,.0f} ms, {full_bytes / 1024:,.1f} KiB "
        "gzip.",
        f"- Importing the agent's sync path (`python -X importtime`): {import_ms:,.0f} ms; "
        f"a bare Python start: {bare_ms:,.0f} ms; `claude-telemetry limits --refresh` as a "
        f"process of its own: {refresh_ms:,.0f} ms (a sync ends with the same refresh, with "
        "the sync's own HTTP client).",
        "",
        "| steady-state sync | ms | x launcher daily | x native daily | peak RSS MiB | gzip KiB |",
        "|---|---:|---:|---:|---:|---:|",
        row("no new usage since the last sync", idle),
        row("one new request since the last sync", active),
        "",
        "Which baseline: issue 13 states the goal (a steady-state sync at most 1.5x one "
        "ccusage run) against `ccusage daily` as people run it, through the npm launcher. "
        "The agent itself runs the native binary, so the fair comparison is with the same "
        "binary: both columns are shown, and the goal is met only where the native column "
        "is at most 1.5x.",
        "",
        "Where the time of a sync after new usage goes (medians from the agent's own log "
        "times): "
        + (
            ", ".join(
                f"{label} {median([p[key] for p in phases]) * 1000:,.0f} ms"
                for key, label in (
                    ("start", "the Python start and imports"),
                    (
                        "ccusage",
                        "ccusage's reports and session look-ups with the request keys beside them",
                    ),
                    ("ingest", "the ingest round trip"),
                    ("after", "the limits refresh and the exit"),
                )
            )
            if phases
            else "n/a"
        )
        + ". ccusage must run again on changed Claude Code logs: its three Claude reports of "
        "the window, on the view of the recent transcripts, started at once take "
        + (f"{floor_ms:,.0f} ms" if floor_ms is not None else "n/a")
        + " on their own (no Python), three processes sharing two cores (the unified "
        "`daily --by-agent` report is kept while Codex's logs are unchanged, for an hour at "
        "most: at the default 15-minute interval one sync in four runs it as well). The "
        "session look-ups for each recent hour's first entry are kept while the lines "
        "appended since cannot change them (`first_activity.py`); "
        f"{reused} of {args.runs} syncs above reused them, the first one after the full "
        "history looked them up (one more process per active session). "
        + (
            f"The Python start and imports alone take {bare_ms + import_ms:,.0f} ms, more "
            f"than 1.5x one native `ccusage daily` ({1.5 * anchor_native * 1000:,.0f} ms): "
            "against the native binary the goal cannot be met by a Python agent."
            # Only when the figures say so (ccusage itself reads only the recent transcripts
            # then, so one report on all the logs is no floor any more).
            if anchor_native and bare_ms + import_ms > 1.5 * anchor_native * 1000
            else ""
        ),
        "",
        "Before the agent ran ccusage's native binary, reused unchanged reports and ran the "
        "rest in parallel (issue 13), one steady-state sync took 6.7-9x one `ccusage daily` "
        "run through the launcher: five ccusage runs one after the other, each starting Node. "
        "Later steps: the request keys the server confirmed as this machine's are not sent "
        "again (after one new request a sync sends that one key), and the agent talks to the "
        "server with the standard library's `http.client` instead of httpx, whose import took "
        "40-130 ms of CPU while ccusage ran. On one machine and evening, a sync after new usage "
        "took 293-309 ms (2.0-2.1x the launcher) with the first step alone and 248-275 ms "
        "(1.8-1.9x) with both. Then, on another evening that started at 1.88-1.96x: Python's "
        "cycle collector set aside for the imports' objects (`launch.py`) and the limits status "
        "brought by the report's answer (`?include=agent_status`, one request less) gave "
        "1.62-1.66x; reusing the last look-up of first entries (one ccusage process less) and "
        "a log file opened without `logging.handlers` gave 1.38-1.60x over six runs that "
        "morning (median 1.49x): the goal is met at the edge of this machine's noise.",
    ]
    section = "\n".join(lines)
    print(section)
    sections.replace_section(Path(args.output), "agent-sync", section)
    return 0


def _install_agent(work: Path, server_env: dict[str, str], manage: list[str]) -> Path:
    """A virtual environment with the agent installed from the server's own wheel, as a PC
    has it (not this checkout's editable install); its dependencies come from this
    environment. Returns its python."""
    subprocess.run([*manage, "build_agent_wheel"], env=server_env, check=True, capture_output=True)
    wheel = next((work / "var" / "agent-wheel").glob("*.whl"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)],
        check=True,
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    deps = subprocess.run(
        [sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "agent-deps.pth").write_text(deps + "\n")
    return python


def _native_binary() -> Path | None:
    sys.path.insert(0, str(ROOT / "agent"))
    from claude_telemetry.ccusage import find_native_binary

    return find_native_binary([str(LAUNCHER)])


def _ccusage_floor(native: Path, window: str, agent_home: Path) -> list[str] | None:
    """A shell line that starts the agent's three Claude reports for `window` ("since YYYY-MM-DD")
    at once, and waits (the session look-ups for first entries are reused: first_activity)."""
    import shlex
    from datetime import date

    sys.path.insert(0, str(ROOT / "agent"))
    from claude_telemetry.ccusage import CLAUDE_ONLY_KINDS, Runner

    if not window.startswith("since "):
        return None
    since = date.fromisoformat(window.split()[1])
    runner = Runner(None, timezone="UTC")
    commands = [[str(native), *runner.report_args(kind, since)] for kind in CLAUDE_ONLY_KINDS]
    # On the view of the recent transcripts the agent's last sync made (log_view), if any.
    view = sorted((agent_home / "logs-view").glob("[0-9]*"))
    if view:
        folders = ",".join(str(v) for v in view)
        commands = [["env", f"CLAUDE_CONFIG_DIR={folders}", *c] for c in commands]
    line = " & ".join(shlex.join(c) + " >/dev/null" for c in commands) + " & wait"
    return ["/bin/sh", "-c", line]


def _ccusage_version() -> str:
    package = ROOT / "node_modules" / "ccusage" / "package.json"
    return json.loads(package.read_text())["version"]


def _import_ms(python: str, env: dict[str, str]) -> float:
    done = subprocess.run(
        [
            python,
            "-X",
            "importtime",
            "-c",
            "import claude_telemetry.cli, claude_telemetry.sync",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    total = 0
    for line in done.stderr.splitlines():
        parts = line.split("|")
        # Top-level imports only (no indentation in the name column).
        if len(parts) == 3 and parts[2].startswith(" ") and not parts[2].startswith("  "):
            try:
                total += int(parts[1])
            except ValueError:
                continue
    return total / 1000


if __name__ == "__main__":
    sys.exit(main())
