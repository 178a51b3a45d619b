"""What a steady-state sync spends besides ccusage: one HTTP session for the request keys, the
report and the limits refresh, keeping its connection alive only for https; no CA bundle (nor
httpx) for a plain-http server; no reading of transcripts that end before the window."""

import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from claude_telemetry import http as web
from claude_telemetry.client import Client
from claude_telemetry.request_keys import scan
from test_end_to_end import connected, token  # noqa: F401 - fixtures

from tests.crafted_logs import assistant_line, write_session


def transcript(config_dir: Path, session_id: str, moment: datetime) -> Path:
    write_session(config_dir, [assistant_line(moment, session_id=session_id)], session_id)
    return next((config_dir / "projects").rglob(f"{session_id}.jsonl"))


def test_a_plain_http_server_gets_no_tls_context_and_one_connection_per_request():
    client = Client("http://127.0.0.1:8000", "cct_x")
    assert client.http._context is None and not client.http.keep_alive
    client.close()


def test_an_https_server_gets_its_ca_bundle_at_once_and_a_kept_alive_connection(
    monkeypatch, tls_contexts
):
    made = tls_contexts
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    # Made with the client (in the sync's thread beside ccusage), before any request.
    client = Client("HTTPS://telemetry.example.com", "cct_x")
    import certifi

    assert made == [{"cafile": certifi.where()}]
    assert client.http.keep_alive
    client.close()


def test_transcripts_last_written_before_the_window_are_not_read(tmp_path):
    config_dir = tmp_path / ".claude"
    now = datetime.now(UTC).replace(microsecond=0)
    recent = transcript(config_dir, "new", now - timedelta(hours=1))
    # A line inside the window in a file whose time says it was last written 10 days ago
    # (impossible for Claude Code, which appends): the file is not opened at all.
    old = transcript(config_dir, "old", now - timedelta(hours=2))
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))
    since = (now - timedelta(days=3)).date()
    keys = [k for hour in scan([config_dir / "projects"], since).values() for k in hour]
    assert len(keys) == 1
    # Without a window (a full sync) every file is read, whatever its time.
    everything = [k for hour in scan([config_dir / "projects"]).values() for k in hour]
    assert len(everything) == 2
    assert recent.exists()


def test_a_file_written_a_day_before_the_window_slack_is_still_read(tmp_path):
    config_dir = tmp_path / ".claude"
    since = date.today() - timedelta(days=3)
    start = datetime(since.year, since.month, since.day, tzinfo=UTC) - timedelta(days=2)
    path = transcript(config_dir, "s", start + timedelta(hours=1))
    # Its time a few hours before the line's own (a clock behind on the PC that wrote it).
    stamp = (start - timedelta(hours=12)).timestamp()
    os.utime(path, (stamp, stamp))
    assert sum(len(k) for k in scan([config_dir / "projects"], since).values()) == 1


@pytest.mark.django_db(transaction=True)
def test_one_sync_makes_one_http_client_and_refreshes_the_limits_with_it(
    server,
    token,  # noqa: F811
    connected,  # noqa: F811
    use_agent_env,
    monkeypatch,
    tls_contexts,
):
    from claude_telemetry.cli import main

    made: list[web.Session] = []
    real_init = web.Session.__init__

    def counting_init(self, *args, **kwargs):
        made.append(self)
        real_init(self, *args, **kwargs)

    contexts = tls_contexts
    monkeypatch.setattr(web.Session, "__init__", counting_init)
    assert main(["sync", "--service"]) == 0
    assert len(made) == 1
    home = Path(use_agent_env["CLAUDE_TELEMETRY_HOME"])
    status = json.loads((home / "limits-status.json").read_text())
    assert time.time() - status["fetched_at"] < 60 and "decision" in status["status"]
    assert made[0].closed  # closed once the refresh is done
    assert not made[0].keep_alive and contexts == []  # plain http: no CA bundle


