"""The agent against a live server, with no mocks: the real CLI in a subprocess, the real
ccusage 20.0.24 on the fixtures' synthetic logs, and the server's read API as the judge."""

import gzip
import io
import json
import re
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command

from tests.conftest import FIXTURES

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

EMAIL = "member@a.example"


def ccusage_totals(name: str) -> dict:
    return json.loads((FIXTURES / "output" / name).read_text())["totals"]


def ccusage_agent_totals(agent: str) -> dict:
    """One agent's share of ccusage's unified daily report, summed as ccusage lists it."""
    report = json.loads((FIXTURES / "output" / "all-daily-by-agent.json").read_text())
    keys = (
        "inputTokens",
        "outputTokens",
        "cacheCreationTokens",
        "cacheReadTokens",
        "totalTokens",
        "totalCost",
    )
    totals = dict.fromkeys(keys, 0)
    for row in report["daily"]:
        for part in row["agents"]:
            if part["agent"] == agent:
                for key in keys:
                    totals[key] += part[key]
    return totals


def issue_token(scopes: str = "ingest,read") -> str:
    call_command("adduser", EMAIL, "--team", "team-a", "--role", "member", stdout=io.StringIO())
    out = io.StringIO()
    call_command("create_api_token", EMAIL, "--name", "laptop", "--scopes", scopes, stdout=out)
    return out.getvalue().strip()


