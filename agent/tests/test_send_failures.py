"""What the agent does with each kind of refusal, against a live server: a report refused for
its content is set aside with the reason, one the server keeps failing on stops holding newer
ones back, and a revoked token is a hard error with the way out."""

import gzip
import json
import re
import uuid
from pathlib import Path

import pytest
import test_end_to_end as e2e
from django.urls import resolve
from django.utils import timezone

from accounts.models import ApiToken
from usage.ingest import pipeline
from usage.models import DailyUsage, Machine

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The end-to-end tests' member token and connected agent.
token = e2e.token
connected = e2e.connected

POISON = "poison"


def spool_files(home: Path) -> list[Path]:
    return sorted((home / "spool").glob("*.json.gz"))


def test_a_report_the_server_always_fails_on_stops_holding_newer_reports_back(
    server, token, connected, cli, agent_env, monkeypatch
):
    # A server bug that only this report meets: every attempt answers 500.
    store = pipeline._store

    def fails_on_poison(batch, envelope, **options):
        if envelope.machine.name == POISON:
            raise RuntimeError("a bug this report meets")
        return store(batch, envelope, **options)

    monkeypatch.setattr(pipeline, "_store", fails_on_poison)
    home = Path(agent_env["CLAUDE_TELEMETRY_HOME"])
    (home / "spool").mkdir(exist_ok=True)
    poison = {
        "schema": 1,
        "machine": {"uuid": str(uuid.uuid4()), "name": POISON, "timezone": "UTC"},
        "full": False,
        "since": "2026-11-01",
        "reports": {},
        "projects": {},
    }
    poison_path = home / "spool" / "20260101T000000000000Z-0badf00d.json.gz"
    poison_path.write_bytes(gzip.compress(json.dumps(poison).encode()))

    for _ in range(2):  # retried with backoff at first, newer reports wait behind it
        done = cli("sync")
        assert done.code == 75, done.output
        assert "server had an error (500)" in done.stderr
    assert len(spool_files(home)) == 3

    done = cli("sync")
    assert done.code == 0, done.output
    assert "newer reports go first and it is kept for later" in done.stdout
    assert spool_files(home) == [poison_path]
    e2e.assert_same_totals(
        e2e.usage(server, token)["totals"], e2e.ccusage_totals("all-daily-by-agent.json")
    )

    monkeypatch.setattr(pipeline, "_store", store)  # the server is fixed
    done = cli("sync")
    assert done.code == 0, done.output
    assert spool_files(home) == []
    assert Machine.objects.filter(name=POISON).exists()


def test_a_revoked_token_is_a_hard_error_that_says_how_to_make_a_new_one(
    server, token, connected, cli, agent_env
):
    ApiToken.objects.update(revoked_at=timezone.now())

    done = cli("sync")

    assert done.code == 1, done.output
    assert "Make a new token on the tokens page" in done.stderr
    # The page it names exists (the tokens page lives under /settings/).
    page = re.search(re.escape(server.url) + r"(/\S*?/)\)", done.stderr)
    assert page is not None, done.stderr
    assert resolve(page.group(1)).url_name == "tokens"
    assert done.stderr.count("revoked") == 1, done.stderr
    assert "claude-telemetry setup --token" in done.stderr
    assert "will be sent by the next sync" not in done.output
    # The data is fine: it waits in the spool for the new token.
    assert len(spool_files(Path(agent_env["CLAUDE_TELEMETRY_HOME"]))) == 1


def test_a_retired_machine_is_told_so_and_status_and_doctor_show_why(
    server, token, connected, cli, agent_env
):
    assert cli("sync").code == 0
    stored = DailyUsage.objects.count()
    Machine.objects.update(retired_at=timezone.now())

    done = cli("sync")

    assert done.code == 1, done.output
    assert "was retired on" in done.stderr
    assert "restore it on the machines page" in done.stderr
    assert DailyUsage.objects.count() == stored
    status = cli("status").stdout
    assert re.search(r"1 refused \(latest: 409: .*was retired on", status), status
    assert "restore it on the machines page" in cli("doctor").stdout

    Machine.objects.update(retired_at=None)
    assert cli("sync").code == 0
