"""The agent's home folder: config.toml, the token file, state.json and where everything else goes.

The home is `--home`, else `CLAUDE_TELEMETRY_HOME`, else the platform's user config folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from claude_telemetry.fsutil import PRIVATE_FILE, atomic_write, ensure_private_dir

APP_NAME = "claude-telemetry"
HOME_ENV = "CLAUDE_TELEMETRY_HOME"
CCUSAGE_ENV = "CLAUDE_TELEMETRY_CCUSAGE"
CCUSAGE_VERSION = "20.0.24"
DEFAULT_CCUSAGE = f"npx --yes ccusage@{CCUSAGE_VERSION}"
KEYRING_SERVICE = "claude-telemetry"


class ConfigError(Exception):
    """The configuration is missing or unusable; the message says what to do."""


def resolve_home(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs  # ~8 ms: only when no folder is given

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


class Home:
    """Every path the agent uses, under one folder."""

    def __init__(self, root: Path, explicit: bool = False):
        self.root = root
        # Services and the statusline wrapper must find the same home without our environment.
        self.explicit = explicit or bool(os.environ.get(HOME_ENV))

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"

    @property
    def token_file(self) -> Path:
        return self.root / "token"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def spool_dir(self) -> Path:
        return self.root / "spool"

    @property
    def rejected_dir(self) -> Path:
        return self.root / "spool" / "rejected"

    @property
    def captures_dir(self) -> Path:
        return self.root / "captures"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def lock_file(self) -> Path:
        return self.root / "sync.lock"

    @property
    def installs_dir(self) -> Path:
        """Records of what install-service / install-statusline / install-hooks changed."""
        return self.root / "installed"

    def ensure(self) -> None:
        ensure_private_dir(self.root)


@dataclass
class Config:
    server_url: str
    machine_uuid: str
    machine_name: str
    token_store: str = "file"  # "file" or "keyring"
    ccusage_command: str = ""  # empty: CLAUDE_TELEMETRY_CCUSAGE, else the pinned npx default
    ccusage_offline: bool = True
    ccusage_timeout_seconds: int = 600
    interval_minutes: int = 15
    overlap_days: int = 3
    send_project_paths: bool = True
    hash_project_names: bool = False
    # secrets.token_hex(16) without importing secrets (~10 ms on every start): the same
    # os.urandom bytes.
    hash_salt: str = field(default_factory=lambda: os.urandom(16).hex())
    privacy_chosen: bool = False  # setup asked the privacy question (asked once)
    spool_max_mb: int = 100

    def validate(self) -> None:
        normalize_server_url(self.server_url)
        try:
            uuid.UUID(self.machine_uuid)
        except ValueError:
            raise ConfigError(f"machine.uuid {self.machine_uuid!r} is not a UUID.") from None
        if not self.machine_name.strip():
            raise ConfigError("machine.name must not be empty.")
        if self.token_store not in ("file", "keyring"):
            raise ConfigError("auth.token_store must be 'file' or 'keyring'.")
        for name in ("ccusage_timeout_seconds", "interval_minutes", "spool_max_mb"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1.")
        if self.overlap_days < 0:
            raise ConfigError("sync.overlap_days must not be negative.")


def normalize_server_url(url: str) -> str:
    url = (url or "").strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"Server URL {url!r} must look like https://telemetry.example.com")
    if parts.query or parts.fragment:
        raise ConfigError(f"Server URL {url!r} must not have a query or fragment.")
    return url


_REQUIRED = {"server_url", "machine_uuid", "machine_name"}

# TOML layout: section -> (toml key, Config attribute).
_LAYOUT: dict[str, list[tuple[str, str]]] = {
    "server": [("url", "server_url")],
    "machine": [("uuid", "machine_uuid"), ("name", "machine_name")],
    "auth": [("token_store", "token_store")],
    "ccusage": [
        ("command", "ccusage_command"),
        ("offline", "ccusage_offline"),
        ("timeout_seconds", "ccusage_timeout_seconds"),
    ],
    "sync": [("interval_minutes", "interval_minutes"), ("overlap_days", "overlap_days")],
    "privacy": [
        ("send_project_paths", "send_project_paths"),
        ("hash_project_names", "hash_project_names"),
        ("hash_salt", "hash_salt"),
        ("chosen", "privacy_chosen"),
    ],
    "spool": [("max_mb", "spool_max_mb")],
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(str(value), ensure_ascii=False)


def dump_config(config: Config) -> str:
    values = asdict(config)
    lines = ["# claude-telemetry agent configuration (see docs/agent.md).", ""]
    for section, keys in _LAYOUT.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(values[attr])}" for key, attr in keys)
        lines.append("")
    return "\n".join(lines)


def load_config(home: Home) -> Config:
    path = home.config_file
    if not path.exists():
        raise ConfigError(f"No configuration at {path}. Run: claude-telemetry setup")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    kwargs: dict[str, Any] = {}
    defaults = Config(server_url="", machine_uuid="", machine_name="")
    for section, keys in _LAYOUT.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [{section}] must be a table.")
        for key, attr in keys:
            if key not in table:
                continue
            value = table[key]
            expected = type(getattr(defaults, attr))
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ConfigError(f"{path}: {section}.{key} must be a {expected.__name__}.")
            kwargs[attr] = value
    missing = [
        f"{section}.{key}"
        for section, keys in _LAYOUT.items()
        for key, attr in keys
        if attr in _REQUIRED and attr not in kwargs
    ]
    if missing:
        raise ConfigError(f"{path} lacks {', '.join(missing)}. Run: claude-telemetry setup")
    config = Config(**kwargs)
    config.validate()
    if "hash_salt" not in kwargs:
        # A salt that changed between runs would rename every hashed project: keep the new one.
        with contextlib.suppress(OSError):
            save_config(home, config)
    return config


def save_config(home: Home, config: Config) -> None:
    config.validate()
    home.ensure()
    atomic_write(home.config_file, dump_config(config).encode("utf-8"))


# --- token --------------------------------------------------------------------------------


def _keyring():
    try:
        import keyring  # optional: only when the user installed it
    except ImportError:
        return None
    return keyring


def keyring_available() -> bool:
    return _keyring() is not None


def save_token(home: Home, config: Config, token: str) -> None:
    if config.token_store == "keyring":
        kr = _keyring()
        if kr is None:
            raise ConfigError("The keyring package is not installed; use the token file instead.")
        kr.set_password(KEYRING_SERVICE, config.machine_uuid, token)
        return
    home.ensure()
    atomic_write(home.token_file, (token + "\n").encode("ascii"), mode=PRIVATE_FILE)


def load_token(home: Home, config: Config) -> str:
    if config.token_store == "keyring":
        kr = _keyring()
        token = kr.get_password(KEYRING_SERVICE, config.machine_uuid) if kr else None
        if not token:
            raise ConfigError("No token in the OS keyring. Run: claude-telemetry setup")
        return token
    try:
        token = home.token_file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"No token file at {home.token_file}. Run: claude-telemetry setup"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{home.token_file} is not a token. Run: claude-telemetry setup"
        ) from None
    if not token:
        raise ConfigError(f"{home.token_file} is empty. Run: claude-telemetry setup")
    return token


# --- state --------------------------------------------------------------------------------


def load_state(home: Home) -> dict[str, Any]:
    try:
        data = json.loads(home.state_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError):
        # A damaged state only costs a full resync; never refuse to run because of it.
        return {}
    return data if isinstance(data, dict) else {}


def save_state(home: Home, state: dict[str, Any]) -> None:
    home.ensure()
    atomic_write(home.state_file, json.dumps(state, indent=2, sort_keys=True).encode("utf-8"))
