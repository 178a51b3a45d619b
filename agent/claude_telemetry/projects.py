"""Project identity: the real working folder and git remote behind each ccusage project key.

The server uses them to merge one repository seen under different paths on different machines.
With `privacy.hash_project_names` the keys are replaced by salted hashes and nothing else is sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# Enough to pass the summary lines of a transcript; cwd is on the first real message.
_MAX_LINES = 50
_MAX_LINE_BYTES = 1 << 20


def project_keys(reports: dict[str, Any]) -> set[str]:
    keys: set[str] = set()
    instances = reports.get("claude_daily_instances") or {}
    if isinstance(instances.get("projects"), dict):
        keys.update(k for k in instances["projects"] if isinstance(k, str))
    sessions = reports.get("claude_session") or {}
    for row in sessions.get("sessions") or []:
        if isinstance(row, dict) and isinstance(row.get("projectPath"), str):
            keys.add(row["projectPath"])
    keys.discard("")
    return keys


def transcript_cwd(project_dir: Path) -> str | None:
    """The `cwd` of the first transcript line that has one (newest transcript first)."""
    try:
        files = sorted(project_dir.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return None
    for path in files[:5]:
        try:
            with open(path, "rb") as fh:
                for _ in range(_MAX_LINES):
                    line = fh.readline(_MAX_LINE_BYTES)
                    if not line:
                        break
                    # Only the cwd is taken from the line; its message text is never kept.
                    cwd = _cwd_of(line)
                    if cwd:
                        return cwd
        except OSError:
            continue
    return None


def _cwd_of(line: bytes) -> str | None:
    if b'"cwd"' not in line:
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    cwd = data.get("cwd") if isinstance(data, dict) else None
    return cwd if isinstance(cwd, str) and cwd else None


def strip_credentials(url: str) -> str:
    """`https://user:token@host/x.git` → `https://host/x.git`; scp-style URLs stay as they are."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:|\\\\)")


def folder_name(cwd: str) -> str | None:
    """The last part of a working folder, as the user named it: `/home/dev/src/my-app` →
    `my-app`, `C:\\Users\\dev\\Проект` → `Проект`; None for a root or an empty path.

    Windows paths are read as Windows paths on any OS (a transcript may come from another PC).
    """
    windows = "\\" in cwd or bool(_WINDOWS_PATH.match(cwd))
    path = PureWindowsPath(cwd) if windows else PurePosixPath(cwd)
    return path.name or None


def git_remote(cwd: str) -> str | None:
    if not Path(cwd).is_dir():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", cwd, "remote", "get-url", "origin"],
            capture_output=True,
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    remote = done.stdout.decode("utf-8", "replace").strip() if done.returncode == 0 else ""
    return strip_credentials(remote)[:1000] or None


def identify(
    keys: set[str], projects_dirs: list[Path], *, with_remotes: bool = True
) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for key in sorted(keys):
        cwd = None
        for base in projects_dirs:
            candidate = base / key
            if candidate.is_dir():
                cwd = transcript_cwd(candidate)
                if cwd:
                    break
        result[key] = {
            "cwd": cwd,
            "git_remote": git_remote(cwd) if cwd and with_remotes else None,
            "hashed": False,
        }
    return result


def hashed_name(key: str, salt: str) -> str:
    return "hash-" + hashlib.sha256(f"{salt}\0{key}".encode()).hexdigest()[:32]


def hash_reports(reports: dict[str, Any], salt: str) -> dict[str, Any]:
    """The same reports with every project key and path replaced by its salted hash."""
    reports = json.loads(json.dumps(reports))  # a deep copy; the originals stay as ccusage said
    instances = reports.get("claude_daily_instances")
    if isinstance(instances, dict) and isinstance(instances.get("projects"), dict):
        renamed = {}
        for key, rows in instances["projects"].items():
            for row in rows if isinstance(rows, list) else []:
                if isinstance(row, dict) and isinstance(row.get("project"), str):
                    row["project"] = hashed_name(row["project"], salt)
            renamed[hashed_name(key, salt)] = rows
        instances["projects"] = renamed
    sessions = reports.get("claude_session")
    if isinstance(sessions, dict):
        for row in sessions.get("sessions") or []:
            if isinstance(row, dict) and isinstance(row.get("projectPath"), str):
                row["projectPath"] = hashed_name(row["projectPath"], salt)
    return reports


def project_identity(
    reports: dict[str, Any],
    projects_dirs: list[Path],
    *,
    send_paths: bool,
    hash_names: bool,
    salt: str,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(reports to send, the envelope's `projects` map) under the privacy settings.

    The map is key → {"cwd", "git_remote", "hashed", and without paths "name"}: full identity
    by default; only the folder's last part (`name`) with `send_paths=False`; nothing but the
    hashed key with `hash_names=True`.
    """
    keys = project_keys(reports)
    if hash_names:
        hashed = hash_reports(reports, salt)
        return hashed, {
            hashed_name(k, salt): {"cwd": None, "git_remote": None, "hashed": True}
            for k in sorted(keys)
        }
    found = identify(keys, projects_dirs, with_remotes=send_paths)
    if not send_paths:
        # Paths stay on this PC, but the folder's own name is what the user calls the project,
        # and the encoded key cannot give it back (`my-app` and `site.github.io` lose their
        # dashes and dots in it, non-Latin names are all dashes).
        return reports, {
            key: {
                "cwd": None,
                "git_remote": None,
                "hashed": False,
                "name": folder_name(info["cwd"]) if info["cwd"] else None,
            }
            for key, info in found.items()
        }
    return reports, found
