"""Finds the native ccusage binary behind the npm launcher, so a sync need not start Node.

ccusage 20 ships as a small Node script (`ccusage/src/cli.js`) and one static binary per
platform in optional npm packages (`@ccusage/ccusage-linux-x64`, …). The script only picks the
package for this platform with Node's module resolution and runs its `bin/ccusage`, which costs
a Node start (~100 ms) per call. This module does the same lookup in Python: from a launcher
path (`node_modules/.bin/ccusage`, `…/ccusage/src/cli.js`) or from the pinned
`npx ccusage@VERSION`, whose install lives in npm's cache under `_npx/`. The answer is kept in
the agent home (`ccusage.json`) and checked against the binary's size and time on each use.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from claude_telemetry.fsutil import atomic_write

CACHE_NAME = "ccusage.json"

# (sys.platform prefix, normalised machine) -> the npm package ccusage's launcher would use.
_PACKAGES = {
    ("linux", "x64"): "@ccusage/ccusage-linux-x64",
    ("linux", "arm64"): "@ccusage/ccusage-linux-arm64",
    ("darwin", "x64"): "@ccusage/ccusage-darwin-x64",
    ("darwin", "arm64"): "@ccusage/ccusage-darwin-arm64",
    ("win32", "x64"): "@ccusage/ccusage-win32-x64",
    ("win32", "arm64"): "@ccusage/ccusage-win32-arm64",
}
_MACHINES = {"x86_64": "x64", "amd64": "x64", "x64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def native_package_name(system: str | None = None, machine: str | None = None) -> str | None:
    """The `@ccusage/ccusage-<os>-<cpu>` package for this PC, or None where there is none."""
    system = system or sys.platform
    system = "linux" if system.startswith("linux") else system
    cpu = _MACHINES.get((machine or platform.machine()).lower())
    return _PACKAGES.get((system, cpu or ""))


def _binary_subpath(system: str | None = None) -> str:
    return "bin/ccusage.exe" if (system or sys.platform) == "win32" else "bin/ccusage"


def _package(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "package.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _launcher_package(argv: list[str], env: dict[str, str]) -> Path | None:
    """The folder of the `ccusage` npm package whose launcher `argv` runs, or None."""
    first = Path(argv[0])
    script: Path | None = None
    if len(argv) == 1:
        script = first
    elif len(argv) == 2 and first.name.lower().startswith("node"):
        script = Path(argv[1])
    if script is not None:
        try:
            real = script.resolve()
        except OSError:
            return None
        for folder in list(real.parents)[:3]:
            package = _package(folder)
            if package is not None:
                return folder if package.get("name") == "ccusage" else None
        return None
    if first.name.lower().startswith("npx"):
        specs = [a for a in argv[1:] if a.startswith("ccusage@")]
        if len(specs) != 1:
            return None
        version = specs[0].partition("@")[2]
        # Only a pinned version: `npx ccusage` (latest) may mean another version tomorrow.
        if not version[:1].isdigit():
            return None
        for candidate in sorted(npm_cache_dir(env).glob("_npx/*/node_modules/ccusage")):
            package = _package(candidate)
            if package is not None and package.get("version") == version:
                return candidate
    return None


def npm_cache_dir(env: dict[str, str]) -> Path:
    """npm's cache folder: `npm_config_cache`, else npm's per-platform default."""
    configured = env.get("npm_config_cache") or env.get("NPM_CONFIG_CACHE")
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        local = env.get("LOCALAPPDATA")
        if local:
            return Path(local) / "npm-cache"
    return Path(env.get("HOME") or Path.home()) / ".npm"


def _node_module_dirs(start: Path) -> list[Path]:
    """The folders Node searches for a package required from `start`, nearest first."""
    found = []
    for folder in [start, *start.parents]:
        candidate = folder if folder.name == "node_modules" else folder / "node_modules"
        if candidate not in found:
            found.append(candidate)
    return found


def _executable(path: Path) -> bool:
    if os.name != "posix" or os.access(path, os.X_OK):
        return True
    # npm may unpack the optional package without the execute bit; the launcher sets it the
    # same way before its first run.
    try:
        path.chmod(0o755)
    except OSError:
        return False
    return os.access(path, os.X_OK)


def find_native_binary(argv: list[str], env: dict[str, str] | None = None) -> Path | None:
    """The native binary ccusage's npm launcher in `argv` would start, or None.

    `argv` is the ccusage command line with its program resolved (`ccusage_argv`). None when
    `argv` is not the launcher (a binary already, or a wrapper we do not know), when this
    platform has no native package, when the package is missing, or when its version is not
    the launcher's: then the caller keeps running `argv` as it is.
    """
    env = os.environ if env is None else env
    name = native_package_name()
    if name is None or not argv:
        return None
    package = _launcher_package(argv, dict(env))
    if package is None:
        return None
    version = (_package(package) or {}).get("version")
    for modules in _node_module_dirs(package / "src"):
        binary = modules / name / _binary_subpath()
        if binary.is_file():
            native = _package(modules / name) or {}
            if native.get("version") != version or not _executable(binary):
                return None
            return binary
    return None


def _stamp(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


class Resolution:
    """The command a sync runs for ccusage, remembered in the agent home between syncs.

    `argv` is the native binary when one was found, else the configured command line;
    `version` is what `--version` printed for that same file (None until asked), so a
    steady-state sync starts no process to learn it.
    """

    def __init__(self, cache_dir: Path | None, command_line: str):
        self.path = cache_dir / CACHE_NAME if cache_dir else None
        self.command_line = command_line
        self.argv: list[str] | None = None
        self.version: str | None = None
        self._binary: str | None = None
        self._stamp: list[int] | None = None
        self._load()

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(data, dict) or data.get("command_line") != self.command_line:
            return
        binary, argv = data.get("binary"), data.get("argv")
        if not isinstance(binary, str) or not isinstance(argv, list):
            return
        stamp = _stamp(Path(binary))
        if stamp is None or stamp != data.get("stamp"):
            return  # replaced, updated or gone: resolve again
        self.argv = [str(a) for a in argv]
        self._binary, self._stamp = binary, stamp
        version = data.get("version")
        self.version = version if isinstance(version, str) else None

    def remember(self, argv: list[str], binary: Path | None) -> None:
        """Keep `argv` (the native `binary`, when one was found) for the next syncs."""
        self.argv = argv
        self.version = None
        if binary is None:
            self._binary = self._stamp = None
            return  # nothing stable to check it against: resolve again next time
        self._binary, self._stamp = str(binary), _stamp(binary)
        self._save()

    def remember_version(self, version: str) -> None:
        self.version = version
        if self._binary is not None:
            self._save()

    def _save(self) -> None:
        if self.path is None or self._stamp is None:
            return
        data = {
            "command_line": self.command_line,
            "argv": self.argv,
            "binary": self._binary,
            "stamp": self._stamp,
            "version": self.version,
        }
        # Only a cache: when it cannot be written, the next sync resolves again.
        with contextlib.suppress(OSError):
            atomic_write(self.path, json.dumps(data, indent=2).encode("utf-8"))
