"""The agent as a wheel, made by the server from its own agent/ folder, so a PC installs it
with one `pipx install <url>` and never needs a copy of this repository.

The wheel is a zip laid out as the wheel format says (PEP 427, with the core metadata of
PEP 566 and the entry points of the packaging specs), written with the standard library: no
build tool and no network at run time. The same sources always give the same bytes (fixed
timestamps and order), and it is rebuilt when a source file changes. It is cached under
VAR_DIR/agent-wheel/; `manage.py build_agent_wheel` builds it ahead (run by `make migrate`
and in production after each deploy), else the first download builds it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.urls import reverse

# Files of the package that go into the wheel; caches and tests stay out.
_SUFFIXES = {".py", ".typed", ".json", ".toml", ".txt"}
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: reproducible bytes


class AgentWheelError(Exception):
    """The agent's sources are not where the server expects them (a broken deployment)."""


@dataclass(frozen=True)
class AgentWheel:
    """The wheel file and what pip sees in its name: claude_telemetry-<version>-py3-none-any."""

    path: Path
    filename: str
    version: str


def agent_dir() -> Path:
    return Path(getattr(settings, "AGENT_SOURCE_DIR", settings.BASE_DIR / "agent"))


def wheel_dir() -> Path:
    return Path(settings.VAR_DIR) / "agent-wheel"


def _project() -> dict:
    try:
        data = tomllib.loads((agent_dir() / "pyproject.toml").read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AgentWheelError(f"cannot read {agent_dir() / 'pyproject.toml'}: {exc}") from None
    project = data.get("project")
    if not isinstance(project, dict) or not project.get("name") or not project.get("version"):
        raise AgentWheelError("agent/pyproject.toml has no [project] name and version")
    return project


def _distribution(project: dict) -> str:
    """The wheel's distribution name: runs of -_. become _ (the binary distribution format)."""
    name = str(project["name"])
    out: list[str] = []
    for ch in name:
        if ch in "-_.":
            if not out or out[-1] != "_":
                out.append("_")
        else:
            out.append(ch.lower())
    return "".join(out)


def _sources() -> list[tuple[str, Path]]:
    """(path inside the wheel, file) for every file of the claude_telemetry package, sorted."""
    root = agent_dir()
    package = root / "claude_telemetry"
    if not package.is_dir():
        raise AgentWheelError(f"no agent package at {package}")
    found = []
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in _SUFFIXES:
            found.append((path.relative_to(root).as_posix(), path))
    return found


def _metadata(project: dict) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
    ]
    if project.get("description"):
        lines.append(f"Summary: {project['description']}")
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Requires-Dist: {dep}" for dep in project.get("dependencies") or []]
    return "\n".join(lines) + "\n"


def _entry_points(project: dict) -> str:
    scripts = project.get("scripts") or {}
    if not scripts:
        return ""
    body = "".join(f"{name} = {target}\n" for name, target in sorted(scripts.items()))
    return "[console_scripts]\n" + body


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


def build_bytes() -> tuple[str, str, bytes]:
    """(filename, version, the wheel's bytes) for the current agent sources."""
    project = _project()
    dist = _distribution(project)
    version = str(project["version"])
    info = f"{dist}-{version}.dist-info"
    files: list[tuple[str, bytes]] = [(arc, path.read_bytes()) for arc, path in _sources()]
    files.append((f"{info}/METADATA", _metadata(project).encode("utf-8")))
    files.append(
        (
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: claude-telemetry-server\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n",
        )
    )
    entry_points = _entry_points(project)
    if entry_points:
        files.append((f"{info}/entry_points.txt", entry_points.encode("utf-8")))
    record = "".join(f"{arc},{_record_hash(data)},{len(data)}\n" for arc, data in files)
    record += f"{info}/RECORD,,\n"
    files.append((f"{info}/RECORD", record.encode("utf-8")))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for arc, data in files:
            entry = zipfile.ZipInfo(arc, date_time=_FIXED_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(entry, data)
    return f"{dist}-{version}-py3-none-any.whl", version, buffer.getvalue()


def _sources_digest() -> str:
    digest = hashlib.sha256()
    digest.update((agent_dir() / "pyproject.toml").read_bytes())
    for arc, path in _sources():
        digest.update(arc.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def ensure_wheel() -> AgentWheel:
    """The wheel for the current sources, built now if it is missing or out of date.

    Raises AgentWheelError when the agent's sources are missing. Two processes building at
    once write the same bytes, each through its own temporary file and an atomic rename.
    """
    project = _project()
    digest = _sources_digest()
    folder = wheel_dir()
    stamp = folder / "sources.sha256"
    filename = f"{_distribution(project)}-{project['version']}-py3-none-any.whl"
    path = folder / filename
    try:
        current = stamp.read_text().strip() == digest and path.is_file()
    except OSError:
        current = False
    if not current:
        filename, _, data = build_bytes()
        path = folder / filename
        folder.mkdir(parents=True, exist_ok=True)
        for target, content in ((path, data), (stamp, digest.encode())):
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
    return AgentWheel(path=path, filename=filename, version=str(project["version"]))


def wheel_url() -> str:
    """The absolute download URL of the current wheel (pip needs the wheel's own file name)."""
    return settings.SITE_URL + reverse("agent_wheel", args=[ensure_wheel().filename])
