"""POST /api/v1/ingest/: real ccusage reports stored exactly; bad input refused and never stored."""

import gzip
import json
import logging
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone

from accounts.models import AllowedEmail, Membership, User
from telemetry_site.api.throttles import IngestThrottle
from tests.conftest import DEAD_BROKER_URL, api_client, celery_broker, token_for
from tests.usage.ingest.helpers import (
    ACTIVE_SESSION,
    API_SERVER,
    INFRA,
    OUTPUT,
    OUTPUT_V18,
    V18_FILES,
    V20_FILES,
    WEBAPP,
    cents,
    encode,
    envelope,
    expected_totals,
    fixture_reports,
    load,
    load_raw,
    post,
)
from usage.models import (
    BatchStatus,
    DailyUsage,
    HourlyUsage,
    IngestBatch,
    Machine,
    Project,
    RateLimitSnapshot,
    SessionUsage,
    Subscription,
)

pytestmark = pytest.mark.django_db

STORED_KINDS = ("claude_daily_instances", "claude_session", "daily_by_agent")


def stored_cases():
    cases = [
        (OUTPUT / name, kind, "20.0.24")
        for name, kind in sorted(V20_FILES.items())
        if kind in STORED_KINDS
    ]
    cases += [
        (OUTPUT_V18 / name, kind, "18.0.11")
        for name, kind in sorted(V18_FILES.items())
        if kind in STORED_KINDS
    ]
    return cases


def sums(queryset) -> tuple[int, Decimal]:
    totals = queryset.aggregate(tokens=Sum("total_tokens"), cost=Sum("cost_usd"))
    return totals["tokens"] or 0, totals["cost"] or Decimal(0)


def nothing_stored():
    return (
        not Machine.objects.exists()
        and not Project.objects.exists()
        and not DailyUsage.objects.exists()
        and not SessionUsage.objects.exists()
        and not HourlyUsage.objects.exists()
        and not RateLimitSnapshot.objects.exists()
    )


@pytest.mark.parametrize(
    ("path", "kind", "version"),
    stored_cases(),
    ids=lambda value: value.parent.name + "/" + value.name if hasattr(value, "name") else None,
)
def test_each_fixture_is_stored_with_ccusages_totals(
    fixtures_dir, owner_client, path, kind, version
):
    report = load_raw(path)
    body = envelope({kind: report}, version=version)
    response = post(owner_client, body)
    assert response.status_code == 201, response.json()
    machine = Machine.objects.get(uuid=body["machine"]["uuid"])
    data = load(path)
    if kind == "claude_session":
        tokens, cost = sums(SessionUsage.objects.filter(machine=machine))
        # ccusage 20's nested subagent transcripts count toward their parent session.
        sessions = {
            s["sessionId"]
            for s in data["sessions"]
            if not (version.startswith("20") and "/" in s["projectPath"])
        }
        assert response.json()["counts"][kind]["created"] == len(sessions)
    else:
        tokens, cost = sums(DailyUsage.objects.filter(machine=machine))
    if kind == "daily_by_agent":
        others = [a for row in data["daily"] for a in row["agents"] if a["agent"] != "claude"]
        expected_tokens = sum(a["totalTokens"] for a in others)
        expected_cost = sum((a["totalCost"] for a in others), Decimal(0))
    else:
        expected_tokens, expected_cost = data["totals"]["totalTokens"], data["totals"]["totalCost"]
    assert tokens == expected_tokens
    assert cents(cost) == cents(expected_cost)


def test_hourly_blocks_are_stored_with_the_claude_totals(fixtures_dir, owner_client, hourly_blocks):
    body = envelope({"blocks_hourly": hourly_blocks})
    response = post(owner_client, body)
    assert response.status_code == 201, response.json()
    hours = HourlyUsage.objects.filter(machine__uuid=body["machine"]["uuid"])
    tokens, cost = sums(hours)
    daily = load(OUTPUT / "claude-daily.json")["totals"]
    assert tokens == daily["totalTokens"]
    assert cents(cost) == cents(daily["totalCost"])
    limited = hours.get(limit_reset_at__isnull=False)
    assert limited.hour.isoformat() == "2026-11-23T14:00:00+00:00"
    assert limited.limit_reset_at.isoformat() == "2026-11-23T16:00:00+00:00"
    assert response.json()["counts"]["blocks_hourly"]["created"] == hours.count()


