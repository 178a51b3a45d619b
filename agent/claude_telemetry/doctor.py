"""`doctor`: every check prints ok, or what is wrong and how to fix it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime

from claude_telemetry import service
from claude_telemetry.ccusage import CcusageError, Runner, ccusage_argv, claude_dirs, codex_dir
from claude_telemetry.claude_settings import Installer, is_wrapper, settings_path
from claude_telemetry.client import Client, SendError
from claude_telemetry.config import (
    CCUSAGE_VERSION,
    Config,
    ConfigError,
    Home,
    load_config,
    load_state,
    load_token,
)
from claude_telemetry.envelope import check_in_envelope, encode
from claude_telemetry.native import find_native_binary
from claude_telemetry.spool import Spool
from claude_telemetry.statusline import latest_capture_time

OK, WARN, FIX = "ok", "warn", "fix"
MAX_SKEW_SECONDS = 120


@dataclass
class Check:
    name: str
    level: str
    detail: str
    fix: str = ""


def _chmod_advice(home) -> str:
    """The chmod line for what exists: chmod fails on a file that setup has not written yet."""
    files = [str(p) for p in (home.config_file, home.token_file) if _mode(p) is not None]
    advice = f"chmod 700 {home.root}"
    return advice + (f" && chmod 600 {' '.join(files)}" if files else "")


def _mode(path) -> int | None:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return None


def check_config(home: Home) -> tuple[Check, Config | None]:
    try:
        config = load_config(home)
    except ConfigError as exc:
        return Check("config", FIX, str(exc), "claude-telemetry setup"), None
    detail = f"{home.config_file}: server {config.server_url}, machine {config.machine_name!r}"
    return Check("config", OK, detail), config


def check_permissions(home: Home, config: Config | None) -> Check:
    if os.name != "posix":
        return Check("permissions", OK, "not checked on this OS (the files live in your profile)")
    loose = []
    if (_mode(home.root) or 0) & 0o077:
        loose.append(f"{home.root} ({oct(_mode(home.root))})")
    for path in (home.config_file, home.token_file):
        mode = _mode(path)
        if mode is not None and mode & 0o077:
            loose.append(f"{path} ({oct(mode)})")
    if loose:
        return Check(
            "permissions",
            FIX,
            "readable by others: " + ", ".join(loose),
            _chmod_advice(home),
        )
    store = "OS keyring" if config and config.token_store == "keyring" else "file, mode 600"
    return Check("permissions", OK, f"agent home private; token in {store}")


NODE_FIX = (
    "Install Node.js 20 or newer (https://nodejs.org/en/download, or your package manager; "
    "it brings npx), open a new terminal so it is on PATH, and run claude-telemetry doctor "
    "again. `node --version` must say v20 or later. Or set CLAUDE_TELEMETRY_CCUSAGE to a "
    "ccusage binary."
)


def node_version(node: str) -> tuple[int, str] | None:
    """(major, 'v20.11.1') of the `node` program, or None when it does not answer."""
    try:
        text = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=20, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    major = text.lstrip("v").split(".")[0]
    return (int(major), text) if major.isdigit() else None


def _runs_on_node(argv: list[str]) -> bool:
    """npx, node, or a script whose first line starts node (ccusage's npm launcher)."""
    name = os.path.basename(argv[0]).lower()
    if name.startswith(("npx", "node")):
        return True
    try:
        with open(argv[0], "rb") as fh:
            first = fh.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"node" in first


def check_node(config: Config | None) -> Check:
    """ccusage is an npm package: Node.js 20+ runs it (through npx by default). Where its
    native binary is found (native.py), Node is only needed to install or update it."""
    try:
        argv = ccusage_argv(config)
    except CcusageError as exc:
        return Check(
            "node",
            FIX,
            str(exc).replace(" Run `claude-telemetry doctor` for advice.", ""),
            NODE_FIX,
        )
    native = find_native_binary(argv)
    if native is not None:
        return Check("node", OK, f"ccusage runs as its native binary {native} (no Node start)")
    if not _runs_on_node(argv):
        return Check("node", OK, f"ccusage runs as {argv[0]} (no Node.js needed)")
    node = shutil.which("node")
    if node is None:
        return Check("node", FIX, f"{argv[0]} needs Node.js, which is not on PATH", NODE_FIX)
    found = node_version(node)
    if found is None or found[0] < 20:
        shown = found[1] if found else "of unknown version"
        return Check("node", FIX, f"Node.js {shown} at {node} is too old for ccusage", NODE_FIX)
    return Check("node", OK, f"Node.js {found[1]}, ccusage through {argv[0]}")


def check_ccusage(home: Home, config: Config | None) -> tuple[Check, str]:
    runner = Runner(config, workdir=home.root if home.root.is_dir() else None)
    try:
        version = runner.version()
    except CcusageError as exc:
        return Check(
            "ccusage",
            FIX,
            str(exc).replace(" Run `claude-telemetry doctor` for advice.", ""),
            "Check the node line above; behind a proxy set npm's proxy "
            "(npm config set proxy …), or install ccusage and point "
            "CLAUDE_TELEMETRY_CCUSAGE at it.",
        ), "unknown"
    if version != CCUSAGE_VERSION:
        return Check(
            "ccusage",
            WARN,
            f"ccusage {version}; this agent is tested with {CCUSAGE_VERSION}",
            f"Use `npx --yes ccusage@{CCUSAGE_VERSION}` (the "
            "default) unless the server's operator says otherwise.",
        ), version
    return Check("ccusage", OK, f"ccusage {version}"), version


def check_claude_dirs() -> Check:
    dirs = claude_dirs()
    where = "CLAUDE_CONFIG_DIR" if dirs.from_env else "default folders"
    if not dirs.valid:
        shown = ", ".join(str(p) for p in dirs.candidates)
        return Check(
            "claude data",
            WARN,
            f"no Claude Code data in {where}: {shown}",
            "If Claude Code runs on this PC, set CLAUDE_CONFIG_DIR to the folder that "
            "contains projects/ (comma-separated for several).",
        )
    counts = ", ".join(f"{p} ({_projects(p)})" for p in dirs.valid)
    if dirs.from_env and dirs.missing:
        return Check(
            "claude data",
            WARN,
            f"found {counts}; no projects/ in {', '.join(str(p) for p in dirs.missing)}",
            "Remove those entries from CLAUDE_CONFIG_DIR or fix their paths.",
        )
    return Check("claude data", OK, counts)


def _projects(folder) -> str:
    count = sum(1 for x in (folder / "projects").iterdir() if x.is_dir())
    return f"{count} project{'s' if count != 1 else ''}"


def check_codex() -> Check:
    path = codex_dir()
    if path.is_dir():
        return Check("codex", OK, f"{path} found")
    return Check("codex", OK, f"{path} not found (only needed if you use Codex; set CODEX_HOME)")


def check_server(home: Home, config: Config, ccusage_version: str) -> list[Check]:
    try:
        token = load_token(home, config)
    except ConfigError as exc:
        return [Check("token", FIX, str(exc), "claude-telemetry setup")]
    checks = []
    state = load_state(home)
    with Client(config.server_url, token, timeout=30) as client:
        try:
            server_time, status = client.server_date()
        except SendError as exc:
            return [
                Check(
                    "server",
                    FIX,
                    str(exc),
                    "Check the URL, your network or VPN, and that the server is running.",
                )
            ]
        if server_time is None:
            checks.append(
                Check(
                    "server",
                    WARN,
                    f"reachable (HTTP {status}) but no Date header; clock not checked",
                )
            )
        else:
            skew = (datetime.now(UTC) - server_time).total_seconds()
            if abs(skew) > MAX_SKEW_SECONDS:
                checks.append(
                    Check(
                        "clock",
                        FIX,
                        f"this PC's clock is {skew:+.0f} s off the server's",
                        "Turn on automatic time (timedatectl set-ntp true "
                        "on Linux; Date & Time settings on macOS/Windows).",
                    )
                )
            else:
                checks.append(
                    Check(
                        "server",
                        OK,
                        f"{config.server_url} reachable, clock within {abs(skew):.0f} s",
                    )
                )
        envelope = check_in_envelope(config, ccusage_version, state.get("timezone") or "UTC")
        try:
            ack = client.ingest(encode(envelope))
        except SendError as exc:
            checks.append(
                Check(
                    "token",
                    FIX,
                    str(exc),
                    "Create a token with the 'ingest' scope "
                    "in the web app (Settings > Tokens) and run claude-telemetry "
                    "setup.",
                )
            )
        else:
            tz = ack.data.get("timezone", "?")
            checks.append(Check("token", OK, f"accepted; the team reports in {tz}"))
    return checks


def check_service(home: Home) -> Check:
    """The background sync: a service, or a cron line. Never advises a command that already
    failed here (install-service's enabling): then it gives that run's manual steps."""
    text = service.describe(home)
    manifest = service.load_manifest(home) or {}
    if service.cron_installed(home):
        extra = " (the service files are unused: claude-telemetry uninstall-service)"
        return Check("service", OK, "sync runs from cron" + (extra if manifest else ""))
    if text == "not installed":
        return Check("service", FIX, "no background sync", "claude-telemetry install-service")
    if manifest.get("enable_error"):
        if service.timer_enabled(manifest):
            return Check("service", OK, f"{manifest.get('description')}, enabled by hand")
        steps = [line.strip() for line in manifest.get("manual_steps") or []]
        return Check("service", FIX, text, "\n".join(steps) or "see install-service's output")
    if "broken" in text or "not enabled" in text:
        return Check("service", FIX, text, "claude-telemetry install-service")
    return Check("service", OK, text)


def check_statusline(home: Home) -> Check:
    record = Installer(home, "statusline").record()
    if record is None:
        return Check(
            "statusline",
            OK,
            "capture not installed (optional: "
            "claude-telemetry install-statusline records the official rate limits)",
        )
    path = settings_path()
    try:
        current = json.loads(path.read_text("utf-8")).get("statusLine")
    except (OSError, ValueError, AttributeError):
        current = None
    if not is_wrapper(current):
        return Check(
            "statusline",
            FIX,
            f"{path} no longer runs the capture",
            "claude-telemetry install-statusline",
        )
    latest = latest_capture_time(home.captures_dir)
    if latest is None:
        return Check(
            "statusline",
            WARN,
            "installed; no rate-limit reading captured yet",
            "Readings appear after Claude Code's first answer in a session, on "
            "Claude subscriptions (not API keys).",
        )
    age = (datetime.now(UTC) - latest).total_seconds() / 3600
    if age > 24:
        return Check(
            "statusline",
            WARN,
            f"last reading {age:.0f} h ago",
            "Normal if Claude Code was not used; otherwise check logs/statusline-errors.log.",
        )
    return Check("statusline", OK, f"installed; last reading {age * 60:.0f} min ago")


def check_spool(home: Home, config: Config | None) -> Check:
    spool = Spool(home.spool_dir, home.rejected_dir, 0)
    waiting, rejected = spool.entries(), spool.rejected()
    if rejected:
        return Check(
            "spool",
            WARN,
            f"{len(waiting)} waiting, {len(rejected)} refused by the server; "
            f"latest: {spool.latest_rejection() or 'reason unreadable'}",
            f"Read {home.rejected_dir}/*.error.json; delete them when done.",
        )
    if waiting:
        return Check(
            "spool",
            WARN,
            f"{len(waiting)} reports waiting to be sent",
            "They go with the next successful sync: claude-telemetry sync",
        )
    return Check("spool", OK, "empty")


def run(home: Home) -> list[Check]:
    config_check, config = check_config(home)
    checks = [config_check, check_permissions(home, config), check_node(config)]
    ccusage_check, version = check_ccusage(home, config)
    checks += [ccusage_check, check_claude_dirs(), check_codex()]
    if config is not None:
        checks += check_server(home, config, version)
    checks += [check_service(home), check_statusline(home), check_spool(home, config)]
    return checks
