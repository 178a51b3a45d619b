"""Careful edits of Claude Code's settings.json: the statusLine wrapper and the agent's hooks.

Only the one top-level member concerned is rewritten; every other byte of the file stays as the
user wrote it. Before the first change the file is backed up, and a record of what was installed
lets uninstall put back the original byte for byte when nothing else changed meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from claude_telemetry.config import Home
from claude_telemetry.fsutil import atomic_write, ensure_private_dir

# Our commands, whatever the python path and --home in between.
STATUSLINE_MARKER = re.compile(r"claude_telemetry\b.*\bstatusline-capture\b")
HOOK_MARKER = re.compile(r"claude_telemetry\b.*\bhook-(session-end|prompt-submit|session-start)\b")
# Claude Code event -> (our subcommand, its timeout in seconds as settings.json gives it).
HOOK_EVENTS = {
    "SessionEnd": ("hook-session-end", 10),
    "UserPromptSubmit": ("hook-prompt-submit", 5),
    "SessionStart": ("hook-session-start", 5),
}


class SettingsError(Exception):
    """settings.json cannot be changed safely; nothing was changed."""


def settings_path(env: dict[str, str] | None = None) -> Path:
    """Claude Code's user settings: in the first CLAUDE_CONFIG_DIR folder, else ~/.claude."""
    env = os.environ if env is None else env
    configured = [p.strip() for p in env.get("CLAUDE_CONFIG_DIR", "").split(",") if p.strip()]
    base = Path(configured[0]).expanduser() if configured else Path.home() / ".claude"
    return base / "settings.json"


def agent_command(home: Home, subcommand: str) -> str:
    argv = [sys.executable, "-m", "claude_telemetry"]
    if home.explicit:
        argv += ["--home", str(home.root)]
    argv += subcommand.split()
    if os.name == "nt":  # pragma: no cover - Windows quoting
        return subprocess.list2cmdline(argv)
    return shlex.join(argv)


# --- span editing -------------------------------------------------------------------------

_WS = re.compile(r"[ \t\r\n]*")
_DECODER = json.JSONDecoder()


@dataclass
class Member:
    key: str
    start: int  # the opening quote of the key
    value_start: int
    value_end: int


def _members(text: str) -> tuple[list[Member], int, int]:
    """Top-level members, the index of `{` and of the closing `}`."""
    pos = _WS.match(text, 0).end()
    if pos >= len(text) or text[pos] != "{":
        raise SettingsError("settings.json is not a JSON object.")
    open_brace = pos
    pos = _WS.match(text, pos + 1).end()
    members: list[Member] = []
    if text[pos : pos + 1] == "}":
        return members, open_brace, pos
    while True:
        key, key_end = _DECODER.raw_decode(text, pos)
        start = pos
        pos = _WS.match(text, key_end).end()
        if text[pos : pos + 1] != ":":
            raise SettingsError("settings.json is not valid JSON.")
        value_start = _WS.match(text, pos + 1).end()
        _, value_end = _DECODER.raw_decode(text, value_start)
        members.append(Member(key, start, value_start, value_end))
        pos = _WS.match(text, value_end).end()
        if text[pos : pos + 1] == ",":
            pos = _WS.match(text, pos + 1).end()
            continue
        if text[pos : pos + 1] == "}":
            return members, open_brace, pos
        raise SettingsError("settings.json is not valid JSON.")


def _indent_unit(text: str, members: list[Member]) -> str | None:
    """The indentation of top-level keys, or None when the file is on one line."""
    if not members:
        return "  "
    line_start = text.rfind("\n", 0, members[0].start)
    if line_start == -1:
        return None
    return text[line_start + 1 : members[0].start] or None


def _dump_value(value: Any, indent: str | None) -> str:
    if indent is None:
        return json.dumps(value, ensure_ascii=False)
    body = json.dumps(value, indent=indent, ensure_ascii=False)
    # Nested lines sit one level deeper than the top-level key.
    return body.replace("\n", "\n" + indent)


