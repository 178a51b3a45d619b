"""`setup`: checks the server, the token and ccusage, then writes the config. The machine UUID
is generated once and kept across re-runs, so a machine never appears twice on the server."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from claude_telemetry.ccusage import CcusageError, Runner
from claude_telemetry.client import Client, SendError
from claude_telemetry.config import (
    Config,
    ConfigError,
    Home,
    load_config,
    load_state,
    normalize_server_url,
    save_config,
    save_state,
    save_token,
)
from claude_telemetry.envelope import check_in_envelope, encode
from claude_telemetry.sync import adopt_copied_identity

TOKEN_ENV = "CLAUDE_TELEMETRY_TOKEN"


class SetupError(Exception):
    pass


@dataclass
class SetupResult:
    config: Config
    timezone: str
    machine_name: str
    ccusage_problem: str | None


def existing_config(home: Home) -> Config | None:
    try:
        return load_config(home)
    except ConfigError:
        return None


def configure(
    home: Home,
    *,
    server: str,
    token: str,
    name: str,
    use_keyring: bool = False,
    check_ccusage: bool = True,
    say: Callable[[str], None] = print,
) -> SetupResult:
    server = normalize_server_url(server)
    token = token.strip()
    if not token:
        raise SetupError("The API token is empty.")
    name = name.strip()[:100]
    if not name:
        raise SetupError("The machine name is empty.")
    previous = existing_config(home)
    config = Config(
        server_url=server,
        machine_uuid=previous.machine_uuid if previous else str(uuid.uuid4()),
        machine_name=name,
        token_store="keyring" if use_keyring else "file",
    )
    if previous:
        # Keep every tuned setting and, above all, the machine's identity and hash salt.
        for attr in (
            "ccusage_command",
            "ccusage_offline",
            "ccusage_timeout_seconds",
            "interval_minutes",
            "overlap_days",
            "send_project_paths",
            "hash_project_names",
            "hash_salt",
            "spool_max_mb",
        ):
            setattr(config, attr, getattr(previous, attr))
    ccusage_version, problem = "unknown", None
    if check_ccusage:
        say("Checking ccusage (the first run may download it)…")
        try:
            home.ensure()
            ccusage_version = Runner(config, workdir=home.root).version()
            say(f"ccusage {ccusage_version} runs.")
        except CcusageError as exc:
            problem = str(exc)
    say(f"Checking {server} and the token…")
    state = load_state(home)
    if previous is None or previous.server_url != server:
        # Another server knows nothing of what the old one acknowledged: start with a full sync.
        state = {"captures": state.get("captures") or {}}
    with Client(server, token, timeout=30) as client:
        try:
            ack = _check_in(client, config, ccusage_version, state)
        except SendError as exc:
            if exc.status != 409 or previous is None:
                raise SetupError(f"{exc} Nothing was saved.") from None
            # This machine id belongs to another user (a copied agent home, or a new owner):
            # this PC becomes a new machine of the token's owner.
            say("This machine id is registered to another user; this PC gets a new one.")
            config.machine_uuid = str(uuid.uuid4())
            state = {"captures": state.get("captures") or {}}
            try:
                ack = _check_in(client, config, ccusage_version, state)
            except SendError as again:
                raise SetupError(f"{again} Nothing was saved.") from None
    timezone = ack.data.get("timezone") or "UTC"
    machine = ack.data.get("machine") if isinstance(ack.data.get("machine"), dict) else {}
    adopted = adopt_copied_identity(home, config, state, ack)
    if adopted:
        say(adopted)
    save_config(home, config)
    save_token(home, config, token)
    if state.get("timezone") and state["timezone"] != timezone:
        state["full_acked"] = False
    state["timezone"] = timezone
    save_state(home, state)
    return SetupResult(config, timezone, machine.get("name") or name, problem)


def _check_in(client: Client, config: Config, ccusage_version: str, state: dict):
    envelope = check_in_envelope(config, ccusage_version, state.get("timezone") or "UTC")
    return client.ingest(encode(envelope))


def default_name() -> str:
    return socket.gethostname().split(".")[0] or "my-pc"


def token_from_env() -> str:
    return os.environ.get(TOKEN_ENV, "")