@pytest.mark.django_db(transaction=True)
def test_a_sync_with_a_plain_http_server_imports_neither_httpx_nor_a_ca_bundle(
    server,
    token,  # noqa: F811
    connected,  # noqa: F811
    agent_env,
):
    code = (
        "import sys\n"
        "from claude_telemetry.cli import main\n"
        "assert main(['sync', '--service']) == 0\n"
        "print(sorted({'httpx', 'httpcore', 'certifi'} & {n.split('.')[0] for n in sys.modules}))\n"
    )
    # Without these a CA bundle would come from certifi, so importing it would show one.
    env = {k: v for k, v in agent_env.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def record_requests(monkeypatch) -> list[tuple[str, str]]:
    """(method, URL path and query) of every request the agent's HTTP sessions send."""
    sent: list[tuple[str, str]] = []
    real_request = web.Session.request

    def recording(self, method, url, **kwargs):
        sent.append((method, url.split("://", 1)[-1].partition("/")[2]))
        return real_request(self, method, url, **kwargs)

    monkeypatch.setattr(web.Session, "request", recording)
    return sent


@pytest.mark.django_db(transaction=True)
def test_a_sync_keeps_the_limits_status_its_answer_brought_and_asks_no_more(
    server,
    token,  # noqa: F811
    connected,  # noqa: F811
    use_agent_env,
    monkeypatch,
):
    from claude_telemetry.cli import main

    sent = record_requests(monkeypatch)
    assert main(["sync", "--service"]) == 0
    assert ("POST", "api/v1/ingest/?include=agent_status") in sent
    assert not [path for _, path in sent if path.startswith("api/v1/agent/status/")]
    home = Path(use_agent_env["CLAUDE_TELEMETRY_HOME"])
    kept = json.loads((home / "limits-status.json").read_text())
    assert time.time() - kept["fetched_at"] < 60
    assert kept["status"]["decision"] == "ok" and kept["status"]["member"]


@pytest.mark.django_db(transaction=True)
def test_without_a_status_in_the_answer_or_after_sending_refusals_the_sync_asks_for_it(
    server,
    token,  # noqa: F811
    connected,  # noqa: F811
    use_agent_env,
    monkeypatch,
):
    from claude_telemetry.cli import main
    from claude_telemetry.limits import queue_refusal

    home = Path(use_agent_env["CLAUDE_TELEMETRY_HOME"])
    sent = record_requests(monkeypatch)
    # A server that leaves the status out of its answer (an older one, or one whose status
    # failed): the refresh asks for it.
    import budgets.receivers

    working = budgets.receivers.agent_status
    monkeypatch.setattr(budgets.receivers, "agent_status", lambda user, **kw: 1 / 0)
    assert main(["sync", "--service"]) == 0
    assert sent[-1] == ("GET", "api/v1/agent/status/")
    assert json.loads((home / "limits-status.json").read_text())["status"]["decision"] == "ok"
    monkeypatch.setattr(budgets.receivers, "agent_status", working)
    sent.clear()
    # Refusals sent after the report: the status is asked for again after them.
    stop = {"subject": "budget:x", "threshold": 100, "name": "Team cap", "percent": 100.0}
    queue_refusal(home, [stop], "session-1", datetime.now(UTC))
    assert main(["sync", "--service", "--full"]) == 0
    methods = [(m, p.partition("?")[0]) for m, p in sent]
    ingest = methods.index(("POST", "api/v1/ingest/"))
    assert methods[ingest + 1 :] == [
        ("POST", "api/v1/agent/refusals/"),
        ("GET", "api/v1/agent/status/"),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_server_that_knows_no_such_include_still_stores_the_report(
    server,
    token,  # noqa: F811
    connected,  # noqa: F811
    use_agent_env,
    monkeypatch,
):
    from claude_telemetry.cli import main

    from usage.models import IngestBatch

    # An older server, or one that dropped the name: it refuses the query with a 400 naming
    # `include` before reading the body.
    monkeypatch.setattr("usage.api.ingest.INGEST_INCLUDES", ())
    sent = record_requests(monkeypatch)
    assert main(["sync", "--service"]) == 0
    ingests = [path for method, path in sent if path.startswith("api/v1/ingest/")]
    assert "api/v1/ingest/?include=agent_status" in ingests
    assert ingests[-1] == "api/v1/ingest/"  # the same report again, without the include
    assert sent[-1] == ("GET", "api/v1/agent/status/")
    assert not IngestBatch.objects.filter(rejected=True).exists()
    home = Path(use_agent_env["CLAUDE_TELEMETRY_HOME"])
    assert not list((home / "spool").rglob("*.json.gz"))
