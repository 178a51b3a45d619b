"""`load_demo`: a realistic team whose figures come from the real agent and the real ccusage.

Synthetic Claude Code and Codex logs ending near now are made by telemetry_site.synthetic_logs
(one seed per machine), this server answers on a free local port inside the command, and the
agent CLI runs `setup` and `sync --full` for each machine against it, exactly as on a PC.
Celery tasks run inline here, so blocks, pace and budget checks are ready when it ends.

Running it again re-syncs the same machines (each keeps its agent home and machine id under
var/demo/) after clearing the demo machines' facts, so nothing is ever counted twice.
"""

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.util import find_spec
from io import StringIO
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import (
    ThreadedWSGIServer,
    WSGIRequestHandler,
    get_internal_wsgi_application,
)
from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteDatabaseWrapper

from accounts.models import ApiToken, Role, Team, User, hash_token
from budgets.models import Budget, Channel, ScopeKind
from telemetry_site import devserver
from telemetry_site.celery import app as celery_app
from telemetry_site.synthetic_logs import write_home
from usage.models import (
    Block,
    DailyUsage,
    HourlyUsage,
    IngestBatch,
    Machine,
    Plan,
    RateLimitSnapshot,
    SessionUsage,
    Subscription,
)

TEAM_SLUG = "demo-team"
TEAM_NAME = "Demo team"
DEMO_DOMAIN = "demo.example"
TOKEN_PREFIX_NAME = "demo:"


class DemoServer(ThreadedWSGIServer):
    """The temporary server, remembering the connections its threads share with this one."""

    shared_connections: dict[str, BaseDatabaseWrapper]


@dataclass(frozen=True)
class DemoMachine:
    name: str
    seed: int
    # Minutes before now that its logs end: close anchors make machines overlap in one block.
    ends_minutes_ago: int
    # A statusline reading of the account's official quota: 5-hour and weekly percentages.
    quota: tuple[float, float] | None = None


@dataclass(frozen=True)
class DemoMember:
    local_part: str
    role: str
    subscription: str
    plan: str
    machines: tuple[DemoMachine, ...]

    @property
    def email(self) -> str:
        return f"{self.local_part}@{DEMO_DOMAIN}"


MEMBERS = (
    # One account used on two machines at the same hours: the overlapping blocks.
    DemoMember(
        "owner",
        Role.OWNER,
        "Max 20x account",
        Plan.MAX20X,
        (
            DemoMachine("laptop", 11, 0, quota=(72.0, 48.0)),
            DemoMachine("desktop", 12, 35),
        ),
    ),
    DemoMember(
        "admin",
        Role.ADMIN,
        "Max 5x account",
        Plan.MAX5X,
        (DemoMachine("workstation", 21, 90, (35.0, 22.0)),),
    ),
    DemoMember(
        "dev", Role.MEMBER, "Pro account", Plan.PRO, (DemoMachine("laptop", 31, 15, (88.0, 64.0)),)
    ),
)


class QuietHandler(WSGIRequestHandler):
    """The agent's requests are reported by the agent; the access log would only repeat them."""

    def log_message(self, format, *args):
        pass


