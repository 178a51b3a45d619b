"""Runs `sync --service` every N minutes: a systemd user timer (Linux), a LaunchAgent (macOS)
or a Task Scheduler task (Windows).

install writes real files and records them (with their hashes) in the agent home; uninstall
removes exactly those files and undoes exactly the commands it ran.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

from claude_telemetry.config import CCUSAGE_ENV, Home
from claude_telemetry.fsutil import atomic_write, ensure_private_dir

UNIT = "claude-telemetry-sync"
LAUNCHD_LABEL = "claude-telemetry.sync"
TASK_NAME = "claude-telemetry-sync"
# Variables the sync needs to see the same data and tools as the shell that installed it.
PASS_ENV = ("PATH", "CLAUDE_CONFIG_DIR", "CODEX_HOME", CCUSAGE_ENV, "XDG_CONFIG_HOME")


class ServiceError(Exception):
    pass


@dataclass
class ServiceFile:
    path: Path
    content: bytes


@dataclass
class ServicePlan:
    platform: str
    description: str
    files: list[ServiceFile]
    enable: list[list[str]] = field(default_factory=list)
    disable: list[list[str]] = field(default_factory=list)
    after_remove: list[list[str]] = field(default_factory=list)


def current_platform() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "darwin":
        return "macos"
    if sys.platform in ("win32", "cygwin"):
        return "windows"
    raise ServiceError(f"No background service support for {sys.platform}; run sync from cron.")


def sync_argv(home: Home, python: str | None = None) -> list[str]:
    argv = [python or sys.executable, "-m", "claude_telemetry"]
    # Always explicit: the service must never depend on the installing shell's environment.
    argv += ["--home", str(home.root), "sync", "--service"]
    return argv


def _service_env() -> dict[str, str]:
    return {k: os.environ[k] for k in PASS_ENV if os.environ.get(k)}


# --- systemd ----------------------------------------------------------------------------------


def _systemd_quote(arg: str) -> str:
    # % starts a specifier and $ a variable in unit files; both are doubled to stay literal.
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not any(c in arg for c in " \t\"'\\;"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def systemd_unit_dir(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "systemd" / "user"


def systemd_plan(
    home: Home, interval_minutes: int, env: dict[str, str] | None = None
) -> ServicePlan:
    unit_dir = systemd_unit_dir()
    env = _service_env() if env is None else env
    exec_start = " ".join(_systemd_quote(a) for a in sync_argv(home))
    env_lines = "".join(
        f"Environment={_systemd_quote(f'{k}={v}')}\n" for k, v in sorted(env.items())
    )
    service = (
        "[Unit]\n"
        "Description=claude-telemetry: send this machine's ccusage reports to the team server\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={exec_start}\n"
        f"{env_lines}"
        "Nice=10\n"
        "IOSchedulingClass=idle\n"
        "TimeoutStartSec=30min\n"
        "# 75: the server was unreachable and the report is kept for the next run.\n"
        "SuccessExitStatus=75\n"
    )
    timer = (
        "[Unit]\n"
        f"Description=claude-telemetry sync every {interval_minutes} minutes\n"
        "\n"
        "[Timer]\n"
        "OnActiveSec=1min\n"
        "OnBootSec=2min\n"
        f"OnUnitActiveSec={interval_minutes}min\n"
        "RandomizedDelaySec=1min\n"
        f"Unit={UNIT}.service\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return ServicePlan(
        platform="linux",
        description=f"systemd user timer {UNIT}.timer (every {interval_minutes} min)",
        files=[
            ServiceFile(unit_dir / f"{UNIT}.service", service.encode()),
            ServiceFile(unit_dir / f"{UNIT}.timer", timer.encode()),
        ],
        enable=[
            ["systemctl", "--user", "daemon-reload"],
            ["systemctl", "--user", "enable", "--now", f"{UNIT}.timer"],
        ],
        disable=[["systemctl", "--user", "disable", "--now", f"{UNIT}.timer"]],
        after_remove=[["systemctl", "--user", "daemon-reload"]],
    )


# --- launchd ----------------------------------------------------------------------------------


def launchd_plan(
    home: Home, interval_minutes: int, env: dict[str, str] | None = None
) -> ServicePlan:
    env = _service_env() if env is None else env
    path = Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
    plist = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": sync_argv(home),
        "StartInterval": interval_minutes * 60,
        "RunAtLoad": True,
        "ProcessType": "Background",
        "LowPriorityIO": True,
        "Nice": 10,
        "EnvironmentVariables": env,
        "StandardOutPath": str(home.logs_dir / "service.out.log"),
        "StandardErrorPath": str(home.logs_dir / "service.err.log"),
    }
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return ServicePlan(
        platform="macos",
        description=f"LaunchAgent {LAUNCHD_LABEL} (every {interval_minutes} min)",
        files=[ServiceFile(path, plistlib.dumps(plist, fmt=plistlib.FMT_XML))],
        enable=[["launchctl", "bootstrap", f"gui/{uid}", str(path)]],
        disable=[["launchctl", "bootout", f"gui/{uid}/{LAUNCHD_LABEL}"]],
    )


# --- Task Scheduler ---------------------------------------------------------------------------


def _windowless_python() -> str:
    exe = Path(sys.executable)
    candidate = exe.with_name("pythonw.exe")
    # pythonw.exe runs without flashing a console window every few minutes.
    return str(candidate) if candidate.exists() else str(exe)


def windows_plan(home: Home, interval_minutes: int, now: datetime | None = None) -> ServicePlan:
    argv = sync_argv(home, python=_windowless_python())
    start = (now or datetime.now()).replace(microsecond=0).isoformat()
    arguments = subprocess.list2cmdline(argv[1:])
    xml = f"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>claude-telemetry: send ccusage reports to the team server</Description>
    <URI>\\{TASK_NAME}</URI>
  </RegistrationInfo>
  <Triggers>
    <TimeTrigger>
      <Repetition>
        <Interval>PT{interval_minutes}M</Interval>
        <StopAtDurationEnd>false</StopAtDurationEnd>
      </Repetition>
      <StartBoundary>{start}</StartBoundary>
      <Enabled>true</Enabled>
      <RandomDelay>PT1M</RandomDelay>
    </TimeTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <StartWhenAvailable>true</StartWhenAvailable>
    <ExecutionTimeLimit>PT30M</ExecutionTimeLimit>
    <Hidden>true</Hidden>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{escape(argv[0])}</Command>
      <Arguments>{escape(arguments)}</Arguments>
    </Exec>
  </Actions>
</Task>
"""
    path = home.installs_dir / f"{TASK_NAME}.xml"
    return ServicePlan(
        platform="windows",
        description=f"Task Scheduler task {TASK_NAME} (every {interval_minutes} min)",
        # schtasks /XML expects UTF-16 with a byte order mark.
        files=[ServiceFile(path, xml.encode("utf-16"))],
        enable=[["schtasks", "/Create", "/TN", TASK_NAME, "/XML", str(path), "/F"]],
        disable=[["schtasks", "/Delete", "/TN", TASK_NAME, "/F"]],
    )