def test_five_hour_blocks_are_refused_as_hourly_buckets(fixtures_dir, owner_client):
    response = post(owner_client, envelope({"blocks_hourly": load_raw(OUTPUT / "blocks.json")}))
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["reports.blocks_hourly.blocks[0].endTime"]
    assert nothing_stored()


def test_a_whole_machine_report_reads_back_equal_to_ccusage(
    fixtures_dir, owner, owner_client, hourly_blocks
):
    body = envelope(
        fixture_reports(hourly=hourly_blocks),
        projects={API_SERVER: {"cwd": "/home/dev/src/api-server"}},
    )
    response = post(owner_client, body)
    assert response.status_code == 201
    answer = response.json()
    machine = Machine.objects.get(uuid=body["machine"]["uuid"])
    assert answer["machine"] == {
        "uuid": str(machine.uuid),
        "name": "laptop",
        "subscription": str(Subscription.default_for(owner).public_id),
        "copied_from": None,
    }
    assert answer["status"] == "processed" and answer["duplicate"] is False
    assert answer["timezone"] == "UTC"
    assert answer["last_day"] == "2026-11-24"
    assert set(answer["counts"]) == {
        "claude_daily_instances",
        "claude_session",
        "daily_by_agent",
        "blocks_hourly",
    }
    totals = owner_client.get("/api/v1/usage/", {"group_by": "source"}).json()["totals"]
    expected = expected_totals(OUTPUT)
    assert totals["total_tokens"] == expected["total_tokens"] == 7_238_681
    assert cents(totals["cost_usd"]) == cents(expected["cost_usd"])


def test_the_first_report_registers_the_machine_to_the_token_owner(
    fixtures_dir, owner, owner_client
):
    body = envelope({}, name="desk")
    assert post(owner_client, body).status_code == 201
    machine = Machine.objects.get(uuid=body["machine"]["uuid"])
    assert machine.owner == owner
    assert machine.team == owner.team
    assert machine.subscription == Subscription.objects.get(owner=owner, is_default=True)
    assert (machine.name, machine.hostname, machine.ccusage_version) == (
        "desk",
        "desk.local",
        "20.0.24",
    )


def test_each_request_updates_the_machines_last_seen_versions_and_sync_result(owner_client):
    machine_uuid = uuid.uuid4()
    with time_machine.travel("2026-11-24 10:00:00Z", tick=False):
        post(owner_client, envelope({}, machine_uuid=machine_uuid))
    body = envelope({}, machine_uuid=machine_uuid, name="renamed", version="20.1.0")
    with time_machine.travel("2026-11-24 11:00:00Z", tick=False):
        post(owner_client, body)
    machine = Machine.objects.get(uuid=machine_uuid)
    assert machine.last_seen_at.isoformat() == "2026-11-24T11:00:00+00:00"
    assert (machine.name, machine.ccusage_version, machine.last_sync_status) == (
        "renamed",
        "20.1.0",
        "ok",
    )
    bad = envelope({"claude_session": {"sessions": "nope"}}, machine_uuid=machine_uuid)
    with time_machine.travel("2026-11-24 12:00:00Z", tick=False):
        assert post(owner_client, bad).status_code == 400
    machine.refresh_from_db()
    assert machine.last_sync_status == "failed"
    assert "reports.claude_session.sessions" in machine.last_sync_error
    assert machine.last_seen_at.isoformat() == "2026-11-24T12:00:00+00:00"


