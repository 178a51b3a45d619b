"""Two requests for one machine at the same moment end with one consistent set of rows."""

import copy
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.db.models import Sum

from tests.conftest import api_client, token_for
from tests.usage.ingest.helpers import (
    OUTPUT,
    WEBAPP,
    envelope,
    expected_totals,
    fixture_reports,
    post,
)
from usage.models import BatchStatus, DailyUsage, IngestBatch, Machine, Project


def webapp_output(reports) -> int:
    day = reports["claude_daily_instances"]["projects"][WEBAPP][-1]
    return day["modelBreakdowns"][0]["outputTokens"]


def newest_webapp_row(body: dict) -> tuple[str, str]:
    """(day, model) of the webapp row the two racing reports disagree on."""
    day = body["reports"]["claude_daily_instances"]["projects"][WEBAPP][-1]
    return day["date"], day["modelBreakdowns"][0]["modelName"]


def need_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite runs one write transaction at a time, so requests cannot race there; "
            "set DATABASE_URL to a PostgreSQL database to run this test"
        )


def race(token: str, bodies: list[dict]) -> list[int]:
    barrier = threading.Barrier(len(bodies))

    def send(body):
        try:
            barrier.wait(timeout=30)
            return post(api_client(token), body).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


@pytest.mark.django_db(transaction=True)
def test_two_requests_for_a_new_machine_at_once_register_it_once(fixtures_dir, owner):
    need_postgresql()
    token = token_for(owner)
    for _round in range(3):
        machine = envelope({})["machine"]
        reports = fixture_reports()
        smaller = copy.deepcopy(reports)
        smaller["claude_daily_instances"]["projects"][WEBAPP][-1]["modelBreakdowns"][0][
            "outputTokens"
        ] -= 500
        statuses = race(
            token,
            [{**envelope(reports), "machine": machine}, {**envelope(smaller), "machine": machine}],
        )
        assert statuses == [201, 201]
        assert Machine.objects.filter(uuid=machine["uuid"]).count() == 1
        batches = list(
            IngestBatch.objects.filter(machine__uuid=machine["uuid"]).order_by("received_at", "id")
        )
        assert [b.status for b in batches] == [BatchStatus.PROCESSED] * 2
        # The report received last wins every row it shares with the other one. Equal rows
        # are not rewritten, so they keep the batch that stored them first; the one row the
        # two reports disagree on holds the newest report's value (the totals below).
        facts = DailyUsage.objects.filter(machine__uuid=machine["uuid"])
        assert set(facts.values_list("batch_id", flat=True)) <= {b.pk for b in batches}
        newest = json.loads(batches[-1].body())
        day, model = newest_webapp_row(newest)
        webapp_day = facts.get(project__key=WEBAPP, day=day, model=model)
        assert webapp_day.output_tokens == webapp_output(newest["reports"])
        expected = expected_totals(OUTPUT)["total_tokens"] - (
            webapp_output(reports) - webapp_output(newest["reports"])
        )
        assert facts.aggregate(total=Sum("total_tokens"))["total"] == expected
    # Projects are shared by the team: created once, whatever raced.
    assert Project.objects.filter(key=WEBAPP).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_machines_of_a_team_creating_the_same_projects_at_once_share_them(
    fixtures_dir, owner, member
):
    need_postgresql()
    bodies = [envelope(fixture_reports(), machine_uuid=uuid.uuid4()) for _ in range(2)]
    barrier = threading.Barrier(2)

    def send(pair):
        user, body = pair
        try:
            barrier.wait(timeout=30)
            return post(api_client(token_for(user)), body).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(send, [(owner, bodies[0]), (member, bodies[1])]))
    assert statuses == [201, 201]
    assert Project.objects.filter(key=WEBAPP).count() == 1
    assert (
        DailyUsage.objects.aggregate(total=Sum("total_tokens"))["total"]
        == 2 * (expected_totals(OUTPUT)["total_tokens"])
    )