def plan_for(platform: str, home: Home, interval_minutes: int) -> ServicePlan:
    if interval_minutes < 1 or interval_minutes > 24 * 60:
        raise ServiceError("The interval must be between 1 and 1440 minutes.")
    builders = {"linux": systemd_plan, "macos": launchd_plan, "windows": windows_plan}
    return builders[platform](home, interval_minutes)


# --- install / uninstall ----------------------------------------------------------------------


def manifest_path(home: Home) -> Path:
    return home.installs_dir / "service.json"


def load_manifest(home: Home) -> dict | None:
    try:
        data = json.loads(manifest_path(home).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _run(cmd: list[str]) -> str | None:
    """None when the command worked, else why it did not."""
    if shutil.which(cmd[0]) is None:
        return f"{cmd[0]} is not available"
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit {done.returncode}"
    return None


def _missing_dirs(path: Path) -> list[str]:
    """Folders above `path` that do not exist yet, deepest first."""
    missing = []
    for parent in path.parents:
        if parent.exists():
            break
        missing.append(str(parent))
    return missing


def install(
    home: Home, interval_minutes: int, *, enable: bool = True, platform: str | None = None
) -> tuple[list[str], bool]:
    """Write and enable the service; (messages, whether it is running now or files-only)."""
    platform = platform or current_platform()
    plan = plan_for(platform, home, interval_minutes)
    messages = []
    if load_manifest(home):
        messages += uninstall(home)
    ensure_private_dir(home.installs_dir)
    home.logs_dir.mkdir(parents=True, exist_ok=True)
    written, created_dirs = [], []
    for f in plan.files:
        if f.path.exists():
            raise ServiceError(
                f"{f.path} exists and was not made by claude-telemetry; "
                "remove it or rename it first. Nothing changed."
            )
    for f in plan.files:
        created_dirs += [d for d in _missing_dirs(f.path) if d not in created_dirs]
        f.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(f.path, f.content, mode=0o644)
        written.append({"path": str(f.path), "sha256": hashlib.sha256(f.content).hexdigest()})
    manifest = {
        "platform": plan.platform,
        "description": plan.description,
        "interval_minutes": interval_minutes,
        "files": written,
        "dirs": created_dirs,
        "disable": plan.disable,
        "after_remove": plan.after_remove,
        "enabled": False,
    }
    atomic_write(manifest_path(home), json.dumps(manifest, indent=2).encode())
    messages.append(f"Wrote {', '.join(w['path'] for w in written)}.")
    if not enable:
        steps = " && ".join(" ".join(c) for c in plan.enable)
        messages.append(f"Not enabled (--files-only). To start it: {steps}")
        return messages, True
    for cmd in plan.enable:
        problem = _run(cmd)
        if problem:
            steps = manual_steps(plan, home, interval_minutes)
            manifest["enable_error"] = f"`{' '.join(cmd)}`: {problem}"
            manifest["manual_steps"] = steps
            atomic_write(manifest_path(home), json.dumps(manifest, indent=2).encode())
            messages.append(f"Could not run `{' '.join(cmd)}`: {problem}.")
            messages += steps
            return messages, False
    manifest["enabled"] = True
    atomic_write(manifest_path(home), json.dumps(manifest, indent=2).encode())
    messages.append(f"Installed {plan.description}.")
    return messages, True


def cron_line(home: Home, interval_minutes: int) -> str:
    """A crontab line that runs the same sync every `interval_minutes` (1-60 evenly; longer
    intervals run hourly at most every N hours)."""
    argv = " ".join(shlex.quote(a) for a in sync_argv(home))
    log = shlex.quote(str(home.logs_dir / "cron.log"))
    if interval_minutes < 60:
        when = f"*/{interval_minutes} * * * *"
    else:
        when = f"0 */{max(1, interval_minutes // 60)} * * *"
    return f"{when} {argv} >> {log} 2>&1"


def manual_steps(plan: ServicePlan, home: Home, interval_minutes: int) -> list[str]:
    """What to run when the service manager cannot be reached from here: the exact commands
    for a session where it can, and (Linux, macOS) a cron line that needs no service manager."""
    enable = " && ".join(shlex.join(c) for c in plan.enable)
    lines = ["The service files are in place. Start them from a session where this works:"]
    lines.append(f"  {enable}")
    if plan.platform == "linux":
        lines.append(
            "systemd's user manager is not reachable here (no user bus: an SSH or su session, "
            "a container, WSL without systemd). On a server, keep it running without a login:"
        )
        lines.append(f"  sudo loginctl enable-linger {os.environ.get('USER') or '$USER'}")
    if plan.platform in ("linux", "macos"):
        line = cron_line(home, interval_minutes)
        lines.append("Or sync from cron instead (no service manager needed):")
        lines.append(f"  (crontab -l 2>/dev/null; echo {shlex.quote(line)}) | crontab -")
        lines.append("then remove the unused service files: claude-telemetry uninstall-service")
    return lines


def cron_installed(home: Home) -> bool:
    """Does the user's crontab run this agent home's sync?"""
    if shutil.which("crontab") is None:
        return False
    try:
        done = subprocess.run(
            ["crontab", "-l"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    home_arg = shlex.quote(str(home.root))
    return any(
        "claude_telemetry" in line and home_arg in line and " sync" in line
        for line in done.stdout.splitlines()
        if not line.lstrip().startswith("#")
    )


def timer_enabled(manifest: dict) -> bool:
    """Is the installed unit enabled after all (the user ran the printed commands)?"""
    if manifest.get("platform") != "linux" or shutil.which("systemctl") is None:
        return False
    try:
        done = subprocess.run(
            ["systemctl", "--user", "is-enabled", f"{UNIT}.timer"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def uninstall(home: Home) -> list[str]:
    manifest = load_manifest(home)
    if manifest is None:
        return ["No service installed by claude-telemetry."]
    messages = []
    if manifest.get("enabled"):
        for cmd in manifest.get("disable") or []:
            problem = _run(cmd)
            if problem:
                messages.append(f"`{' '.join(cmd)}`: {problem}")
    for item in manifest.get("files") or []:
        path = Path(item["path"])
        if path.exists():
            path.unlink()
            messages.append(f"Removed {path}.")
    # Folders install created, deepest first, if nothing else has been put in them since.
    for folder in manifest.get("dirs") or []:
        with contextlib.suppress(OSError):
            Path(folder).rmdir()
    if manifest.get("enabled"):
        for cmd in manifest.get("after_remove") or []:
            _run(cmd)
    manifest_path(home).unlink(missing_ok=True)
    messages.append("The background service is uninstalled.")
    return messages


def describe(home: Home) -> str:
    manifest = load_manifest(home)
    if manifest is None:
        return "not installed"
    missing = [i["path"] for i in manifest.get("files") or [] if not Path(i["path"]).exists()]
    state = "enabled" if manifest.get("enabled") else "files only, not enabled"
    if manifest.get("enable_error"):
        state = f"files written, not started ({manifest['enable_error']})"
    if missing:
        state = f"broken: {', '.join(missing)} missing"
    return f"{manifest.get('description')}, {state}"
