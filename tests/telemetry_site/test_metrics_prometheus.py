"""A real Prometheus scrapes /metrics of a live server with a metrics token, and what it stores
equals GET /api/v1/usage/."""

import shutil
import socket
import subprocess
import time
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from django.utils import timezone

from accounts.models import User
from tests.conftest import api_client, token_for
from tests.factories.budgets import make_budget
from tests.factories.usage import daily, machine_for, project_for

PROMETHEUS = shutil.which("prometheus")

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="Debian's prometheus package is not installed (apt-get install prometheus)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def prometheus(tmp_path):
    """Start Prometheus on loopback with a config written by `configure(target, token)`."""
    processes = []
    port = free_port()

    def start(target: str, token: str) -> str:
        (tmp_path / "token").write_text(token)
        (tmp_path / "prometheus.yml").write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "scrape_configs:\n"
            "  - job_name: claude-telemetry\n"
            "    metrics_path: /metrics\n"
            "    authorization:\n"
            f"      credentials_file: {tmp_path / 'token'}\n"
            "    static_configs:\n"
            f"      - targets: ['{target}']\n"
        )
        log = (tmp_path / "prometheus.log").open("w")
        processes.append(
            subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        return f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def query(base: str, promql: str, until_found: float = 30.0) -> list[dict]:
    """The instant vector of `promql`, waiting until Prometheus has scraped something."""
    deadline = time.monotonic() + until_found
    while True:
        try:
            body = httpx.get(f"{base}/api/v1/query", params={"query": promql}, timeout=2).json()
            if body["status"] == "success" and body["data"]["result"]:
                return body["data"]["result"]
        except httpx.TransportError:
            pass  # still starting
        if time.monotonic() > deadline:
            raise AssertionError(f"Prometheus stored no {promql} within {until_found}s")
        time.sleep(0.3)


def by_label(result: list[dict], label: str) -> dict[str, float]:
    return {row["metric"][label]: float(row["value"][1]) for row in result}


def test_prometheus_stores_what_the_usage_api_reports(live_server, prometheus, cast, team_a):
    today = timezone.now().date()
    api = project_for(team_a, "-home-dev-src-api")
    laptop = machine_for(cast["owner"], "owner-laptop", last_seen_at=timezone.now())
    desk = machine_for(cast["member"], "member-desk", last_seen_at=timezone.now())
    daily(laptop, today, "12.3456", project=api, model="claude-opus-4-5", tokens=1_234_567)
    daily(laptop, today - timedelta(days=1), "0.99", model="claude-sonnet-4-5", tokens=55_000)
    daily(desk, today, "4.20", project=api, model="gpt-5-codex", source="codex", tokens=420_000)
    make_budget(team_a, amount="100", name="Team month")
    User.objects.filter(pk=cast["owner"].pk).update(is_staff=True)

    target = urlsplit(live_server.url).netloc
    base = prometheus(target, token_for(cast["owner"], scopes=("metrics",)))

    up = query(base, 'up{job="claude-telemetry"} == 1')
    assert up, "the scrape failed: see prometheus.log"
    read = api_client(token_for(cast["owner"], scopes=("read",)))

    members = by_label(query(base, "claude_telemetry_member_cost_usd_total"), "member")
    body = read.get("/api/v1/usage/", {"group_by": "member", "scope": "team"}).json()
    emails = {str(u.public_id): u.email for u in User.objects.all()}
    assert members == pytest.approx(
        {emails[row["key"]]: float(row["cost_usd"]) for row in body["results"]}
    )

    for group_by, label in (("model", "model"), ("source", "source"), ("project", "project_id")):
        stored = by_label(query(base, f"claude_telemetry_{group_by}_cost_usd_total"), label)
        body = read.get("/api/v1/usage/", {"group_by": group_by, "scope": "team"}).json()
        assert stored == pytest.approx({r["key"]: float(r["cost_usd"]) for r in body["results"]})

    tokens = query(base, "sum(claude_telemetry_team_tokens_total)")
    totals = read.get("/api/v1/usage/", {"group_by": "day", "scope": "team"}).json()["totals"]
    assert float(tokens[0]["value"][1]) == totals["total_tokens"]
    cost = query(base, "claude_telemetry_team_cost_usd_total")
    assert float(cost[0]["value"][1]) == pytest.approx(float(totals["cost_usd"]))

    budget = by_label(query(base, "claude_telemetry_budget_spent_usd"), "budget")
    yesterday_counts = (today - timedelta(days=1)).month == today.month
    expected = 12.3456 + 4.20 + (0.99 if yesterday_counts else 0)
    assert budget == {"Team month": pytest.approx(expected, abs=0.01)}
    ages = by_label(query(base, "claude_telemetry_machine_last_sync_age_seconds"), "machine")
    assert set(ages) == {"owner-laptop", "member-desk"}

    # The operator's own figures arrive through the same scrape.
    scrapes = query(
        base, 'claude_telemetry_http_request_duration_seconds_count{route="metrics",status="200"}'
    )
    assert float(scrapes[0]["value"][1]) >= 1
    assert query(base, "claude_telemetry_ingest_batches")
