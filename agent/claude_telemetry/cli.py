"""Command line of the agent: `claude-telemetry <command>` or `python -m claude_telemetry`.

Heavy modules are imported inside the commands: the statusline wrapper runs many times a
minute and must start fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from claude_telemetry import __version__
from claude_telemetry.config import ConfigError, Home, resolve_home
from claude_telemetry.hooks import LIMIT_HOOKS

log = logging.getLogger("claude_telemetry")

VISIBLE = (
    "setup, sync, status, doctor, install-service, uninstall-service, install-statusline, "
    "install-hooks, limits, mcp"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claude-telemetry",
        description="Send this machine's ccusage reports to your team's claude-telemetry server.",
    )
    parser.add_argument("--version", action="version", version=f"claude-telemetry {__version__}")
    parser.add_argument(
        "--home", help="agent folder (default: $CLAUDE_TELEMETRY_HOME or the user config folder)"
    )
    sub = parser.add_subparsers(dest="command", metavar="{" + VISIBLE.replace(", ", ",") + "}")

    p = sub.add_parser("setup", help="connect this machine to a server")
    p.add_argument("--server", help="server URL, e.g. https://telemetry.example.com")
    p.add_argument("--token", help="API token (cct_…); or set CLAUDE_TELEMETRY_TOKEN")
    p.add_argument("--name", help="machine name shown on the server (default: host name)")
    p.add_argument("--non-interactive", action="store_true", help="never prompt")
    p.add_argument(
        "--keyring",
        action="store_true",
        help="keep the token in the OS keyring (needs the keyring package)",
    )
    p.add_argument(
        "--privacy",
        choices=["paths", "names", "hashed"],
        help="what the server learns about projects: folder paths and git remotes (default), "
        "folder names only, or hashed names",
    )
    p.add_argument(
        "--plan",
        choices=["pro", "max5x", "max20x", "team", "api", "skip"],
        help="the plan of your Claude account, when the server does not know it yet "
        "(a plan already chosen is never changed)",
    )
    p.add_argument("--skip-ccusage-check", action="store_true", help=argparse.SUPPRESS)

    p = sub.add_parser("sync", help="run ccusage and send the reports")
    p.add_argument("--full", action="store_true", help="send the whole history, not a window")
    p.add_argument("--dry-run", action="store_true", help="show what would be sent; send nothing")
    p.add_argument("--output", type=Path, help="with --dry-run: write the envelope JSON here")
    p.add_argument("--service", action="store_true", help="quiet; respect the retry back-off")
    p.add_argument(
        "--verbose", action="store_true", help="also print the server's counts per report"
    )
    p.add_argument("--json", action="store_true", help="print the outcome as one JSON object")

    sub.add_parser("status", help="server, last sync, spool, service")
    sub.add_parser("doctor", help="check everything the agent needs")

    p = sub.add_parser("install-service", help="sync in the background every few minutes")
    p.add_argument("--interval", type=int, help="minutes between syncs (default from config, 15)")
    p.add_argument(
        "--files-only", action="store_true", help="write the service files but do not enable them"
    )
    sub.add_parser("uninstall-service", help="remove the background service")

    p = sub.add_parser("install-statusline", help="capture Claude Code's official rate limits")
    p.add_argument("--uninstall", action="store_true", help="put back the original statusLine")
    p.add_argument(
        "--limits", action="store_true", help="also show block, budget and weekly use in it"
    )
    p = sub.add_parser(
        "install-hooks", help="sync when a session ends; warn or stop at the team's limits"
    )
    p.add_argument("--uninstall", action="store_true", help="remove the hooks")
    p = sub.add_parser("limits", help="the budgets and quotas this machine's hooks act on")
    p.add_argument("--refresh", action="store_true", help="ask the server now (5 s at most)")
    p.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)

    sub.add_parser(
        "mcp", help="serve the server's MCP tools on stdin/stdout (for Claude Code or Desktop)"
    )
    sub.add_parser("statusline-capture")  # run by Claude Code, not by people
    sub.add_parser("hook-session-end")
    sub.add_parser("hook-prompt-submit")
    sub.add_parser("hook-session-start")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    home = Home(resolve_home(args.home), explicit=bool(args.home))
    if args.command == "statusline-capture":
        from claude_telemetry.statusline import run_wrapper

        return run_wrapper(home.root)
    if args.command in LIMIT_HOOKS:
        from claude_telemetry.hooks import limits_hook

        return limits_hook(home.root, home.explicit, LIMIT_HOOKS[args.command])
    if args.command is None:
        parser.print_help()
        return 2
    from claude_telemetry.logs import setup_logging

    setup_logging(home)
    ui = Ui()
    try:
        return COMMANDS[args.command](home, args, ui)
    except KeyboardInterrupt:
        ui.error("Interrupted.")
        return 130
    except EOFError:
        # A question met the end of its input: a script piped too few answers (or none).
        ui.error(
            f"`{args.command}` asked a question but its input ended. Answer it in a terminal, "
            "or pass every answer as an option (see --help), e.g. "
            "`claude-telemetry setup --server URL --token TOKEN --non-interactive`."
        )
        return 2
    except Exception as exc:
        known = _known_errors()
        if isinstance(exc, known):
            ui.error(str(exc))
            log.error("%s: %s", args.command, exc)
            return 1
        log.exception("%s failed", args.command)
        ui.error(
            f"Unexpected error: {type(exc).__name__}: {exc}. Details are in "
            f"{home.logs_dir / 'agent.log'}."
        )
        return 1


def _known_errors() -> tuple[type[Exception], ...]:
    from claude_telemetry.ccusage import CcusageError
    from claude_telemetry.claude_settings import SettingsError
    from claude_telemetry.service import ServiceError
    from claude_telemetry.setup import SetupError

    return (ConfigError, CcusageError, SettingsError, ServiceError, SetupError)


class Ui:
    """Printing through rich on a terminal (colours, prompts, progress); plain text in pipes,
    logs and the background service, which then never import rich (~40 ms of start-up)."""

    def __init__(self):
        if sys.stdout.isatty() or sys.stderr.isatty():
            from rich.console import Console

            self.out: Any = Console(highlight=False, soft_wrap=True)
            self.err: Any = Console(stderr=True, highlight=False, soft_wrap=True)
        else:
            self.out = PlainConsole(sys.stdout)
            self.err = PlainConsole(sys.stderr)

    def say(self, text: str = "") -> None:
        self.out.print(text, markup=False)

    def ok(self, text: str) -> None:
        self.out.print("[green]✓[/green] ", end="")
        self.out.print(text, markup=False)

    def warn(self, text: str) -> None:
        self.err.print("[yellow]warning:[/yellow] ", end="")
        self.err.print(text, markup=False)

    def error(self, text: str) -> None:
        self.err.print("[red]error:[/red] ", end="")
        self.err.print(text, markup=False)


class PlainConsole:
    """The part of rich's Console the commands use, for output that is not a terminal:
    style tags in our own markup are dropped, the text itself is printed as it is."""

    _STYLE = re.compile(r"\[/?[a-z ]*\]")
    is_terminal = False

    def __init__(self, stream):
        self.stream = stream

    def print(self, text: str = "", end: str = "\n", markup: bool = True) -> None:
        self.stream.write((self._STYLE.sub("", text) if markup else text) + end)
        self.stream.flush()


# --- commands ---------------------------------------------------------------------------------


def cmd_setup(home: Home, args, ui: Ui) -> int:
    from claude_telemetry.setup import (
        PRIVACY_CHOICES,
        SetupError,
        check_server,
        check_token,
        configure,
        default_name,
        existing_config,
        privacy_choice,
        token_from_env,
    )

    previous = existing_config(home)
    server, token, name = args.server, args.token or token_from_env(), args.name
    privacy = args.privacy
    if previous and args.token and not (server or name or privacy):
        # `setup --token X` alone: a new token for the same server and machine.
        result = configure(
            home,
            server=previous.server_url,
            token=args.token,
            name=previous.machine_name,
            use_keyring=args.keyring or previous.token_store == "keyring",
            check_ccusage=False,
            say=ui.say,
        )
        ui.ok(f"Token replaced; still {previous.server_url} as machine {result.machine_name!r}.")
        if args.plan:
            _setup_plan(home, result.config, args.token, args, ui)
        return 0
    if args.non_interactive:
        missing = [flag for flag, v in (("--server", server), ("--token", token)) if not v]
        if missing:
            ui.error(f"{' and '.join(missing)} required with --non-interactive.")
            return 2
        name = name or (previous.machine_name if previous else default_name())
    else:
        from rich.prompt import Prompt

        ui.say("Connect this machine to your team's claude-telemetry server.")
        # Each answer is checked as it is given; a wrong one is asked again, not the lot.
        while True:
            server = server or Prompt.ask(
                "Server URL", default=previous.server_url if previous else None
            )
            try:
                server = check_server(server or "")
                break
            except SetupError as exc:
                ui.error(str(exc))
                server = None
        ui.ok(f"{server} is a claude-telemetry server.")
        while True:
            if not token:
                ui.say(f"Make a token on the machines page ({server}/machines/) and paste it here.")
                token = Prompt.ask("API token", password=True)
            try:
                token = check_token(server, token or "")
                break
            except SetupError as exc:
                ui.error(str(exc))
                token = None
        ui.ok("The server accepts the token.")
        while not (name or "").strip():
            name = Prompt.ask(
                "Name for this machine",
                default=previous.machine_name if previous else default_name(),
            )
        if privacy is None and not (previous and previous.privacy_chosen):
            ui.say("What may the server learn about your projects?")
            keys = list(PRIVACY_CHOICES)
            for number, key in enumerate(keys, start=1):
                ui.say(f"  {number}. {PRIVACY_CHOICES[key]}")
            default = str(keys.index(privacy_choice(previous)) + 1) if previous else "1"
            answer = Prompt.ask("Choose", choices=["1", "2", "3"], default=default)
            privacy = keys[int(answer) - 1]
    result = configure(
        home,
        server=server,
        token=token,
        name=name,
        use_keyring=args.keyring,
        check_ccusage=not args.skip_ccusage_check,
        privacy=privacy,
        say=ui.say,
    )
    ui.ok(
        f"Connected as machine {result.machine_name!r} ({result.config.machine_uuid}); "
        f"the team reports in {result.timezone}."
    )
    ui.say(f"Configuration saved in {home.config_file}.")
    ui.say(f"Projects: the server gets {PRIVACY_CHOICES[privacy_choice(result.config)]}.")
    if result.ccusage_problem:
        ui.warn(result.ccusage_problem)
    _setup_plan(home, result.config, token, args, ui)
    if not args.non_interactive:
        from rich.prompt import Confirm

        if Confirm.ask(
            f"Sync in the background every {result.config.interval_minutes} minutes?", default=True
        ):
            cmd_install_service(home, argparse.Namespace(interval=None, files_only=False), ui)
        if Confirm.ask(
            "Capture Claude Code's official rate limits from the status line?", default=False
        ):
            cmd_install_statusline(home, argparse.Namespace(uninstall=False, limits=False), ui)
    ui.say("Next: claude-telemetry sync (the first one sends the whole history).")
    return 0


def _setup_plan(home: Home, config, token: str, args, ui: Ui) -> None:
    """Ask once which plan pays for this machine's Claude account while the server does not
    know it (`--plan` answers for scripts); a plan someone chose is never changed here."""
    from claude_telemetry.config import load_state, save_state
    from claude_telemetry.setup import (
        PLAN_CHOICES,
        SUBSCRIPTIONS_PAGE,
        SetupError,
        account_plan,
        choose_plan,
    )

    server = config.server_url
    page = f"{server}{SUBSCRIPTIONS_PAGE}"
    info = account_plan(server, token, config.machine_uuid)
    if info is None:
        if args.plan and args.plan != "skip":
            ui.warn(f"The server cannot take the plan from here; choose it on {page}.")
        return
    if info["chosen"]:
        label = info.get("plan_label") or info.get("plan")
        if args.plan and args.plan not in ("skip", info.get("plan")):
            ui.warn(f"The plan is already {label}; it is not changed here. Change it on {page}.")
        else:
            ui.say(f"Plan: {label}.")
        return
    state = load_state(home)
    plan = args.plan
    if plan is None and not args.non_interactive and not state.get("plan_asked"):
        from rich.prompt import Prompt

        ui.say("Which plan pays for this Claude account? (the dashboards compare its price")
        ui.say("with the API value of your usage; nothing is assumed until you say)")
        keys = list(PLAN_CHOICES)
        for number, key in enumerate(keys, start=1):
            ui.say(f"  {number}. {PLAN_CHOICES[key]}")
        answer = Prompt.ask(
            "Choose", choices=[str(n) for n in range(1, len(keys) + 1)], default=str(len(keys))
        )
        plan = keys[int(answer) - 1]
        state["plan_asked"] = True  # asked once: a later setup does not ask again
        save_state(home, state)
    if plan is None or plan == "skip":
        ui.say(f"Plan unknown: choose it on {page} or with `claude-telemetry setup --plan …`.")
        return
    try:
        ui.ok(f"Plan: {choose_plan(server, token, config.machine_uuid, plan)}.")
    except SetupError as exc:
        ui.warn(str(exc))


def cmd_sync(home: Home, args, ui: Ui) -> int:
    from claude_telemetry.config import load_config
    from claude_telemetry.sync import Syncer

    config = load_config(home)
    show_progress = not args.service and not args.json and ui.err.is_terminal
    syncer = None
    try:
        if show_progress:
            with ui.err.status("Starting") as status:
                syncer = Syncer(home, config, progress=status.update)
                outcome = syncer.run(
                    full=args.full, dry_run=args.dry_run, output=args.output, keep_client=True
                )
        else:
            syncer = Syncer(home, config)
            outcome = syncer.run(
                full=args.full,
                dry_run=args.dry_run,
                service=args.service,
                output=args.output,
                keep_client=True,
            )
        if not args.dry_run:
            # The status came with the report's answer, or is asked for on the sync's own
            # connection: no second client, TLS set-up or handshake.
            _refresh_limits(home, config, http=syncer.http, status=syncer.agent_status)
    finally:
        if syncer is not None:
            syncer.close()
    if args.json:
        import json

        result = {0: "ok", 75: "kept"}.get(outcome.code, "failed")
        print(
            json.dumps(
                {
                    "result": result,
                    "exit_code": outcome.code,
                    "message": outcome.message,
                    "notes": outcome.lines + outcome.after,
                    **outcome.detail,
                },
                ensure_ascii=False,
            )
        )
        return outcome.code
    for line in outcome.lines:
        ui.say(line)
    if outcome.code == 0:
        ui.ok(outcome.message)
    elif outcome.code == 75:
        ui.warn(outcome.message)
    else:
        ui.error(outcome.message)
    for line in outcome.after:
        ui.say(line)
    if args.verbose and outcome.detail.get("counts_text"):
        ui.say(f"{outcome.detail['counts_text']} ({outcome.detail.get('bytes', 0):,} bytes gzip)")
    return outcome.code


def _refresh_limits(home: Home, config, http=None, status=None) -> str | None:
    """Refresh the hooks' status file; the error in words when the server did not answer.
    `http`: an open claude_telemetry.http.Session with this config's server and token to
    reuse, or None; `status`: the status the server just sent (limits.refresh), or None."""
    from claude_telemetry.config import load_token
    from claude_telemetry.limits import REFRESH_TIMEOUT_SECONDS, refresh

    try:
        salt = config.hash_salt if config.hash_project_names else None
        token = load_token(home, config)
        refresh(
            home.root,
            config.server_url,
            token,
            REFRESH_TIMEOUT_SECONDS,
            project_salt=salt,
            client=http,
            status=status,
        )
    except Exception as exc:  # the hooks fail open on an old file; sync's result stands
        log.warning("limits refresh failed: %s", exc)
        return f"{type(exc).__name__}: {exc}"
    return None


def cmd_limits(home: Home, args, ui: Ui) -> int:
    from claude_telemetry.config import load_config
    from claude_telemetry.limits import describe, live_checks, now_utc, read_cache, segment

    if args.refresh:
        problem = _refresh_limits(home, load_config(home))
        if problem:
            if not args.quiet:
                ui.error(f"Could not refresh the limits from the server: {problem}")
            return 1
    if args.quiet:
        return 0
    status, age = read_cache(home.root)
    if status is None:
        ui.say("No limits status yet. Run: claude-telemetry limits --refresh")
        return 0
    ui.say(f"Status from {age / 60:.0f} min ago: {segment(status, age, now_utc())}")
    contacts = status.get("contacts") or []
    for check in live_checks(status, now_utc()):
        ui.say(f"{check['level'].upper():<5} {describe(check, contacts)}")
    return 0


def cmd_status(home: Home, args, ui: Ui) -> int:
    from claude_telemetry import service
    from claude_telemetry.ccusage import ccusage_command_line
    from claude_telemetry.claude_settings import Installer
    from claude_telemetry.config import load_config, load_state
    from claude_telemetry.spool import Spool
    from claude_telemetry.statusline import latest_capture_time

    config = load_config(home)
    state = load_state(home)
    spool = Spool(home.spool_dir, home.rejected_dir, 0)
    last = state.get("last_sync") or {}
    rows = [
        ("Server", config.server_url),
        ("Machine", f"{config.machine_name} ({config.machine_uuid})"),
        ("Team timezone", state.get("timezone") or "not known yet"),
        (
            "Last sync",
            f"{_when(last.get('at'))}: {last.get('result', '?')}: {last.get('message', '')}"
            if last
            else "never",
        ),
        (
            "Last success",
            _when(state.get("last_success_at")) if state.get("last_success_at") else "never",
        ),
        ("Last counts", _counts(state.get("last_counts"))),
        (
            "Next window",
            "full history"
            if not state.get("full_acked")
            else f"from {config.overlap_days} days before {state.get('last_day')}",
        ),
        (
            "Spool",
            f"{len(spool.entries())} waiting ({spool.total_bytes():,} bytes), "
            f"{len(spool.rejected())} refused"
            + (f" (latest: {latest})" if (latest := spool.latest_rejection()) else ""),
        ),
        (
            "ccusage",
            f"{ccusage_command_line(config)}"
            + (f" (last used {state['ccusage_version']})" if state.get("ccusage_version") else "")
            + _native_note(home, config),
        ),
        ("Service", service.describe(home)),
        (
            "Statusline",
            _statusline(
                Installer(home, "statusline").record(), latest_capture_time(home.captures_dir)
            ),
        ),
        ("Limits", _limits_row(home)),
        ("Home", str(home.root)),
    ]
    if state.get("next_attempt_at"):
        rows.append(("Retry after", _when(state["next_attempt_at"])))
    width = max(len(k) for k, _ in rows) + 1
    for key, value in rows:
        ui.say(f"{key + ':':<{width}} {value}")
    return 0


def _native_note(home: Home, config) -> str:
    """', run as its native binary <path>' when the last sync found one (native.py)."""
    from claude_telemetry.ccusage import ccusage_command_line
    from claude_telemetry.native import Resolution

    argv = Resolution(home.root, ccusage_command_line(config)).argv
    if argv and len(argv) == 1 and "@ccusage" in Path(argv[0]).parts:
        return f", run as its native binary {argv[0]}"
    return ""


def _when(iso: str | None) -> str:
    if not iso:
        return "?"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _counts(counts) -> str:
    if not isinstance(counts, dict) or not counts:
        return "-"
    return ", ".join(
        f"{k}: {v.get('created', 0)} new, {v.get('updated', 0)} updated"
        for k, v in counts.items()
        if isinstance(v, dict)
    )


def _limits_row(home: Home) -> str:
    from claude_telemetry.limits import now_utc, read_cache, segment

    status, age = read_cache(home.root)
    if status is None:
        return "no status yet (claude-telemetry limits --refresh)"
    return f"{segment(status, age, now_utc())} (as of {age / 60:.0f} min ago)"


def _statusline(record, latest) -> str:
    if record is None:
        return "capture not installed"
    if latest is None:
        return "capture installed, no reading yet"
    minutes = (datetime.now(UTC) - latest).total_seconds() / 60
    return f"capture installed, last reading {minutes:.0f} min ago"


def cmd_doctor(home: Home, args, ui: Ui) -> int:
    from claude_telemetry import doctor

    checks = doctor.run(home)
    width = max(len(c.name) for c in checks)
    colours = {"ok": "green", "warn": "yellow", "fix": "red"}
    for check in checks:
        ui.out.print(f"[{colours[check.level]}]{check.level.upper():<4}[/] ", end="")
        ui.out.print(f"{check.name:<{width}}  {check.detail}", markup=False)
        for number, line in enumerate(check.fix.splitlines()):
            arrow = "→" if number == 0 else " "
            ui.out.print(f"{'':<5}{'':<{width}}  {arrow} {line}", markup=False)
    failed = [c for c in checks if c.level == "fix"]
    return 1 if failed else 0


def cmd_install_service(home: Home, args, ui: Ui) -> int:
    from claude_telemetry import service
    from claude_telemetry.config import load_config

    config = load_config(home)
    # Pin the home in the service so it never depends on this shell's environment.
    lines, ok = service.install(
        home, args.interval or config.interval_minutes, enable=not args.files_only
    )
    for line in lines:
        ui.say(line)
    return 0 if ok else 1


def cmd_uninstall_service(home: Home, args, ui: Ui) -> int:
    from claude_telemetry import service

    for line in service.uninstall(home):
        ui.say(line)
    return 0


def cmd_install_statusline(home: Home, args, ui: Ui) -> int:
    from claude_telemetry.claude_settings import install_statusline, uninstall_statusline
    from claude_telemetry.statusline import set_segment

    home.ensure()
    if args.uninstall:
        set_segment(home.root, False)
        ui.say(uninstall_statusline(home))
        return 0
    ui.say(install_statusline(home))
    if args.limits:
        set_segment(home.root, True)
        ui.say("The status line also shows the running block, budget and weekly use.")
    return 0


def cmd_install_hooks(home: Home, args, ui: Ui) -> int:
    from claude_telemetry.claude_settings import install_hooks, uninstall_hooks

    home.ensure()
    ui.say(uninstall_hooks(home) if args.uninstall else install_hooks(home))
    return 0


def cmd_hook_session_end(home: Home, args, ui: Ui) -> int:
    from claude_telemetry.hooks import session_end

    return session_end(home)


def cmd_mcp(home: Home, args, ui: Ui) -> int:
    """Serve MCP over stdio; stdout is the protocol, so every message goes to stderr."""
    from claude_telemetry.config import load_config, load_token

    config = load_config(home)
    try:
        from claude_telemetry import mcp_proxy
    except ImportError as exc:
        ui.error(f"The MCP SDK is missing ({exc}). Reinstall: pip install claude-telemetry")
        return 1
    token = os.environ.get(mcp_proxy.TOKEN_ENV) or load_token(home, config)
    mcp_proxy.serve(config.server_url, token)
    return 0


COMMANDS = {
    "setup": cmd_setup,
    "sync": cmd_sync,
    "status": cmd_status,
    "doctor": cmd_doctor,
    "install-service": cmd_install_service,
    "uninstall-service": cmd_uninstall_service,
    "install-statusline": cmd_install_statusline,
    "install-hooks": cmd_install_hooks,
    "hook-session-end": cmd_hook_session_end,
    "limits": cmd_limits,
    "mcp": cmd_mcp,
}