def usage(server, token: str, group_by: str = "source") -> dict:
    response = httpx.get(
        f"{server.url}/api/v1/usage/",
        params={"group_by": group_by, "since": "2026-11-01", "until": "2026-12-31"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def assert_same_totals(server_totals: dict, ccusage: dict) -> None:
    assert server_totals["input_tokens"] == ccusage["inputTokens"]
    assert server_totals["output_tokens"] == ccusage["outputTokens"]
    assert server_totals["cache_creation_tokens"] == ccusage["cacheCreationTokens"]
    assert server_totals["cache_read_tokens"] == ccusage["cacheReadTokens"]
    assert server_totals["total_tokens"] == ccusage["totalTokens"]
    cost = Decimal(str(server_totals["cost_usd"]))
    assert abs(cost - Decimal(str(ccusage["totalCost"]))) < Decimal("0.000001")


def by_source(report: dict) -> dict:
    return {row["key"]: row for row in report["results"]}


@pytest.fixture
def token(server):
    return issue_token()


@pytest.fixture
def connected(server, token, cli):
    done = cli(
        "setup", "--server", server.url, "--token", token, "--name", "laptop", "--non-interactive"
    )
    assert done.code == 0, done.output
    return done


def agent_state(agent_env) -> dict:
    return json.loads((Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "state.json").read_text())


def test_setup_then_sync_puts_ccusages_own_totals_on_the_server(server, token, connected, cli):
    assert "the team reports in UTC" in connected.stdout
    done = cli("sync")
    assert done.code == 0, done.output
    assert "Sent the whole history" in done.stdout
    report = usage(server, token)
    # What a person reads: days, tokens and cost sent (ccusage's own totals), what changed,
    # and where to look; not the report names.
    everything = ccusage_totals("all-daily-by-agent.json")
    days = json.loads((FIXTURES / "output" / "all-daily-by-agent.json").read_text())["daily"]
    assert f"{len(days)} days of usage ({days[0]['period']} to {days[-1]['period']})" in done.stdout
    assert f"${everything['totalCost']:,.2f}" in done.stdout
    assert "Changed on the server:" in done.stdout and " new sessions" in done.stdout
    assert f"Dashboard: {server.url}/" in done.stdout
    assert "claude_daily_instances" not in done.stdout
    # All agents together equal ccusage's unified report; Claude alone its Claude report.
    assert_same_totals(report["totals"], ccusage_totals("all-daily-by-agent.json"))
    assert_same_totals(by_source(report)["claude-code"], ccusage_totals("claude-daily.json"))
    assert_same_totals(by_source(report)["codex"], ccusage_agent_totals("codex"))
    projects = {row["label"] for row in usage(server, token, "project")["results"]}
    assert {"webapp", "api-server", "data-pipeline", "infra"} <= projects


def test_the_next_sync_sends_a_window_and_counts_nothing_twice(
    server, token, connected, cli, agent_env
):
    assert cli("sync").code == 0
    first = usage(server, token)
    state = agent_state(agent_env)
    assert state["full_acked"] is True and state["last_day"] == "2026-11-24"
    done = cli("sync", "--dry-run")
    assert "covering days since 2026-11-21" in done.stdout
    done = cli("sync")
    assert done.code == 0, done.output
    assert "Sent days since 2026-11-21" in done.stdout
    # The days were all there already: nothing is new (a session seen through the window
    # may be restated).
    assert " new " not in done.stdout and "Dashboard:" in done.stdout
    assert usage(server, token) == first
    # The raw detail is still there for scripts and support.
    done = cli("sync", "--json")
    answer = json.loads(done.stdout)
    assert answer["result"] == "ok" and answer["window"] == "since 2026-11-21"
    assert answer["server"]["counts"]["claude_daily_instances"]["created"] == 0
    assert answer["sent"]["days"] == 4 and answer["bytes"] > 0
    done = cli("sync", "--verbose")
    assert "claude_daily_instances +0" in done.stdout


def test_an_unreachable_server_spools_and_the_next_sync_drains_once(
    server, token, connected, cli, agent_env
):
    home = Path(agent_env["CLAUDE_TELEMETRY_HOME"])
    server.stop()
    done = cli("sync")
    assert done.code == 75, done.output
    assert "Cannot reach" in done.stderr and "kept (1 waiting)" in done.stderr
    assert len(list((home / "spool").glob("*.json.gz"))) == 1
    done = cli("sync")  # still down: a second report joins the first, in order
    assert done.code == 75
    assert len(list((home / "spool").glob("*.json.gz"))) == 2
    assert "2 waiting" in cli("status").stdout

    server.start()
    done = cli("sync")
    assert done.code == 0, done.output
    assert done.stdout.count("Sent a report kept from an earlier run") == 2
    assert list((home / "spool").glob("*.json.gz")) == []
    assert_same_totals(usage(server, token)["totals"], ccusage_totals("all-daily-by-agent.json"))
    # Once more for good measure: still the same totals, nothing counted twice.
    assert cli("sync").code == 0
    assert_same_totals(usage(server, token)["totals"], ccusage_totals("all-daily-by-agent.json"))


def test_the_service_run_backs_off_after_a_failure(server, token, connected, cli, agent_env):
    server.stop()
    assert cli("sync").code == 75
    state = agent_state(agent_env)
    assert state["failures"] == 1 and state["next_attempt_at"]
    server.start()
    done = cli("sync", "--service")
    assert done.code == 0 and "Backing off" in done.stdout
    assert len(list((Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "spool").iterdir())) == 1
    # A manual sync does not wait.
    assert cli("sync").code == 0
    assert agent_state(agent_env)["failures"] == 0


def transcript_texts(home: Path) -> set[str]:
    """Every prompt, answer and tool text in the fixture transcripts."""
    texts: set[str] = set()

    def walk(value):
        if isinstance(value, str):
            if len(value) >= 12:
                texts.add(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key in ("content", "text", "input", "thinking", "summary", "output"):
                    walk_all(item)
                else:
                    walk(item) if isinstance(item, dict | list) else None
        elif isinstance(value, list):
            for item in value:
                walk(item)

    def walk_all(value):
        if isinstance(value, str):
            if len(value) >= 12:
                texts.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk_all(item)
        elif isinstance(value, list):
            for item in value:
                walk_all(item)

    for path in list(home.rglob("*.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                walk(json.loads(line))
            except ValueError:
                continue
    return texts


def test_the_envelope_never_contains_prompt_or_response_text(
    server, token, connected, cli, agent_env, fixture_home, tmp_path
):
    texts = transcript_texts(fixture_home)
    assert len(texts) > 50  # the fixtures do have prompts, answers and tool inputs
    assert "Update the README with setup instructions" in texts
    out = tmp_path / "envelope.json"
    assert cli("sync", "--dry-run", "--output", str(out)).code == 0
    server.stop()
    assert cli("sync").code == 75
    (spooled,) = (Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "spool").glob("*.json.gz")
    for body in (out.read_text(), gzip.decompress(spooled.read_bytes()).decode()):
        leaked = [t for t in texts if t in body]
        assert leaked == []
        assert re.search(r'"(content|message|text)"', body) is None


def test_hashed_project_names_send_no_paths(server, token, connected, cli, agent_env, tmp_path):
    config = Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "config.toml"
    config.write_text(
        config.read_text().replace("hash_project_names = false", "hash_project_names = true")
    )
    out = tmp_path / "envelope.json"
    assert cli("sync", "--dry-run", "--output", str(out)).code == 0
    body = out.read_text()
    assert "/home/dev" not in body and "webapp" not in body
    assert cli("sync").code == 0
    labels = {row["label"] for row in usage(server, token, "project")["results"]}
    assert labels and all("hash-" in label or label == "(no project)" for label in labels)
    assert_same_totals(usage(server, token)["totals"], ccusage_totals("all-daily-by-agent.json"))


def test_statusline_readings_reach_the_server_once(server, token, connected, cli, agent_env):
    payload = json.loads((FIXTURES / "output" / "statusline-input.json").read_text())
    resets_at = int(time.time()) + 3600
    payload["rate_limits"] = {"five_hour": {"used_percentage": 42.5, "resets_at": resets_at}}
    done = cli("statusline-capture", stdin=json.dumps(payload).encode())
    assert done.code == 0, done.output
    done = cli("sync")
    assert done.code == 0, done.output
    assert "1 new rate-limit reading" in done.stdout
    done = cli("sync")
    assert "statusline" not in done.stdout


def test_a_token_without_ingest_scope_is_refused_at_setup_and_nothing_is_saved(
    server, cli, agent_env
):
    read_only = issue_token("read")
    done = cli(
        "setup", "--server", server.url, "--token", read_only, "--name", "pc", "--non-interactive"
    )
    assert done.code == 1
    assert "403" in done.stderr and "ingest" in done.stderr and "Nothing was saved" in done.stderr
    assert not (Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "config.toml").exists()


def test_a_wrong_token_and_an_unreachable_server_are_clear_at_setup(server, cli):
    done = cli(
        "setup",
        "--server",
        server.url,
        "--token",
        "cct_" + "x" * 40,
        "--name",
        "pc",
        "--non-interactive",
    )
    assert done.code == 1 and "401" in done.stderr, done.output
    server.stop()
    done = cli(
        "setup", "--server", server.url, "--token", "cct_x", "--name", "pc", "--non-interactive"
    )
    assert done.code == 1 and "Cannot reach" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_ccusage_failure_sends_nothing(server, token, connected, cli, agent_env):
    done = cli("sync", env={"CLAUDE_TELEMETRY_CCUSAGE": "/nonexistent/ccusage"})
    assert done.code == 1
    assert "Cannot find /nonexistent/ccusage" in done.stderr and "doctor" in done.stderr
    assert usage(server, token)["totals"]["total_tokens"] == 0
    assert "failed" in cli("status").stdout


def test_doctor_checks_everything_against_the_live_server(server, token, connected, cli):
    done = cli("doctor")
    lines = done.stdout.splitlines()
    for name in (
        "config",
        "permissions",
        "node",
        "ccusage",
        "claude data",
        "codex",
        "server",
        "token",
        "service",
        "statusline",
        "spool",
    ):
        assert any(re.match(rf"(OK|WARN|FIX)\s+{name}\b", line) for line in lines), name
    assert re.search(r"OK\s+token\s+accepted; the team reports in UTC", done.stdout)
    assert re.search(r"OK\s+ccusage\s+ccusage 20\.0\.24", done.stdout)
    assert re.search(r"FIX\s+service", done.stdout)  # not installed in this test
    assert done.code == 1


def test_a_spooled_report_the_server_refuses_is_set_aside_and_the_rest_goes_on(
    server, token, connected, cli, agent_env
):
    home = Path(agent_env["CLAUDE_TELEMETRY_HOME"])
    (home / "spool").mkdir(exist_ok=True)
    bad = {"schema": 99, "machine": {}, "reports": {}}
    (home / "spool" / "20260101T000000000000Z-deadbeef.json.gz").write_bytes(
        gzip.compress(json.dumps(bad).encode())
    )
    done = cli("sync")
    assert done.code == 0, done.output
    assert "refused and moved to rejected/" in done.stdout
    (reason,) = (home / "spool" / "rejected").glob("*.error.json")
    assert json.loads(reason.read_text())["status"] == 400
    assert list((home / "spool").glob("*.json.gz")) == []
    assert_same_totals(usage(server, token)["totals"], ccusage_totals("all-daily-by-agent.json"))
    assert "1 refused" in cli("status").stdout


def test_the_interactive_setup_asks_and_connects(server, token, cli, agent_env):
    answers = f"{server.url}\n{token}\nworkstation\n1\n6\nn\nn\n".encode()
    done = cli("setup", stdin=answers)
    assert done.code == 0, done.output
    assert "Connected as machine 'workstation'" in done.stdout
    assert "Projects: the server gets project folder paths and git remotes" in done.stdout
    config = (Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "config.toml").read_text()
    assert 'name = "workstation"' in config and token not in config
    # Declined: neither the service nor the statusline capture was installed.
    assert not (Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "installed" / "service.json").exists()
    first_uuid = re.search(r'uuid = "([^"]+)"', config).group(1)
    again = cli("setup", "--server", server.url, "--token", token, "--non-interactive")
    assert again.code == 0, again.output
    config = (Path(agent_env["CLAUDE_TELEMETRY_HOME"]) / "config.toml").read_text()
    assert f'uuid = "{first_uuid}"' in config and 'name = "workstation"' in config


def test_days_follow_the_teams_timezone_and_a_change_resends_everything(
    server, token, connected, cli, agent_env, tmp_path
):
    from accounts.models import Team

    assert cli("sync").code == 0
    Team.objects.filter(slug="team-a").update(timezone="Asia/Tokyo")
    # The server tells the agent on its next answer; the sync after that regroups all days.
    assert "Sent days since" in cli("sync").stdout
    assert agent_state(agent_env)["timezone"] == "Asia/Tokyo"
    out = tmp_path / "envelope.json"
    assert cli("sync", "--dry-run", "--output", str(out)).code == 0
    envelope = json.loads(out.read_text())
    assert envelope["full"] is True and envelope["machine"]["timezone"] == "Asia/Tokyo"
    tokyo = json.loads((FIXTURES / "output" / "claude-daily-tz-tokyo.json").read_text())
    days = {
        r["date"]
        for rows in envelope["reports"]["claude_daily_instances"]["projects"].values()
        for r in rows
    }
    assert days == {row["date"] for row in tokyo["daily"]}
    assert "Sent the whole history" in cli("sync").stdout
    # The UTC days were replaced, not kept beside the Tokyo ones: nothing counts twice.
    assert_same_totals(usage(server, token)["totals"], ccusage_totals("all-daily-by-agent.json"))