def test_sending_the_same_body_twice_changes_nothing_and_says_so(fixtures_dir, owner_client):
    body = envelope(fixture_reports())
    first = post(owner_client, body)
    stamps = list(DailyUsage.objects.order_by("pk").values_list("updated_at", flat=True))
    # The same JSON, once gzipped and once plain, is the same report.
    second = post(owner_client, body, gzip_it=False)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["duplicate"] is True
    assert second.json()["batch_id"] == first.json()["batch_id"]
    for kind, counts in second.json()["counts"].items():
        created = first.json()["counts"][kind]["created"]
        assert counts == {"created": 0, "updated": 0, "unchanged": created, "removed": 0}
    assert IngestBatch.objects.count() == 1
    assert list(DailyUsage.objects.order_by("pk").values_list("updated_at", flat=True)) == stamps


def test_the_same_report_resent_with_new_bytes_is_all_unchanged(fixtures_dir, owner_client):
    body = envelope(fixture_reports())
    post(owner_client, body)
    body["machine"]["os"] = "Linux 6.2 x86_64"  # a different body, the same facts
    response = post(owner_client, body)
    assert response.status_code == 201
    assert response.json()["duplicate"] is False
    for counts in response.json()["counts"].values():
        assert counts["created"] == counts["updated"] == 0
    # ccusage's rows: 34 Claude (project, day, model) breakdowns and 3 Codex (day, model) ones.
    assert DailyUsage.objects.count() == 37


def test_project_names_come_from_the_folder_when_known(fixtures_dir, owner_client):
    reports = {"claude_daily_instances": load_raw(OUTPUT / "claude-daily-instances.json")}
    post(owner_client, envelope(reports))
    names = dict(Project.objects.values_list("key", "display_name"))
    assert names[WEBAPP] == "webapp"
    # ccusage turns "/", "." and "-" alike into "-": only the real folder says "api.server".
    assert names[API_SERVER] == "api-server"
    projects = {
        API_SERVER: {
            "cwd": "/home/dev/src/api.server",
            "git_remote": "git@example.com:acme/api-server.git",
        }
    }
    post(owner_client, envelope(reports, projects=projects))
    project = Project.objects.get(key=API_SERVER)
    assert project.display_name == "api.server"
    assert project.git_remote == "git@example.com:acme/api-server.git"


def test_a_gzip_body_without_the_header_is_still_read(fixtures_dir, owner_client):
    raw = gzip.compress(encode(envelope(fixture_reports())))
    response = owner_client.post("/api/v1/ingest/", data=raw, content_type="application/json")
    assert response.status_code == 201


