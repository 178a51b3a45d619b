"""Ingest of the agent's `hour_first_activity`: stored on the hours it names, or a 400 naming
the field, with nothing stored."""

import pytest

from tests.usage.ingest.helpers import envelope, post
from usage.models import Block, HourlyUsage, Machine

pytestmark = pytest.mark.django_db


def hour_block(start: str, last: str) -> dict:
    """One bucket of `ccusage blocks --json --session-length 1`."""
    end = start[:11] + f"{int(start[11:13]) + 1:02d}" + start[13:]
    return {
        "id": start,
        "startTime": start,
        "endTime": end,
        "actualEndTime": last,
        "isActive": False,
        "isGap": False,
        "entries": 3,
        "tokenCounts": {
            "inputTokens": 1_000,
            "outputTokens": 200,
            "cacheCreationInputTokens": 0,
            "cacheReadInputTokens": 0,
        },
        "totalTokens": 1_200,
        "costUSD": 0.02,
        "models": ["claude-sonnet-4-5-20250929"],
        "burnRate": None,
        "projection": None,
    }


HOURLY = {
    "blocks": [
        hour_block("2026-11-20T11:00:00.000Z", "2026-11-20T11:58:00.000Z"),
        hour_block("2026-11-20T12:00:00.000Z", "2026-11-20T12:19:24.000Z"),
    ]
}


def test_first_entries_are_stored_on_their_hours_and_start_the_block(
    owner_client, django_capture_on_commit_callbacks
):
    firsts = {"hours": {"2026-11-20T11:00:00.000Z": "2026-11-20T11:35:00.000Z"}}
    body = envelope({"blocks_hourly": HOURLY, "hour_first_activity": firsts})
    with django_capture_on_commit_callbacks(execute=True):
        response = post(owner_client, body)
    assert response.status_code == 201, response.json()
    stored = dict(HourlyUsage.objects.values_list("hour__hour", "first_activity__minute"))
    assert stored == {11: 35, 12: None}
    assert "hour_first_activity" not in response.json().get("ignored_kinds", [])
    assert Block.objects.get().first_activity.minute == 35


@pytest.mark.parametrize(
    ("hours", "field"),
    [
        ({"2026-11-20T11:30:00.000Z": "2026-11-20T11:35:00.000Z"}, "2026-11-20T11:30:00.000Z"),
        ({"2026-11-20T11:00:00.000Z": "2026-11-20T10:59:59.999Z"}, "2026-11-20T11:00:00.000Z"),
        ({"2026-11-20T11:00:00.000Z": "2026-11-20T12:00:00.001Z"}, "2026-11-20T11:00:00.000Z"),
        ({"2026-11-20T11:00:00.000Z": "noon"}, "2026-11-20T11:00:00.000Z"),
        # Later than the hour's last activity (11:58) in blocks_hourly.
        ({"2026-11-20T11:00:00.000Z": "2026-11-20T11:59:00.000Z"}, "2026-11-20T11:00:00.000Z"),
        # An hour blocks_hourly does not have.
        ({"2026-11-20T13:00:00.000Z": "2026-11-20T13:05:00.000Z"}, "2026-11-20T13:00:00.000Z"),
    ],
)
def test_a_first_entry_that_contradicts_the_hours_is_refused_and_nothing_stored(
    owner_client, hours, field
):
    body = envelope({"blocks_hourly": HOURLY, "hour_first_activity": {"hours": hours}})
    response = post(owner_client, body)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [f"reports.hour_first_activity.hours.{field}"]
    assert not HourlyUsage.objects.exists() and not Machine.objects.exists()


def test_a_report_that_is_not_an_object_of_hours_is_refused(owner_client):
    body = envelope({"blocks_hourly": HOURLY, "hour_first_activity": {"hours": []}})
    response = post(owner_client, body)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["reports.hour_first_activity.hours"]
