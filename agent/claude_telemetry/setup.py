"""`setup`: checks the server, the token and ccusage, then writes the config. The machine UUID
is generated once and kept across re-runs, so a machine never appears twice on the server."""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from claude_telemetry import __version__
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
# Answers any valid token of the caller (ingest or read scope) with 200: the token check.
STATUS_PATH = "/api/v1/agent/status/"


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
    privacy: str | None = None,
    say: Callable[[str], None] = print,
) -> SetupResult:
    """Check ccusage, the server and the token (one check-in), then save the config and token.

    `privacy` is one of PRIVACY_CHOICES, or None to keep the previous choice (the defaults on
    a first set-up). Raises SetupError (nothing saved) when the server refuses."""
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
            "privacy_chosen",
            "spool_max_mb",
        ):
            setattr(config, attr, getattr(previous, attr))
    if privacy is not None:
        apply_privacy(config, privacy)
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


PRIVACY_CHOICES = {
    "paths": "project folder paths and git remotes (the dashboard names projects by repository)",
    "names": "only each project folder's last part (no paths, no git remotes)",
    "hashed": "hashed names only (the dashboard shows codes; nothing about projects leaves)",
}


def apply_privacy(config: Config, choice: str) -> None:
    """Set the [privacy] options for one of PRIVACY_CHOICES and record that it was chosen."""
    if choice not in PRIVACY_CHOICES:
        raise SetupError(f"Privacy choice must be one of {', '.join(PRIVACY_CHOICES)}.")
    config.send_project_paths = choice == "paths"
    config.hash_project_names = choice == "hashed"
    config.privacy_chosen = True


def privacy_choice(config: Config) -> str:
    if config.hash_project_names:
        return "hashed"
    return "paths" if config.send_project_paths else "names"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect would carry the token somewhere nobody chose


def _get(url: str, token: str | None = None, timeout: float = 10.0) -> tuple[int, bytes, str]:
    """(status, body, Location) of a GET; raises OSError when there is no answer at all."""
    headers = {"Accept": "application/json", "User-Agent": f"claude-telemetry-agent/{__version__}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - http(s) checked
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read(1 << 16), ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(1 << 16), exc.headers.get("Location") or ""


def check_server(url: str) -> str:
    """The normalised URL when a claude-telemetry server answers there; SetupError saying
    what is wrong (not a URL, no answer, a redirect, another kind of server) otherwise."""
    try:
        url = normalize_server_url(url)
    except ConfigError as exc:
        raise SetupError(str(exc)) from None
    try:
        status, body, location = _get(url + "/healthz")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SetupError(
            f"Cannot reach {url}: {reason}. Check the address and your network."
        ) from None
    if 300 <= status < 400:
        raise SetupError(f"{url} redirects to {location or 'another address'}; use that URL.")
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not (isinstance(data, dict) and "status" in data and "checks" in data):
        raise SetupError(
            f"{url} answers (HTTP {status}) but is not a claude-telemetry server: "
            "use the address of the web app you log in to."
        )
    if status >= 500:
        raise SetupError(f"The server at {url} is down ({data.get('status')}); try again later.")
    return url


def check_token(url: str, token: str) -> str:
    """The token, stripped, when the server at `url` accepts it; SetupError otherwise."""
    token = token.strip()
    if not token:
        raise SetupError("The API token is empty.")
    if not token.startswith("cct_") or any(c.isspace() for c in token):
        raise SetupError("That is not an API token: tokens start with cct_ and have no spaces.")
    try:
        status, _, _ = _get(url + STATUS_PATH, token)
    except OSError as exc:
        raise SetupError(f"Cannot reach {url} to check the token: {exc}.") from None
    if status == 401:
        raise SetupError(
            "The server does not accept this token (revoked, expired or mistyped). "
            f"Make a new one on the machines page ({url}/machines/)."
        )
    if status == 403:
        raise SetupError("This token lacks the 'ingest' scope; make one on the machines page.")
    if not 200 <= status < 300 and status != 429:
        raise SetupError(f"The server answered {status} when checking the token.")
    return token


def default_name() -> str:
    return socket.gethostname().split(".")[0] or "my-pc"


def token_from_env() -> str:
    return os.environ.get(TOKEN_ENV, "")


PLAN_PATH = "/api/v1/agent/plan/"
# What `setup` offers (the server's usage.api.plan.AGENT_PLANS), in this order; "skip" leaves
# the plan unknown: the dashboards then show no plan cost and the overview asks for it.
PLAN_CHOICES = {
    "pro": "Pro",
    "max5x": "Max 5x",
    "max20x": "Max 20x",
    "team": "Team",
    "api": "API pay-as-you-go",
    "skip": "skip (choose it later on the subscriptions page)",
}
SUBSCRIPTIONS_PAGE = "/settings/subscriptions/"


def account_plan(url: str, token: str, machine_uuid: str) -> dict | None:
    """The server's answer about the plan of this machine's Claude account ({"plan",
    "plan_label", "chosen", "subscription_label", ...}, see GET /api/v1/agent/plan/), or
    None when it cannot say (no answer, or a server without that endpoint)."""
    from claude_telemetry.http import HTTPError

    try:
        with Client(url, token, timeout=30) as client:
            response = client.http.get(url + PLAN_PATH, params={"machine": machine_uuid})
        data = response.json() if response.status_code == 200 else None
    except (HTTPError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("chosen"), bool) else None


def choose_plan(url: str, token: str, machine_uuid: str, plan: str) -> str:
    """Set the plan of this machine's Claude account while nobody has chosen one; the
    server's label of the plan it now has. SetupError when the server refuses (a plan already
    chosen is never overwritten: 409) or cannot be reached."""
    from claude_telemetry.http import HTTPError

    if plan not in PLAN_CHOICES or plan == "skip":
        raise SetupError(f"The plan must be one of {', '.join(PLAN_CHOICES)}.")
    try:
        with Client(url, token, timeout=30) as client:
            response = client.http.post(
                url + PLAN_PATH, json={"plan": plan, "machine": machine_uuid}
            )
    except HTTPError as exc:
        raise SetupError(f"Cannot reach {url} to save the plan: {exc}.") from None
    try:
        data = response.json()
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    if response.status_code == 200 and isinstance(data.get("plan_label"), str):
        return data["plan_label"]
    errors = data.get("errors") if isinstance(data.get("errors"), dict) else {}
    reasons = [str(r) for r in (errors.get("plan") or [])] or [str(data.get("detail") or "")]
    reason = " ".join(r for r in reasons if r) or f"HTTP {response.status_code}"
    raise SetupError(f"The server did not save the plan: {reason}")