class Command(BaseCommand):
    help = "Load a demo team (3 members, 4 machines) by running the real agent and ccusage."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days", type=int, default=28, help="days of generated history per machine"
        )
        parser.add_argument(
            "--anchor",
            help="when the generated logs end, as YYYY-MM-DDTHH:MM:SSZ (default: now); the same "
            "anchor gives the same logs",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="load the demo even with DEBUG=0 (it adds a demo team to this database)",
        )

    def handle(self, *args, **opts):
        if not settings.DEBUG and not opts["force"]:
            raise CommandError(
                "DEBUG is off: this looks like a production database. Use --force to add the "
                "demo team anyway."
            )
        # The generator places its special cases (a resumed session, Codex days) in the last
        # 9 days before the anchor's day, so it needs at least 10 days.
        if not 10 <= opts["days"] <= 90:
            raise CommandError("--days must be between 10 and 90.")
        anchor = self.anchor(opts["anchor"])
        ccusage = self.tools()
        root = Path(settings.VAR_DIR) / "demo"
        root.mkdir(parents=True, exist_ok=True)

        self.say("Creating the demo team and its members…")
        users = {member.local_part: self.ensure_member(member) for member in MEMBERS}
        # Budgets first: the checks after each ingest then see them, as they would in real use.
        self.ensure_budgets(users)
        self.clear_facts(users.values())

        # The server's own info logs would bury the progress lines; warnings still show.
        logging.disable(logging.INFO)
        eager = celery_app.conf.task_always_eager
        # Derived work (blocks, pace, budget checks) runs inside the ingest requests here, so
        # the dashboards are complete without a worker.
        celery_app.conf.task_always_eager = True
        server = None
        try:
            server, url = self.start_server()
            for member in MEMBERS:
                for machine in member.machines:
                    self.load_machine(
                        member,
                        machine,
                        users[member.local_part],
                        root,
                        url,
                        anchor,
                        opts["days"],
                        ccusage,
                    )
        finally:
            if server is not None:
                self.stop_server(server)
            celery_app.conf.task_always_eager = eager
            logging.disable(logging.NOTSET)
        self.report(users)

    # --- set-up ---------------------------------------------------------------------------

    def anchor(self, value: str | None) -> datetime:
        if not value:
            return datetime.now(UTC).replace(microsecond=0)
        try:
            moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise CommandError(
                f"--anchor {value!r} is not a time like 2026-11-25T00:10:00Z."
            ) from None
        if moment > datetime.now(UTC):
            raise CommandError("--anchor must not be in the future: ingest refuses future days.")
        return moment

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def tools(self) -> Path:
        """The pinned ccusage (and a check for the agent package), or a clear error."""
        ccusage = Path(
            os.environ.get("CLAUDE_TELEMETRY_CCUSAGE")
            or Path(settings.BASE_DIR) / "node_modules" / ".bin" / "ccusage"
        )
        if not ccusage.exists():
            raise CommandError(f"ccusage is not installed at {ccusage}; run `make install`.")
        if find_spec("claude_telemetry") is None:
            raise CommandError("The agent package is not installed; run `make install`.")
        return ccusage

    def ensure_member(self, member: DemoMember) -> User:
        # adduser is idempotent: team, user, membership and allow-list entry.
        call_command(
            "adduser",
            member.email,
            "--team",
            TEAM_SLUG,
            "--role",
            member.role,
            "--team-name",
            TEAM_NAME,
            stdout=StringIO(),
        )
        user = User.objects.get(email=member.email)
        Subscription.objects.update_or_create(
            owner=user,
            is_default=True,
            defaults={"label": member.subscription, "plan": member.plan},
        )
        return user

    def clear_facts(self, users) -> None:
        """A re-run replaces the demo machines' history instead of adding a shifted copy.

        Their archived reports go too: the server would otherwise answer an identical report
        with "already had it" and leave the cleared facts empty.
        """
        users = list(users)
        machines = Machine.objects.filter(owner__in=users)
        with transaction.atomic():
            for model in (DailyUsage, HourlyUsage, SessionUsage, RateLimitSnapshot):
                model.objects.filter(machine__in=machines).delete()
            Block.objects.filter(subscription__owner__in=users).delete()
            IngestBatch.objects.filter(user__in=users).delete()

    def ensure_budgets(self, users) -> None:
        team = Team.objects.get(slug=TEAM_SLUG)
        # Alerts and reports by email to the team's leads (the console in development).
        channel, _ = Channel.objects.update_or_create(
            team=team,
            name="Team leads",
            defaults={"kind": Channel.Kind.EMAIL, "weekly_digest": True, "monthly_report": True},
        )
        channel.members.set([users["owner"], users["admin"]])
        team_budget, _ = Budget.objects.update_or_create(
            team=team,
            name="Team monthly",
            defaults={"scope": ScopeKind.TEAM, "amount_usd": Decimal("900")},
        )
        dev_budget, _ = Budget.objects.update_or_create(
            team=team,
            name="Dev monthly",
            defaults={
                "scope": ScopeKind.MEMBER,
                "member": users["dev"],
                "amount_usd": Decimal("150"),
            },
        )
        for budget in (team_budget, dev_budget):
            budget.channels.add(channel)

    # --- the server, inside this process ----------------------------------------------------

    def start_server(self) -> tuple[DemoServer, str]:
        if "127.0.0.1" not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
            settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
        # An in-memory SQLite database (the test suite's) exists only on this connection, so
        # the server's threads must use it too, as Django's own live server does.
        shared: dict[str, BaseDatabaseWrapper] = {
            conn.alias: conn
            for conn in connections.all()
            if isinstance(conn, SQLiteDatabaseWrapper) and conn.is_in_memory_db()
        }
        for conn in shared.values():
            conn.inc_thread_sharing()
        server = DemoServer(
            ("127.0.0.1", 0), QuietHandler, allow_reuse_address=False, connections_override=shared
        )
        server.set_app(get_internal_wsgi_application())
        server.shared_connections = shared
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        self.say(f"Started a temporary server at {url} for the agent.")
        return server, url

    def stop_server(self, server: DemoServer) -> None:
        server.shutdown()
        server.server_close()
        for conn in server.shared_connections.values():
            conn.dec_thread_sharing()

    # --- one machine ----------------------------------------------------------------------

    def load_machine(self, member, machine, user, root, url, now, days, ccusage):
        """Logs ending `machine.ends_minutes_ago` before `now`, then the agent's setup and sync."""
        label = f"{member.email} / {machine.name}"
        folder = root / f"{member.local_part}-{machine.name}"
        home, agent_home = folder / "home", folder / "agent"
        anchor = (now - timedelta(minutes=machine.ends_minutes_ago)).replace(microsecond=0)
        self.say(f"{label}: generating {days} days of Claude Code and Codex logs…")
        shutil.rmtree(home, ignore_errors=True)
        write_home(home, anchor=anchor, seed=machine.seed, days=days)
        env = self.agent_env(home, agent_home, ccusage)
        token = self.token_for(user, machine, agent_home)
        self.say(f"{label}: claude-telemetry setup…")
        self.agent(
            env,
            label,
            "setup",
            "--server",
            url,
            "--token",
            token,
            "--name",
            machine.name,
            "--non-interactive",
        )
        if machine.quota is not None:
            # Readings are taken now, whatever the logs' anchor: the quota is a live figure.
            self.capture_quota(env, label, machine.quota, datetime.now(UTC))
        self.say(f"{label}: claude-telemetry sync…")
        done = self.agent(env, label, "sync", "--full")
        # The agent's own link points at this command's temporary server, gone when it ends;
        # the site to open is printed once at the end.
        summary = [
            line for line in done.stdout.strip().splitlines() if not line.startswith("Dashboard:")
        ]
        if summary:
            self.say(f"  {summary[0]}")

    def agent_env(self, home: Path, agent_home: Path, ccusage: Path) -> dict[str, str]:
        """The environment of a PC whose only Claude Code and Codex data are the generated logs."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("CLAUDE_", "CODEX_", "XDG_", "DJANGO_"))
        }
        env.update(
            HOME=str(home),
            CLAUDE_CONFIG_DIR=f"{home}/.claude,{home}/.config/claude",
            CODEX_HOME=str(home / ".codex"),
            CLAUDE_TELEMETRY_HOME=str(agent_home),
            CLAUDE_TELEMETRY_CCUSAGE=str(ccusage),
            XDG_CONFIG_HOME=str(home / ".config"),
            TZ="UTC",
            NO_COLOR="1",
        )
        return env

    def token_for(self, user: User, machine: DemoMachine, agent_home: Path) -> str:
        """The machine's token from an earlier run if the server still knows it, else a new one."""
        token_file = agent_home / "token"
        if token_file.exists():
            raw = token_file.read_text(encoding="ascii").strip()
            if ApiToken.objects.usable().filter(user=user, token_hash=hash_token(raw)).exists():
                return raw
        name = f"{TOKEN_PREFIX_NAME} {machine.name}"
        for old in ApiToken.objects.filter(user=user, name=name, revoked_at__isnull=True):
            old.revoke()
        _, raw = ApiToken.issue(user, name, ["ingest", "read"])
        return raw

    def capture_quota(self, env, label: str, quota: tuple[float, float], now: datetime) -> None:
        """What Claude Code's status line would hand the agent's wrapper: the official quota."""
        five_hour, seven_day = quota
        payload = {
            "session_id": "demo-statusline",
            "model": {"id": "claude-sonnet-4-5-20250929"},
            "rate_limits": {
                "five_hour": {
                    "used_percentage": five_hour,
                    "resets_at": int((now + timedelta(hours=2, minutes=40)).timestamp()),
                },
                "seven_day": {
                    "used_percentage": seven_day,
                    "resets_at": int((now + timedelta(days=3, hours=5)).timestamp()),
                },
            },
        }
        self.agent(env, label, "statusline-capture", stdin=json.dumps(payload).encode())

    def agent(self, env, label: str, *args: str, stdin: bytes | None = None):
        return self.run(
            [sys.executable, "-m", "claude_telemetry", *args],
            label,
            f"`{args[0]}`",
            env=env,
            stdin=stdin,
        )

    def run(
        self, argv, label: str, what: str, env=None, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        raw = subprocess.run(
            argv,
            env=env,
            input=stdin,
            capture_output=True,
            timeout=600,
            check=False,
            cwd=env["HOME"] if env else None,
        )
        done = subprocess.CompletedProcess(
            raw.args,
            raw.returncode,
            stdout=raw.stdout.decode("utf-8", "replace"),
            stderr=raw.stderr.decode("utf-8", "replace"),
        )
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise CommandError(
                f"{label}: {what} failed (exit {done.returncode}): "
                f"{detail[-1] if detail else 'no output'} Only the demo team was touched; "
                "run load_demo again once this is fixed."
            )
        return done

    # --- the end ----------------------------------------------------------------------------

    def report(self, users) -> None:
        machines = Machine.objects.filter(owner__in=list(users.values())).count()
        facts = DailyUsage.objects.filter(machine__owner__in=list(users.values())).count()
        self.say(
            self.style.SUCCESS(
                f"Demo team ready: {len(users)} members, {machines} machines, {facts} daily rows."
            )
        )
        running = devserver.running_site()
        where = (
            f"Open {running}/ (the site is running)"
            if running
            else f"Start the site with `make run`, open {settings.SITE_URL}/"
        )
        self.say(
            f"{where} and ask for a login link for {users['owner'].email}; the other members "
            f"are {users['admin'].email} (admin) and {users['dev'].email} (member)."
        )
        if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend"):
            self.say(f"Login emails are written to {settings.EMAIL_FILE_PATH}/.")