def set_member(text: str, key: str, value: Any) -> str:
    members, open_brace, close_brace = _members(text)
    indent = _indent_unit(text, members)
    dumped = _dump_value(value, indent)
    for m in members:
        if m.key == key:
            return text[: m.value_start] + dumped + text[m.value_end :]
    member_text = f"{json.dumps(key)}: {dumped}"
    if not members:
        inner = f"\n{indent}{member_text}\n" if indent else member_text
        return text[: open_brace + 1] + inner + text[close_brace:]
    last = members[-1]
    sep = f",\n{indent}" if indent else ", "
    return text[: last.value_end] + sep + member_text + text[last.value_end :]


def remove_member(text: str, key: str) -> str:
    members, open_brace, close_brace = _members(text)
    for i, m in enumerate(members):
        if m.key != key:
            continue
        if len(members) == 1:
            return text[: open_brace + 1] + text[close_brace:]
        if i == len(members) - 1:
            # The exact inverse of set_member's append: from the previous value's end.
            return text[: members[i - 1].value_end] + text[m.value_end :]
        return text[: m.start] + text[members[i + 1].start :]
    return text


# --- install records ----------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_settings(path: Path) -> tuple[bytes | None, str, dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, "{}\n", {}
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise SettingsError(
            f"{path} is not valid JSON ({exc}); fix it first. Nothing changed."
        ) from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path} is not a JSON object; nothing changed.")
    _members(text)  # the span editor must understand it too
    return raw, text, data


def _write_settings(path: Path, text: str, like: bytes | None) -> bytes:
    data = text.encode("utf-8")
    mode = (path.stat().st_mode & 0o777) if like is not None and path.exists() else 0o644
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, data, mode=mode)
    return data


