"""The ingest envelope (schema 1): machine identity, the window, ccusage's reports verbatim."""

from __future__ import annotations

import getpass
import gzip
import hashlib
import json
import platform
import socket
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from claude_telemetry import __version__
from claude_telemetry.config import Config

SCHEMA = 1


def machine_identity(config: Config, ccusage_version: str, timezone: str) -> dict[str, Any]:
    return {
        "uuid": config.machine_uuid,
        "name": config.machine_name,
        "hostname": socket.gethostname()[:255],
        "os": f"{platform.system()} {platform.release()} {platform.machine()}".strip()[:100],
        "os_user": os_user()[:100],
        "fingerprint": fingerprint(),
        "agent_version": __version__,
        "ccusage_version": ccusage_version,
        "timezone": timezone,
    }


def fingerprint() -> str:
    """SHA-256 (hex) of where the agent runs: the OS's machine id, the OS user and the home
    folder. The agent folder (with its machine UUID) copied to another PC or another user's
    home gives another fingerprint, so the server registers it as a machine of its own.
    Nothing readable leaves the PC."""
    parts = [os_machine_id(), os_user(), str(Path.home())]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return ""


def os_machine_id() -> str:
    """The OS's own id of this installation (stable across renames), else the hostname."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            value = Path(path).read_text("ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if value:
            return value
    if sys.platform == "win32":
        try:
            import winreg  # only on Windows

            with winreg.OpenKey(
                winreg.HKEY_LOCAL_MACHINE, r"SOFTWARE\Microsoft\Cryptography"
            ) as key:
                return str(winreg.QueryValueEx(key, "MachineGuid")[0])
        except OSError:
            pass
    if sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["ioreg", "-rd1", "-c", "IOPlatformExpertDevice"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for line in out.splitlines():
            if "IOPlatformUUID" in line:
                return line.split("=", 1)[-1].strip().strip('"')
    return socket.gethostname()


def build_envelope(
    config: Config,
    *,
    ccusage_version: str,
    timezone: str,
    since: date | None,
    reports: dict[str, Any],
    statusline: list[dict[str, Any]] | None = None,
    projects: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body_reports = dict(reports)
    if statusline:
        body_reports["statusline"] = statusline
    return {
        "schema": SCHEMA,
        "machine": machine_identity(config, ccusage_version, timezone),
        "full": since is None,
        "since": since.isoformat() if since else None,
        "reports": body_reports,
        "project_keys": "hashed" if config.hash_project_names else "folder",
        "projects": projects or {},
    }


def check_in_envelope(config: Config, ccusage_version: str, timezone: str) -> dict[str, Any]:
    """No reports: registers the machine and asks the server for the team's timezone."""
    envelope = build_envelope(
        config, ccusage_version=ccusage_version, timezone=timezone, since=None, reports={}
    )
    # Nothing is claimed to cover the whole history.
    envelope["full"] = False
    return envelope


def encode(envelope: dict[str, Any]) -> bytes:
    raw = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    # mtime=0: the same envelope always compresses to the same bytes (the server hashes bodies).
    return gzip.compress(raw, compresslevel=6, mtime=0)


def decode(body: bytes) -> dict[str, Any]:
    return json.loads(gzip.decompress(body))


def summary(envelope: dict[str, Any]) -> list[tuple[str, int, str]]:
    """(report, bytes, description) per report for --dry-run and logs."""
    rows = []
    for kind, report in envelope["reports"].items():
        size = len(json.dumps(report, separators=(",", ":")).encode("utf-8"))
        rows.append((kind, size, _describe(kind, report)))
    return rows


def _describe(kind: str, report: Any) -> str:
    if kind == "statusline":
        return f"{len(report)} rate-limit readings"
    totals = report.get("totals") if isinstance(report, dict) else None
    tokens = f"{totals.get('totalTokens', 0):,} tokens" if isinstance(totals, dict) else ""
    cost = totals.get("totalCost") if isinstance(totals, dict) else None
    cost_text = f", ${cost:,.2f}" if isinstance(cost, int | float) else ""
    if kind == "claude_daily_instances":
        projects = report.get("projects") or {}
        days = {row.get("date") for rows in projects.values() for row in rows}
        return f"{len(projects)} projects, {len(days)} days, {tokens}{cost_text}"
    if kind == "claude_session":
        return f"{len(report.get('sessions') or [])} sessions, {tokens}{cost_text}"
    if kind == "blocks_hourly":
        hours = [b for b in report.get("blocks") or [] if not b.get("isGap")]
        return f"{len(hours)} active hours"
    if kind == "daily_by_agent":
        agents = {
            a.get("agent") for row in report.get("daily") or [] for a in row.get("agents") or []
        }
        names = ", ".join(sorted(a for a in agents if a)) or "none"
        return f"{len(report.get('daily') or [])} days, agents: {names}, {tokens}{cost_text}"
    return ""