def test_derived_work_is_queued_after_commit(
    fixtures_dir, owner_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(owner_client, envelope(fixture_reports()))
    assert response.status_code == 201
    assert len(callbacks) == 1
    batch = IngestBatch.objects.get(public_id=response.json()["batch_id"])
    assert batch.derived_at is not None


@pytest.fixture
def unreachable_broker():
    with celery_broker(DEAD_BROKER_URL):
        yield


def test_ingest_succeeds_when_the_broker_is_down_and_the_sweep_catches_up(
    fixtures_dir, owner_client, unreachable_broker, django_capture_on_commit_callbacks, caplog
):
    with (
        caplog.at_level(logging.WARNING, logger="telemetry_site.queueing"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = post(owner_client, envelope(fixture_reports()))
    assert response.status_code == 201
    assert any("periodic sweep will catch up" in r.getMessage() for r in caplog.records)
    batch = IngestBatch.objects.get(public_id=response.json()["batch_id"])
    assert batch.status == BatchStatus.PROCESSED and batch.derived_at is None
    from usage.tasks import sweep_derived_work

    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        assert sweep_derived_work() == 1
    batch.refresh_from_db()
    assert batch.derived_at is not None


# --- bad input: refused, and nothing is stored ---------------------------------------------------
def test_a_truncated_gzip_body_is_refused_and_not_archived(fixtures_dir, owner_client):
    data = gzip.compress(encode(envelope(fixture_reports())))
    response = post(owner_client, data[: len(data) // 2], HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert response.json()["errors"] == {"body": ["truncated gzip stream"]}
    assert not IngestBatch.objects.exists() and nothing_stored()


def test_a_body_that_is_not_gzip_at_all_is_refused(owner_client):
    response = post(owner_client, b"\x1f\x8bnot really gzip", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert "body" in response.json()["errors"]


@override_settings(INGEST_MAX_DECOMPRESSED_BYTES=1024 * 1024)
def test_a_gzip_bomb_is_refused_with_413_before_it_inflates(owner_client):
    bomb = gzip.compress(b"{" + b" " * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100 * 1024
    response = post(owner_client, bomb, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert not IngestBatch.objects.exists() and nothing_stored()


@override_settings(INGEST_MAX_BODY_BYTES=4096)
def test_a_body_over_the_size_limit_is_refused_with_413(owner_client):
    response = post(owner_client, b"[" + b"0," * 4096 + b"0]")
    assert response.status_code == 413
    assert not IngestBatch.objects.exists()


def test_an_unknown_content_encoding_is_refused(owner_client):
    response = post(owner_client, encode(envelope({})), HTTP_CONTENT_ENCODING="br")
    assert response.status_code == 415
    assert not IngestBatch.objects.exists()


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b"{not json", "body"),
        (b'{"schema": 1, "x": NaN}', "body"),
        (b"\xff\xfe{}", "body"),
        (b"[]", "body"),
        (encode({**envelope({}), "schema": "1"}), "schema"),
        (encode({k: v for k, v in envelope({}).items() if k != "machine"}), "machine"),
        (encode(envelope({"claude_session": []})), "reports.claude_session"),
        (encode(envelope({"statusline": {"captured_at": "x"}})), "reports.statusline"),
    ],
)
def test_malformed_envelopes_are_refused_with_the_path_and_archived_as_failed(
    owner_client, body, path
):
    response = post(owner_client, body)
    assert response.status_code == 400
    answer = response.json()
    assert list(answer["errors"]) == [path]
    batch = IngestBatch.objects.get()
    assert str(batch.public_id) == answer["batch_id"]
    assert batch.status == BatchStatus.FAILED and batch.error
    assert nothing_stored()


def refused(client, mutate) -> dict:
    reports = fixture_reports()
    path = mutate(reports)
    response = post(client, envelope(reports))
    assert response.status_code == 400, response.json()
    assert list(response.json()["errors"]) == [path]
    assert nothing_stored()
    assert IngestBatch.objects.get().status == BatchStatus.FAILED
    return response.json()


def test_wrong_types_deep_in_a_report_are_refused_and_nothing_is_stored(fixtures_dir, owner_client):
    def mutate(reports):
        reports["claude_session"]["sessions"][3]["totalCost"] = "2.50"
        return "reports.claude_session.sessions[3].totalCost"

    answer = refused(owner_client, mutate)
    assert answer["errors"]["reports.claude_session.sessions[3].totalCost"] == [
        "expected a number, got a string"
    ]


def test_negative_tokens_are_refused_and_nothing_is_stored(fixtures_dir, owner_client):
    def mutate(reports):
        day = reports["claude_daily_instances"]["projects"][INFRA][1]
        day["modelBreakdowns"][0]["outputTokens"] = -10
        return (
            f'reports.claude_daily_instances.projects["{INFRA}"][1].modelBreakdowns[0].outputTokens'
        )

    refused(owner_client, mutate)


def test_days_far_in_the_future_are_refused_and_nothing_is_stored(fixtures_dir, owner_client):
    future = (timezone.now() + timedelta(days=30)).date().isoformat()

    def mutate(reports):
        reports["daily_by_agent"]["daily"][-1]["period"] = future
        last = len(reports["daily_by_agent"]["daily"]) - 1
        return f"reports.daily_by_agent.daily[{last}].period"

    refused(owner_client, mutate)


def test_a_machine_uuid_of_another_user_is_refused_and_nothing_is_stored(
    fixtures_dir, owner, member
):
    body = envelope({}, name="members-pc")
    post(api_client(token_for(member)), body)
    theirs = Machine.objects.get()
    before = (theirs.name, theirs.last_seen_at, theirs.owner_id)

    body["reports"] = fixture_reports()
    body["machine"]["name"] = "hijack"
    response = post(api_client(token_for(owner)), body)
    assert response.status_code == 409
    answer = response.json()
    assert "registered to another user" in answer["detail"]
    assert answer["errors"] == {"machine.uuid": ["registered to another user"]}
    theirs.refresh_from_db()
    assert (theirs.name, theirs.last_seen_at, theirs.owner_id) == before
    assert not DailyUsage.objects.exists() and not Project.objects.exists()
    assert IngestBatch.objects.filter(user=owner).get().status == BatchStatus.FAILED


def test_a_user_without_a_team_is_told_so_and_nothing_is_stored(fixtures_dir, team_a):
    # Allow-listed (so the token works) but not yet a member of any team.
    loner = User.objects.create_user("loner@example.com")
    AllowedEmail.objects.create(pattern=loner.email, team=team_a)
    response = post(api_client(token_for(loner)), envelope(fixture_reports()))
    assert response.status_code == 403
    assert "no team" in response.json()["detail"]
    assert not IngestBatch.objects.exists() and nothing_stored()


def test_ten_thousand_projects_are_stored_in_bulk(owner_client, django_assert_max_num_queries):
    projects = {
        f"-home-dev-src-repo{i:05d}": [
            {
                "date": "2026-11-20",
                "modelBreakdowns": [
                    {
                        "modelName": "claude-sonnet-4-5-20250929",
                        "inputTokens": i,
                        "outputTokens": 2 * i,
                        "cacheCreationTokens": 3,
                        "cacheReadTokens": 4,
                        "cost": 0.001,
                    }
                ],
            }
        ]
        for i in range(10_000)
    }
    body = envelope({"claude_daily_instances": {"projects": projects, "totals": {}}})
    with django_assert_max_num_queries(600):
        response = post(owner_client, body)
    assert response.status_code == 201, response.json()
    assert response.json()["counts"]["claude_daily_instances"]["created"] == 10_000
    assert Project.objects.count() == 10_000
    tokens, cost = sums(DailyUsage.objects.all())
    assert tokens == sum(3 * i + 7 for i in range(10_000))
    assert cents(cost) == Decimal("10.00")
    # The same machine again: every row compared in bulk, none rewritten.
    body["machine"]["os"] = "again"
    # SQLite caps a statement's parameters, so its upserts come in batches of ~60 rows: about
    # 170 statements here (PostgreSQL: 20).
    with django_assert_max_num_queries(230):
        again = post(owner_client, body)
    assert again.json()["counts"]["claude_daily_instances"]["unchanged"] == 10_000


# --- who may send --------------------------------------------------------------------------------
def test_a_missing_or_bad_token_is_401(owner):
    assert post(api_client(), envelope({})).status_code == 401
    bad = api_client("cct_" + "x" * 43)
    assert post(bad, envelope({})).status_code == 401
    malformed = api_client("not-a-token")
    assert post(malformed, envelope({})).status_code == 401
    assert nothing_stored() and not IngestBatch.objects.exists()


def test_a_read_only_token_may_not_ingest(owner):
    response = post(api_client(token_for(owner, scopes=("read",))), envelope({}))
    assert response.status_code == 403
    assert "ingest" in response.json()["detail"]
    assert not IngestBatch.objects.exists()


def test_a_browser_session_may_not_ingest(owner, client):
    client.force_login(owner)
    response = client.post(
        "/api/v1/ingest/", data=encode(envelope({})), content_type="application/json"
    )
    assert response.status_code == 401
    assert not IngestBatch.objects.exists()


def test_ingest_only_accepts_post(owner_client):
    assert owner_client.get("/api/v1/ingest/").status_code == 405


def test_too_many_requests_get_429_with_retry_after(owner, monkeypatch):
    monkeypatch.setattr(IngestThrottle, "THROTTLE_RATES", {"ingest": "2/minute"})
    client = api_client(token_for(owner))
    statuses = [post(client, envelope({})).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    response = post(client, envelope({}))
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "detail" in response.json()
    # Another token of the same user has its own allowance.
    assert post(api_client(token_for(owner)), envelope({})).status_code == 201


def test_a_removed_member_can_no_longer_send(owner, member):
    client = api_client(token_for(member))
    Membership.objects.filter(user=member).delete()
    assert post(client, envelope({})).status_code == 403
    assert not IngestBatch.objects.exists()


def test_the_response_tells_the_team_timezone(team_a, owner_client):
    team_a.timezone = "Europe/Paris"
    team_a.save()
    assert post(owner_client, envelope({})).json()["timezone"] == "Europe/Paris"


def test_a_statusline_capture_becomes_a_rate_limit_snapshot(owner, owner_client):
    capture = {
        "captured_at": "2026-11-24T23:40:00Z",
        "session_id": ACTIVE_SESSION,
        "model": {"id": "claude-opus-4-5-20251101"},
        "rate_limits": {
            "five_hour": {"used_percentage": 42.5, "resets_at": "2026-11-25T02:00:00Z"},
            "seven_day": {"used_percentage": 61, "resets_at": 1795996800},
        },
    }
    response = post(owner_client, envelope({"statusline": [capture]}))
    assert response.json()["counts"]["statusline"] == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "removed": 0,
        "kept": 0,
    }
    snapshot = RateLimitSnapshot.objects.get()
    assert snapshot.subscription == Subscription.default_for(owner)
    assert snapshot.five_hour_used_pct == Decimal("42.50")
    assert json.loads(json.dumps(str(snapshot.seven_day_used_pct))) == "61.00"


@pytest.mark.parametrize("role", ["owner", "admin", "member", "outsider"])
def test_every_role_sends_for_its_own_machines_into_its_own_team(cast, role):
    user = cast[role]
    body = envelope({}, name=f"{role}-pc")
    assert post(api_client(token_for(user, scopes=("ingest",))), body).status_code == 201
    machine = Machine.objects.get(uuid=body["machine"]["uuid"])
    assert (machine.owner, machine.team) == (user, user.team)


def test_a_sync_of_a_known_machine_reads_each_thing_once(owner_client):
    """The round trips of a routine sync: the earlier batches with this body (a retry, or a
    refused body sent again) are one lookup, the machine's subscription comes with the
    machine's lock, and an unchanged machine name needs no look at the owner's others."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    body = envelope(fixture_reports())
    assert post(owner_client, body).status_code == 201
    body["machine"]["agent_version"] = "0.1.1"  # a new body, the same machine and name

    with CaptureQueriesContext(connection) as queries:
        again = post(owner_client, body)

    assert again.status_code == 201, again.json()
    assert again.json()["machine"]["subscription"]
    sqls = [q["sql"] for q in queries.captured_queries]
    by_body = [s for s in sqls if s.startswith("SELECT") and '"sha256" =' in s]
    assert len(by_body) == 1, by_body
    assert not [s for s in sqls if 'FROM "usage_subscription"' in s]
    assert not [s for s in sqls if s.startswith('SELECT "usage_machine"."name"')]
    machine_reads = [s for s in sqls if s.startswith("SELECT") and 'FROM "usage_machine"' in s]
    assert len(machine_reads) == 1, machine_reads


def test_a_nul_in_a_refused_key_is_a_400_and_the_batch_records_why(fixtures_dir, owner_client):
    """The parser quotes the refused key in its reason; a NUL there must not make the record
    of the refusal fail (PostgreSQL text holds no NUL): a 400, and the batch ends failed."""
    body = envelope(fixture_reports())
    body["projects"] = {"-home-dev-q\u0000": {"cwd": "/home/dev/q"}}
    response = post(owner_client, body)
    assert response.status_code == 400, response.content
    assert "NUL" in response.content.decode()
    batch = IngestBatch.objects.get()
    assert batch.status == BatchStatus.FAILED
    assert "\\u0000" in batch.error and "\x00" not in batch.error
