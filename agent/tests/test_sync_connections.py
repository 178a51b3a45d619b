"""What a steady-state sync spends besides ccusage: one HTTP client (and one connection) for
the request keys, the report and the limits refresh; no CA bundle for a plain-http server;
no reading of transcripts that end before the window."""

import json
import os
import ssl
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from claude_telemetry.client import connection_limits, tls_verify
from claude_telemetry.request_keys import scan
from test_end_to_end import connected, token  # noqa: F401 - fixtures

from tests.crafted_logs import assistant_line, write_session


def transcript(config_dir: Path, session_id: str, moment: datetime) -> Path:
    write_session(config_dir, [assistant_line(moment, session_id=session_id)], session_id)
    return next((config_dir / "projects").rglob(f"{session_id}.jsonl"))


def test_a_plain_http_server_gets_no_ca_bundle_and_https_keeps_the_default():
    assert tls_verify("https://telemetry.example.com") is True
    assert tls_verify("HTTPS://telemetry.example.com") is True
    context = tls_verify("http://127.0.0.1:8000")
    assert isinstance(context, ssl.SSLContext)
    # Trusts nothing: were it ever used, every certificate would be refused.
    assert context.cert_store_stats()["x509_ca"] == 0
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_connections_are_kept_alive_only_where_making_one_costs_a_tls_handshake():
    assert connection_limits("https://telemetry.example.com").max_keepalive_connections == 20
    assert connection_limits("http://127.0.0.1:8000").max_keepalive_connections == 0


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
):
    from claude_telemetry.cli import main

    made: list[httpx.Client] = []
    real_init = httpx.Client.__init__

    def counting_init(self, *args, **kwargs):
        made.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "__init__", counting_init)
    assert main(["sync", "--service"]) == 0
    assert len(made) == 1
    home = Path(use_agent_env["CLAUDE_TELEMETRY_HOME"])
    status = json.loads((home / "limits-status.json").read_text())
    assert time.time() - status["fetched_at"] < 60 and "decision" in status["status"]
    assert made[0].is_closed  # closed once the refresh is done
