"""Claude Code's productivity metrics become per machine, team day and project figures, once
each however often they are resent; a real SDK exporter's metrics are stored too."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader

from tests.conftest import token_for
from tests.usage.ingest.otlp_helpers import METRICS_URL, resource
from tests.usage.ingest.otlp_metric_helpers import point, post_metrics
from usage.models import DailyUsage, Machine, ProductivityDaily, Project

AT = datetime(2026, 11, 20, 9, 31, tzinfo=UTC)


def work(end, session="session-1", **extra):
    """What a stretch of work adds to the productivity counters (Claude Code's names)."""
    s = {"session.id": session, **extra}
    return [
        point("claude_code.lines_of_code.count", end, 120, type="added", **s),
        point("claude_code.lines_of_code.count", end, 30, type="removed", **s),
        point("claude_code.commit.count", end, 2, **s),
        point("claude_code.pull_request.count", end, 1, **s),
        point("claude_code.active_time.total", end, 95.5, type="user", **s),
        point("claude_code.active_time.total", end, 40.25, type="cli", **s),
        point(
            "claude_code.code_edit_tool.decision",
            end,
            3,
            tool_name="Edit",
            decision="accept",
            source="user_temporary",
            language="Python",
            **s,
        ),
        point(
            "claude_code.code_edit_tool.decision",
            end,
            1,
            tool_name="Write",
            decision="reject",
            source="user_reject",
            language="Python",
            **s,
        ),
    ]


@pytest.mark.django_db
def test_productivity_points_are_summed_per_machine_day_and_project(member, team_a):
    response = post_metrics(
        member,
        work(AT) + work(AT + timedelta(minutes=1), session="session-2"),
        resource_extra={"project.name": "webapp"},
    )
    assert response.status_code == 200
    row = ProductivityDaily.objects.get()
    assert row.machine == Machine.objects.get(owner=member, ingest_path="otlp")
    assert (row.member, row.team, row.day) == (member, team_a, AT.date())
    assert row.project == Project.objects.get(team=team_a, key="webapp")
    assert (row.lines_added, row.lines_removed) == (240, 60)
    assert (row.commits, row.pull_requests) == (4, 2)
    assert row.active_seconds == Decimal("271.5")  # (95.5 + 40.25) x 2
    assert (row.edits_accepted, row.edits_rejected) == (6, 2)
    assert row.edit_decisions == {"Edit": {"accept": 6}, "Write": {"reject": 2}}
    # Productivity metrics are not usage: no cost or token fact comes of them.
    assert not DailyUsage.objects.exists()


@pytest.mark.django_db
def test_resent_productivity_points_count_once_and_new_ones_add(member):
    post_metrics(member, work(AT))
    post_metrics(member, work(AT))
    assert ProductivityDaily.objects.get().commits == 2
    post_metrics(member, work(AT) + work(AT + timedelta(minutes=1)))
    assert ProductivityDaily.objects.get().commits == 4


@pytest.mark.django_db
def test_a_project_name_matching_an_existing_project_uses_it_and_days_follow_the_team(outsider):
    # Team B reports in Europe/Paris: 23:30 UTC on the 20th is the 21st there.
    team = outsider.membership.team
    existing = Project.objects.create(team=team, key="-home-dev-webapp", display_name="WebApp")
    late = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    post_metrics(outsider, work(late, **{"project.name": "webapp"}))
    row = ProductivityDaily.objects.get()
    assert row.day == late.date() + timedelta(days=1)
    assert row.project == existing


@pytest.mark.django_db(transaction=True)
def test_the_sdk_metric_exporter_with_delta_temporality_stores_productivity(live_server, member):
    exporter = OTLPMetricExporter(
        endpoint=f"{live_server.url}{METRICS_URL}",
        headers={"Authorization": f"Bearer {token_for(member, ['ingest'])}"},
        timeout=10,
        # What Claude Code exports by default (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE).
        preferred_temporality={Counter: AggregationTemporality.DELTA},
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=resource(), metric_readers=[reader])
    meter = provider.get_meter("com.anthropic.claude_code", "2.1.0")
    attrs = {"session.id": "session-1"}
    meter.create_counter("claude_code.commit.count").add(1, attrs)
    lines = meter.create_counter("claude_code.lines_of_code.count")
    lines.add(40, {**attrs, "type": "added"})
    meter.create_counter("claude_code.cost.usage", unit="USD").add(
        0.75, {**attrs, "model": "claude-sonnet-4-5"}
    )
    reader.force_flush()
    # A second export interval: delta points of new work only.
    lines.add(2, {**attrs, "type": "added"})
    provider.shutdown()
    row = ProductivityDaily.objects.get()
    assert (row.commits, row.lines_added) == (1, 42)
    assert DailyUsage.objects.get().cost_usd == Decimal("0.75")
