"""Real-world conditions, with the real agent, the real ccusage and a live server: Claude Code's
30-day log cleanup, and an agent folder copied to another PC. The logs are written line by line
here, so every expected number is plain arithmetic."""

import io
import json
import os
import shutil
import subprocess
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Sum

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CCUSAGE_BIN = ROOT / "node_modules" / ".bin" / "ccusage"
EMAIL = "member@a.example"
SONNET = "claude-sonnet-4-5-20250929"
# Session ids (transcript names).
OCTOBER = "11111111-1111-4111-8111-111111111111"
NOVEMBER = "22222222-2222-4222-8222-222222222222"
CONTINUED = "33333333-3333-4333-8333-333333333333"
ON_PC1 = "44444444-4444-4444-8444-444444444444"
ON_PC2 = "55555555-5555-4555-8555-555555555555"


def compact(record: dict) -> str:
    # Claude Code writes compact JSON, and ccusage 20.0.24 skips lines written with spaces.
    return json.dumps(record, separators=(",", ":"))


def assistant_line(session_id: str, cwd: str, at: str, input_tokens: int, output_tokens: int):
    """One Claude Code assistant line with its usage (message id and request id unique)."""
    token = uuid.uuid4().hex
    return {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session_id,
        "version": "2.0.30",
        "type": "assistant",
        "uuid": str(uuid.uuid4()),
        "timestamp": at,
        "requestId": f"req_011C{token[:20]}",
        "message": {
            "id": f"msg_01{token[:24]}",
            "type": "message",
            "role": "assistant",
            "model": SONNET,
            "content": [{"type": "text", "text": "done"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        },
    }


def write_session(home: Path, project: str, name: str, lines: list[tuple[str, int, int]]) -> Path:
    """A transcript of `project` (a folder under ~/src) with (time, input, output) lines."""
    cwd = f"{home}/src/{project}"
    Path(cwd).mkdir(parents=True, exist_ok=True)
    folder = home / ".claude" / "projects" / cwd.replace("/", "-")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    session_id = name
    with path.open("a", encoding="utf-8") as out:
        for at, inp, outp in lines:
            out.write(compact(assistant_line(session_id, cwd, at, inp, outp)) + "\n")
    return path


def write_codex_rollout(home: Path, at: str, fresh: int, output: int) -> None:
    start = datetime.fromisoformat(at.replace("Z", "+00:00"))
    folder = home / ".codex" / "sessions" / f"{start:%Y/%m/%d}"
    folder.mkdir(parents=True, exist_ok=True)
    usage = {
        "input_tokens": fresh,
        "cached_input_tokens": 0,
        "output_tokens": output,
        "reasoning_output_tokens": 0,
        "total_tokens": fresh + output,
    }
    lines = [
        {
            "timestamp": at,
            "type": "session_meta",
            "payload": {"id": str(uuid.uuid4()), "timestamp": at, "cwd": f"{home}/src/tool"},
        },
        {"timestamp": at, "type": "turn_context", "payload": {"model": "gpt-5-codex"}},
        {
            "timestamp": at,
            "type": "event_msg",
            "payload": {
                "type": "token_count",
                "info": {"total_token_usage": usage, "last_token_usage": usage},
            },
        },
    ]
    name = f"rollout-{start:%Y-%m-%dT%H-%M-%S}-{uuid.uuid4()}.jsonl"
    (folder / name).write_text("".join(compact(x) + "\n" for x in lines), "utf-8")


@pytest.fixture
def make_pc(agent_env, tmp_path):
    """The environment of one more PC (or user account): its own home and agent folder."""

    def make(name: str) -> dict[str, str]:
        home = tmp_path / name
        (home / ".claude" / "projects").mkdir(parents=True)
        (home / ".codex").mkdir()
        return {
            **agent_env,
            "HOME": str(home),
            "CLAUDE_CONFIG_DIR": str(home / ".claude"),
            "CODEX_HOME": str(home / ".codex"),
            "CLAUDE_TELEMETRY_HOME": str(home / "agent"),
            "XDG_CONFIG_HOME": str(home / ".config"),
        }

    return make


@pytest.fixture
def token(server):
    call_command("adduser", EMAIL, "--team", "team-a", "--role", "member", stdout=io.StringIO())
    out = io.StringIO()
    call_command(
        "create_api_token", EMAIL, "--name", "laptop", "--scopes", "ingest,read", stdout=out
    )
    return out.getvalue().strip()


def setup(cli, env, server, token, name="laptop"):
    done = cli(
        "setup",
        "--server",
        server.url,
        "--token",
        token,
        "--name",
        name,
        "--non-interactive",
        env=env,
    )
    assert done.code == 0, done.output
    return done


def sync(cli, env, *args):
    done = cli("sync", *args, env=env)
    assert done.code == 0, done.output
    return done


def daily(machine=None, source="claude-code") -> dict[date, int]:
    from usage.models import DailyUsage

    facts = DailyUsage.objects.filter(source=source)
    if machine is not None:
        facts = facts.filter(machine=machine)
    rows = facts.values("day").annotate(tokens=Sum("total_tokens")).order_by("day")
    return {row["day"]: row["tokens"] for row in rows}


def only_machine():
    from usage.models import Machine

    return Machine.objects.get()


# --- 1. history lost to Claude Code's 30-day cleanup ---------------------------------------------


def test_a_full_sync_after_the_cleanup_keeps_the_days_and_flags_the_lost_history(
    server, token, cli, make_pc
):
    env = make_pc("laptop")
    home = Path(env["HOME"])
    october = write_session(
        home,
        "webapp",
        OCTOBER,
        [("2026-10-20T10:00:00.000Z", 100, 1000), ("2026-10-21T10:00:00.000Z", 100, 1000)],
    )
    write_session(home, "webapp", NOVEMBER, [("2026-11-20T10:00:00.000Z", 200, 2000)])
    write_codex_rollout(home, "2026-10-01T09:00:00.000Z", 3000, 500)
    setup(cli, env, server, token)
    sync(cli, env)
    assert daily() == {date(2026, 10, 20): 1100, date(2026, 10, 21): 1100, date(2026, 11, 20): 2200}

    october.unlink()  # Claude Code's cleanupPeriodDays at work
    done = sync(cli, env, "--full")

    # Absence never deletes: the server is the long-term memory.
    assert daily() == {date(2026, 10, 20): 1100, date(2026, 10, 21): 1100, date(2026, 11, 20): 2200}
    assert daily(source="codex") == {date(2026, 10, 1): 3500}
    assert "kept 2 stored rows the logs no longer hold" in done.stdout
    assert "replaced" not in done.stdout
    machine = only_machine()
    assert machine.lost_history_days == ["2026-10-20", "2026-10-21"]
    assert machine.lost_history_at is not None


def test_a_continued_session_reaching_back_before_the_lost_days_keeps_them_too(
    server, token, cli, make_pc
):
    env = make_pc("laptop")
    home = Path(env["HOME"])
    october = write_session(
        home,
        "webapp",
        OCTOBER,
        [("2026-10-20T10:00:00.000Z", 100, 1000), ("2026-10-21T10:00:00.000Z", 100, 1000)],
    )
    # A continued session: its transcript starts on 10-19 and survives the cleanup.
    write_session(
        home,
        "webapp",
        CONTINUED,
        [("2026-10-19T23:00:00.000Z", 50, 250), ("2026-11-20T10:00:00.000Z", 200, 2000)],
    )
    setup(cli, env, server, token)
    sync(cli, env)
    october.unlink()

    sync(cli, env, "--full")

    assert daily() == {
        date(2026, 10, 19): 300,
        date(2026, 10, 20): 1100,
        date(2026, 10, 21): 1100,
        date(2026, 11, 20): 2200,
    }
    # A gap between reported days is lost history too, not only days before the first one.
    assert only_machine().lost_history_days == ["2026-10-20", "2026-10-21"]


def test_a_timezone_change_regroups_the_days_it_still_has_and_keeps_the_lost_ones(
    server, token, cli, make_pc
):
    from accounts.models import Team

    env = make_pc("laptop")
    home = Path(env["HOME"])
    october = write_session(
        home,
        "webapp",
        OCTOBER,
        [("2026-10-20T10:00:00.000Z", 100, 1000), ("2026-10-21T10:00:00.000Z", 100, 1000)],
    )
    # 20:00 UTC is the next day in Tokyo.
    write_session(home, "webapp", NOVEMBER, [("2026-11-20T20:00:00.000Z", 200, 2000)])
    setup(cli, env, server, token)
    sync(cli, env)
    october.unlink()
    Team.objects.filter(slug="team-a").update(timezone="Asia/Tokyo")
    sync(cli, env)  # the answer tells the agent; the next sync regroups everything

    done = sync(cli, env)

    assert "Sent the whole history" in done.stdout
    assert "replaced 1 rows" in done.stdout
    # The UTC 11-20 became Tokyo's 11-21; the October days, gone from the logs, stay.
    assert daily() == {date(2026, 10, 20): 1100, date(2026, 10, 21): 1100, date(2026, 11, 21): 2200}


def test_switching_to_hashed_project_names_replaces_the_days_it_still_has(
    server, token, cli, make_pc
):
    env = make_pc("laptop")
    home = Path(env["HOME"])
    october = write_session(home, "webapp", OCTOBER, [("2026-10-20T10:00:00.000Z", 100, 1000)])
    write_session(home, "webapp", NOVEMBER, [("2026-11-20T10:00:00.000Z", 200, 2000)])
    setup(cli, env, server, token)
    sync(cli, env)
    october.unlink()
    config = Path(env["CLAUDE_TELEMETRY_HOME"]) / "config.toml"
    config.write_text(
        config.read_text().replace("hash_project_names = false", "hash_project_names = true")
    )

    done = sync(cli, env, "--full")

    assert "replaced 1 rows" in done.stdout
    assert daily() == {date(2026, 10, 20): 1100, date(2026, 11, 20): 2200}
    from usage.models import DailyUsage

    modes = dict(DailyUsage.objects.values_list("day", "project_key_mode"))
    assert modes == {date(2026, 10, 20): "folder", date(2026, 11, 20): "hashed"}


# --- 2. one agent folder on two PCs ------------------------------------------------------------


def test_a_copied_agent_folder_registers_a_second_machine_on_its_own(server, token, cli, make_pc):
    from usage.models import Machine

    pc1 = make_pc("pc1")
    write_session(
        Path(pc1["HOME"]),
        "webapp",
        ON_PC1,
        [("2026-11-24T10:00:00.000Z", 100, 1000)],
    )
    setup(cli, pc1, server, token)
    sync(cli, pc1)
    pc2 = make_pc("pc2")
    write_session(
        Path(pc2["HOME"]),
        "api",
        ON_PC2,
        [("2026-11-24T11:00:00.000Z", 100, 2000)],
    )
    shutil.rmtree(pc2["CLAUDE_TELEMETRY_HOME"], ignore_errors=True)
    shutil.copytree(pc1["CLAUDE_TELEMETRY_HOME"], pc2["CLAUDE_TELEMETRY_HOME"])

    done = setup(cli, pc2, server, token)
    sync(cli, pc2)
    sync(cli, pc1)

    assert "copied from another machine" in done.stdout
    first, second = Machine.objects.order_by("first_seen_at", "id")
    assert second.copied_from == first and second.uuid != first.uuid
    # The same name from the copied config: the server tells them apart on every page.
    assert (first.name, second.name) == ("laptop", "laptop (2)")
    assert first.fingerprint != second.fingerprint and len(second.fingerprint) == 64
    assert second.os_user and second.hostname
    assert daily(first) == {date(2026, 11, 24): 1100}
    assert daily(second) == {date(2026, 11, 24): 2100}
    assert sum(daily().values()) == 3200
    config = (Path(pc2["CLAUDE_TELEMETRY_HOME"]) / "config.toml").read_text()
    assert f'uuid = "{second.uuid}"' in config


def test_a_copied_folder_that_only_syncs_splits_off_and_then_sends_its_whole_history(
    server, token, cli, make_pc
):
    from usage.models import Machine

    pc1 = make_pc("pc1")
    write_session(
        Path(pc1["HOME"]),
        "webapp",
        ON_PC1,
        [("2026-11-24T10:00:00.000Z", 100, 1000)],
    )
    setup(cli, pc1, server, token)
    sync(cli, pc1)
    pc2 = make_pc("pc2")
    write_session(
        Path(pc2["HOME"]),
        "api",
        ON_PC2,
        [("2026-10-24T11:00:00.000Z", 50, 450), ("2026-11-24T11:00:00.000Z", 100, 2000)],
    )
    shutil.rmtree(pc2["CLAUDE_TELEMETRY_HOME"], ignore_errors=True)
    shutil.copytree(pc1["CLAUDE_TELEMETRY_HOME"], pc2["CLAUDE_TELEMETRY_HOME"])

    first_run = sync(cli, pc2)  # the copied state says "incremental"
    second_run = sync(cli, pc2)

    assert "copied from another machine" in first_run.stdout
    assert "Sent the whole history" in second_run.stdout
    first, second = Machine.objects.order_by("first_seen_at", "id")
    assert second.copied_from == first
    assert daily(first) == {date(2026, 11, 24): 1100}
    assert daily(second) == {date(2026, 10, 24): 500, date(2026, 11, 24): 2100}


def test_the_same_folder_on_the_same_pc_stays_one_machine(server, token, cli, make_pc):
    from usage.models import Machine

    pc1 = make_pc("pc1")
    write_session(
        Path(pc1["HOME"]),
        "webapp",
        ON_PC1,
        [("2026-11-24T10:00:00.000Z", 100, 1000)],
    )
    setup(cli, pc1, server, token)
    sync(cli, pc1)
    setup(cli, pc1, server, token)
    sync(cli, pc1, "--full")

    assert Machine.objects.count() == 1
    assert Machine.objects.get().copied_from is None


# --- 3. the same request in two machines' logs -------------------------------------------------


def ccusage_on_all(*homes: Path) -> dict:
    """What ccusage reports when it reads every machine's logs at once (the right value)."""
    env = {
        "HOME": str(homes[0]),
        "PATH": os.environ["PATH"],
        "CLAUDE_CONFIG_DIR": ",".join(str(h / ".claude") for h in homes),
        "TZ": "UTC",
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        [str(CCUSAGE_BIN), "claude", "daily", "--json", "--offline"],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)["totals"]


def team_totals() -> tuple[int, Decimal]:
    from usage.models import DailyUsage, HourlyUsage, SessionUsage

    totals = DailyUsage.objects.aggregate(t=Sum("total_tokens"), c=Sum("cost_usd"))
    # Hours and sessions tell the same story as days.
    assert HourlyUsage.objects.aggregate(t=Sum("total_tokens"))["t"] == totals["t"]
    assert SessionUsage.objects.aggregate(t=Sum("total_tokens"))["t"] == totals["t"]
    return totals["t"], Decimal(totals["c"]).quantize(Decimal("0.0001"))


# Three requests of 8,100 input tokens on the laptop: 24,300 tokens, $0.0729 at $3/M.
LAPTOP_REQUESTS = [
    ("2026-11-24T09:00:00.000Z", 8100, 0),
    ("2026-11-24T09:10:00.000Z", 8100, 0),
    ("2026-11-24T09:20:00.000Z", 8100, 0),
]


def test_a_copied_claude_folder_counts_each_request_once_as_ccusage_on_both(
    server, token, cli, make_pc
):
    laptop, desktop = make_pc("laptop"), make_pc("desktop")
    laptop_home, desktop_home = Path(laptop["HOME"]), Path(desktop["HOME"])
    write_session(laptop_home, "webapp", OCTOBER, LAPTOP_REQUESTS)
    setup(cli, laptop, server, token, name="laptop")
    sync(cli, laptop)
    # ~/.claude copied to the desktop (the same folder names), then one new request there.
    shutil.copytree(laptop_home / ".claude", desktop_home / ".claude", dirs_exist_ok=True)
    write_session(desktop_home, "webapp", NOVEMBER, [("2026-11-24T11:00:00.000Z", 8100, 0)])
    setup(cli, desktop, server, token, name="desktop")

    sync(cli, desktop)

    union = ccusage_on_all(laptop_home, desktop_home)
    assert (union["totalTokens"], round(union["totalCost"], 4)) == (32400, 0.0972)
    assert team_totals() == (32400, Decimal("0.0972"))
    assert shared_requests("desktop") == 3


def test_a_resumed_transcript_replaying_anothers_lines_counts_them_once(
    server, token, cli, make_pc
):
    laptop, desktop = make_pc("laptop"), make_pc("desktop")
    laptop_home, desktop_home = Path(laptop["HOME"]), Path(desktop["HOME"])
    original = write_session(laptop_home, "webapp", OCTOBER, LAPTOP_REQUESTS)
    # The desktop resumes the session: a new session id whose transcript replays the old lines.
    replayed = [
        {**json.loads(line), "sessionId": CONTINUED} for line in original.read_text().splitlines()
    ]
    folder = desktop_home / ".claude" / "projects" / original.parent.name
    folder.mkdir(parents=True)
    (folder / f"{CONTINUED}.jsonl").write_text("".join(compact(r) + "\n" for r in replayed))
    write_session(desktop_home, "webapp", CONTINUED, [("2026-11-24T11:00:00.000Z", 8100, 0)])
    setup(cli, laptop, server, token, name="laptop")
    setup(cli, desktop, server, token, name="desktop")

    # Either order gives the same totals: here the desktop reports first and owns them.
    sync(cli, desktop)
    sync(cli, laptop)

    union = ccusage_on_all(laptop_home, desktop_home)
    assert union["totalTokens"] == 32400
    assert team_totals() == (32400, Decimal("0.0972"))
    assert shared_requests("laptop") == 3


def test_requests_synced_between_machines_later_count_once_in_incremental_syncs(
    server, token, cli, make_pc
):
    laptop, desktop = make_pc("laptop"), make_pc("desktop")
    laptop_home, desktop_home = Path(laptop["HOME"]), Path(desktop["HOME"])
    first = write_session(laptop_home, "webapp", OCTOBER, LAPTOP_REQUESTS[:1])
    write_session(desktop_home, "webapp", NOVEMBER, [("2026-11-24T11:00:00.000Z", 8100, 0)])
    for env, name in ((laptop, "laptop"), (desktop, "desktop")):
        setup(cli, env, server, token, name=name)
        sync(cli, env)
    # Two more laptop requests; a folder sync then brings the whole transcript to the desktop.
    write_session(laptop_home, "webapp", OCTOBER, LAPTOP_REQUESTS[1:])
    assert "Sent days since" in sync(cli, laptop).stdout
    target = desktop_home / ".claude" / "projects" / first.parent.name
    target.mkdir()
    shutil.copy2(first, target / first.name)

    assert "Sent days since" in sync(cli, desktop).stdout

    union = ccusage_on_all(laptop_home, desktop_home)
    assert union["totalTokens"] == 32400
    assert team_totals() == (32400, Decimal("0.0972"))


def test_a_sync_asks_the_server_only_about_requests_it_has_not_had_confirmed(
    server, token, cli, make_pc
):
    from usage.models import IngestBatch

    laptop = make_pc("laptop")
    home = Path(laptop["HOME"])
    now = datetime.now(UTC).replace(microsecond=0)
    stamps = [(now - timedelta(hours=h)).isoformat().replace("+00:00", ".000Z") for h in (3, 2, 1)]
    write_session(home, "webapp", OCTOBER, [(stamps[0], 8100, 0), (stamps[1], 8100, 0)])
    setup(cli, laptop, server, token, name="laptop")
    sync(cli, laptop)
    write_session(home, "webapp", OCTOBER, [(stamps[2], 8100, 0)])

    sync(cli, laptop)

    asked = [
        b.counts["request_keys"]
        for b in IngestBatch.objects.order_by("pk")
        if "request_keys" in (b.counts or {})
    ]
    # The full sync claimed two requests; the next one asked only about the new one.
    assert [(c["created"], c["unchanged"]) for c in asked] == [(2, 0), (1, 0)]
    assert team_totals() == (24300, Decimal("0.0729"))
    # A copy of the agent folder on another PC is another machine: it asks about all of them.
    desktop = make_pc("desktop")
    shutil.copytree(home / "agent", Path(desktop["CLAUDE_TELEMETRY_HOME"]))
    shutil.copytree(home / ".claude", Path(desktop["HOME"]) / ".claude", dirs_exist_ok=True)
    sync(cli, desktop)
    sync(cli, desktop)
    assert team_totals() == (24300, Decimal("0.0729"))


def shared_requests(machine_name: str) -> int:
    from usage.models import SharedRequest

    return SharedRequest.objects.filter(machine__name=machine_name).count()


def test_ninety_days_of_request_keys_stay_a_small_payload(tmp_path):
    from claude_telemetry.envelope import encode
    from claude_telemetry.request_keys import scan

    home = tmp_path / "pc"
    # 90 days of 200 requests: a heavy user's whole local history.
    start = datetime(2026, 8, 31, 8, tzinfo=UTC)
    for day in range(90):
        moments = [start + timedelta(days=day, minutes=2 * n) for n in range(200)]
        lines = [(m.strftime("%Y-%m-%dT%H:%M:%S.000Z"), 10, 10) for m in moments]
        write_session(home, "webapp", str(uuid.UUID(int=day)), lines)
    hours = scan([home / ".claude" / "projects"])
    assert sum(len(keys) for keys in hours.values()) == 18_000
    size = len(encode({"reports": {"request_keys": {"hours": hours}}}))
    # 8 random bytes per key are incompressible: about 10 bytes each once gzipped.
    assert size < 18_000 * 11, size
