"""A project budget alert end to end, through the real pages, ingest API, SMTP and webhooks.

An admin sets a project budget on the page; the agent syncs usage that crosses it; one email and
one signed webhook arrive; running everything again sends nothing new.
"""

import copy
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from budgets import notify
from budgets.models import Alert, Channel, Delivery
from tests.conftest import api_client, token_for
from tests.usage.ingest.helpers import API_SERVER
from usage.models import Project

pytestmark = pytest.mark.django_db

# The fixtures' anchor: ccusage ran just after midnight UTC on 2026-11-25.
ANCHOR = datetime(2026, 11, 25, 0, 30, tzinfo=UTC)
PROJECT_KEY = API_SERVER


def envelope(machine_uuid: str, daily: dict) -> dict:
    return {
        "schema": 1,
        "machine": {
            "uuid": machine_uuid,
            "name": "laptop",
            "hostname": "laptop",
            "os": "Linux 6.1 x86_64",
            "agent_version": "0.1.0",
            "ccusage_version": "20.0.24",
            "timezone": "UTC",
        },
        "full": True,
        "since": None,
        "reports": {"claude_daily_instances": daily},
        "projects": {PROJECT_KEY: {"cwd": "/home/dev/src/api-server", "git_remote": ""}},
    }


def first_day_only(daily: dict) -> dict:
    """The same report as it looked on the evening of its first day."""
    partial = copy.deepcopy(daily)
    partial["projects"] = {PROJECT_KEY: daily["projects"][PROJECT_KEY][:1]}
    return partial


def test_a_project_budget_set_on_the_page_alerts_once_by_email_and_signed_webhook(
    client,
    admin,
    member,
    fixtures_dir,
    smtp_server,
    receiver,
    django_capture_on_commit_callbacks,
):
    daily = json.loads((fixtures_dir / "output" / "claude-daily-instances.json").read_text())
    agent = api_client(token_for(member, ["ingest"]))
    machine_uuid = str(uuid.uuid4())

    def sync(report):
        with django_capture_on_commit_callbacks(execute=True):
            response = agent.post(
                reverse("api-ingest"),
                envelope(machine_uuid, report),
                format="json",
            )
        assert response.status_code in (200, 201), response.content
        return response

    with time_machine.travel(ANCHOR - timedelta(days=6), tick=True) as clock:
        # The agent's first sync makes the project known ($0.16 on Nov 17).
        sync(first_day_only(daily))
        project = Project.objects.get(key=PROJECT_KEY)

        client.force_login(admin)
        client.post(
            reverse("channel_create"),
            {"name": "Finance mail", "kind": "email", "addresses": "finance@a.example"},
        )
        client.post(
            reverse("channel_create"),
            {"name": "Chat", "kind": "webhook", "url": receiver.url},
        )
        shown = client.get(reverse("channels")).content.decode()
        receiver.secret = re.search(r"<code>(whsec_[A-Za-z0-9+/=]+)</code>", shown).group(1)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("budget_create"),
                {
                    "name": "API server",
                    "scope": "project",
                    "project": project.pk,
                    "period": "month",
                    "amount_usd": "0.90",
                    "thresholds": "90, 100",
                    "channels": list(Channel.objects.values_list("pk", flat=True)),
                    "active": "on",
                },
            )
        assert response.status_code == 302
        assert smtp_server.messages == [] and receiver.requests == []

        # Days later the agent syncs the full report: $0.98 on the project this month.
        clock.move_to(ANCHOR)
        sync(daily)

        assert smtp_server.subjects() == ["Budget 'API server' at 109% — $0.98 of $0.90"]
        assert smtp_server.recipients == [["finance@a.example"]]
        (hook,) = receiver.requests
        assert hook.verified, "the signature checks out with the secret shown on the page"
        assert hook.json["data"]["budget"] == "API server"
        assert hook.json["data"]["threshold"] == 100
        assert hook.json["text"].startswith("Budget 'API server' at 109% — $0.98 of $0.90")

        # Everything again: the same report, the beat's evaluation and the sweep.
        clock.shift(timedelta(hours=2))
        sync(daily)
        from budgets.tasks import evaluate_all_teams, sweep_deliveries

        with django_capture_on_commit_callbacks(execute=True):
            evaluate_all_teams.delay()
            sweep_deliveries.delay()
            notify.sweep()

    assert len(smtp_server.messages) == 1
    assert len(receiver.requests) == 1
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 2
    assert Alert.objects.count() == 2  # 90 % recorded as covered by the 100 % alert