@dataclass
class Installer:
    """One kind of settings.json change (statusline or hooks) and its record in the agent home."""

    home: Home
    name: str  # "statusline" or "hooks"
    settings: Path | None = None

    def __post_init__(self):
        self.settings = self.settings or settings_path()

    @property
    def record_path(self) -> Path:
        return self.home.installs_dir / f"{self.name}.json"

    @property
    def backup_path(self) -> Path:
        return self.home.installs_dir / f"settings.json.before-{self.name}"

    def record(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.record_path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def save(self, original: bytes | None, new_text: str, extra: dict[str, Any]) -> None:
        ensure_private_dir(self.home.installs_dir)
        # Backup and record first: a crash after them and before the edit is harmless.
        if original is not None:
            atomic_write(self.backup_path, original)
        record = {
            "settings_path": str(self.settings),
            "settings_existed": original is not None,
            "backup": str(self.backup_path) if original is not None else None,
            "installed_sha256": _sha(new_text.encode("utf-8")),
            "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **extra,
        }
        atomic_write(self.record_path, json.dumps(record, indent=2).encode("utf-8"))
        _write_settings(self.settings, new_text, original)

    def restore(self, surgical: callable) -> str:
        """Undo the install: the original bytes if the file is as we left it, else `surgical`."""
        record = self.record()
        if record is None:
            raise SettingsError(f"The {self.name} is not installed by claude-telemetry.")
        path = Path(record["settings_path"])
        current = path.read_bytes() if path.exists() else None
        if current is not None and _sha(current) == record.get("installed_sha256"):
            if record.get("settings_existed"):
                atomic_write(path, self.backup_path.read_bytes(), mode=path.stat().st_mode & 0o777)
            else:
                path.unlink()
            self._forget()
            return f"Restored {path} exactly as it was before."
        if current is None:
            self._forget()
            return f"{path} no longer exists; nothing to undo."
        try:
            text = current.decode("utf-8")
            data = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise SettingsError(
                f"{path} is not valid JSON now ({exc}); fix it and retry."
            ) from None
        new_text = surgical(text, data, record)
        if new_text != text:
            _write_settings(path, new_text, current)
        kept = f" Your earlier file is kept at {self.backup_path}." if record.get("backup") else ""
        self.record_path.unlink(missing_ok=True)
        return (
            f"{path} was edited since the install, so only the claude-telemetry part was "
            f"removed and your other changes stay.{kept}"
        )

    def _forget(self) -> None:
        self.record_path.unlink(missing_ok=True)
        self.backup_path.unlink(missing_ok=True)


# --- statusline -------------------------------------------------------------------------------


def is_wrapper(status_line: Any) -> bool:
    return isinstance(status_line, dict) and bool(
        STATUSLINE_MARKER.search(str(status_line.get("command")))
    )


def install_statusline(home: Home, settings: Path | None = None) -> str:
    inst = Installer(home, "statusline", settings)
    original, text, data = _read_settings(inst.settings)
    current = data.get("statusLine")
    if is_wrapper(current):
        return f"The statusline capture is already installed in {inst.settings}."
    wrapper = dict(current) if isinstance(current, dict) else {}
    wrapper["type"] = "command"
    wrapper["command"] = agent_command(home, "statusline-capture")
    new_text = set_member(text, "statusLine", wrapper)
    inst.save(
        original,
        new_text,
        {"original_status_line": current, "had_status_line": "statusLine" in data},
    )
    if isinstance(current, dict) and current.get("command"):
        return (
            f"Installed the statusline capture in {inst.settings}; it runs your command "
            f"{current['command']!r} afterwards, so your status line looks the same."
        )
    return f"Installed the statusline capture in {inst.settings}."


def uninstall_statusline(home: Home, settings: Path | None = None) -> str:
    inst = Installer(home, "statusline", settings)

    def surgical(text: str, data: dict, record: dict) -> str:
        if not is_wrapper(data.get("statusLine")):
            return text  # the user replaced it already
        if record.get("had_status_line"):
            return set_member(text, "statusLine", record.get("original_status_line"))
        return remove_member(text, "statusLine")

    return inst.restore(surgical)


# --- hooks: SessionEnd (sync), UserPromptSubmit and SessionStart (limits) ------------------------


def _is_our_group(group: Any) -> bool:
    return isinstance(group, dict) and any(
        isinstance(h, dict) and HOOK_MARKER.search(str(h.get("command")))
        for h in group.get("hooks") or []
    )


def install_hooks(home: Home, settings: Path | None = None) -> str:
    """Add one hook group per event in HOOK_EVENTS after the user's own groups."""
    inst = Installer(home, "hooks", settings)
    original, text, data = _read_settings(inst.settings)
    hooks = data.get("hooks")
    if hooks is not None and not isinstance(hooks, dict):
        raise SettingsError(f"'hooks' in {inst.settings} is not an object; nothing changed.")
    hooks = dict(hooks or {})
    for event in HOOK_EVENTS:
        if not isinstance(hooks.get(event) or [], list):
            raise SettingsError(
                f"'hooks.{event}' in {inst.settings} is not a list; nothing changed."
            )
    if any(_is_our_group(g) for event in HOOK_EVENTS for g in hooks.get(event) or []):
        if inst.record() is not None and all(
            any(_is_our_group(g) for g in hooks.get(event) or []) for event in HOOK_EVENTS
        ):
            return f"The hooks are already installed in {inst.settings}."
        return (
            f"An earlier claude-telemetry hook is in {inst.settings}; run "
            "`claude-telemetry install-hooks --uninstall` first, then install again."
        )
    had_events = []
    for event, (subcommand, timeout) in HOOK_EVENTS.items():
        if event in hooks:
            had_events.append(event)
        command = {"type": "command", "command": agent_command(home, subcommand)}
        hooks[event] = [*(hooks.get(event) or []), {"hooks": [{**command, "timeout": timeout}]}]
    new_text = set_member(text, "hooks", hooks)
    inst.save(
        original,
        new_text,
        {
            "had_hooks": "hooks" in data,
            "had_session_end": "SessionEnd" in had_events,
            "had_events": had_events,
        },
    )
    return (
        f"Installed hooks in {inst.settings}: each session end triggers a sync, and each "
        "session start and prompt checks the team's budgets and quotas."
    )


def uninstall_hooks(home: Home, settings: Path | None = None) -> str:
    inst = Installer(home, "hooks", settings)

    def surgical(text: str, data: dict, record: dict) -> str:
        hooks = data.get("hooks")
        if not isinstance(hooks, dict):
            return text
        had = record.get("had_events")
        if not isinstance(had, list):  # a record from before the limit hooks
            had = ["SessionEnd"] if record.get("had_session_end") else []
        hooks = dict(hooks)
        for event in HOOK_EVENTS:
            if not isinstance(hooks.get(event), list):
                continue
            kept = [g for g in hooks[event] if not _is_our_group(g)]
            if kept or event in had:
                hooks[event] = kept
            else:
                hooks.pop(event)
        if not hooks and not record.get("had_hooks"):
            return remove_member(text, "hooks")
        return set_member(text, "hooks", hooks)

    return inst.restore(surgical)
