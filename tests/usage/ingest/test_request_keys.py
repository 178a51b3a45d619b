"""Request keys: the first machine of a team to report a request owns it; the others are told,
so their agents leave it out and the team counts it once, as ccusage would."""

import uuid

import pytest

from tests.conftest import api_client, token_for
from tests.usage.ingest.helpers import envelope, post
from usage.ingest.pipeline import process_batch
from usage.models import IngestBatch, RequestKey, SharedRequest

pytestmark = pytest.mark.django_db

HOUR = "2026-11-24T09:00:00Z"
A, B, C = "0123456789abcdef", "fedcba9876543210", "00000000000000ff"


def keys_body(machine_uuid, *keys: str, hour: str = HOUR) -> dict:
    return envelope({"request_keys": {"hours": {hour: list(keys)}}}, machine_uuid=machine_uuid)


def test_the_first_machine_owns_a_request_and_the_second_is_told_to_leave_it_out(owner):
    client = api_client(token_for(owner))
    laptop, desktop = uuid.uuid4(), uuid.uuid4()

    first = post(client, keys_body(laptop, A, B))
    second = post(client, keys_body(desktop, A, B, C))

    assert first.json()["foreign_request_keys"] == []
    assert first.json()["counts"]["request_keys"]["created"] == 2
    assert second.json()["foreign_request_keys"] == sorted([A, B])
    counts = second.json()["counts"]["request_keys"]
    assert (counts["created"], counts["updated"], counts["unchanged"]) == (1, 2, 0)
    assert RequestKey.objects.count() == 3
    assert set(SharedRequest.objects.values_list("machine__uuid", "owner__uuid")) == {
        (desktop, laptop)
    }


def test_the_owner_reporting_its_keys_again_is_never_told_they_are_foreign(owner):
    client = api_client(token_for(owner))
    laptop = uuid.uuid4()
    post(client, keys_body(laptop, A))
    again = post(client, keys_body(laptop, A, B))
    assert again.json()["foreign_request_keys"] == []
    assert again.json()["counts"]["request_keys"]["unchanged"] == 1


def test_a_retried_keys_report_is_answered_with_the_foreign_keys_again(owner):
    client = api_client(token_for(owner))
    post(client, keys_body(uuid.uuid4(), A))
    body = keys_body(uuid.uuid4(), A, B)
    assert post(client, body).json()["foreign_request_keys"] == [A]

    retry = post(client, body)

    assert retry.json()["duplicate"] is True
    assert retry.json()["foreign_request_keys"] == [A]
    assert IngestBatch.objects.count() == 2


def test_another_teams_machine_never_owns_this_teams_requests(owner, outsider):
    post(api_client(token_for(outsider)), keys_body(uuid.uuid4(), A))
    answer = post(api_client(token_for(owner)), keys_body(uuid.uuid4(), A)).json()
    assert answer["foreign_request_keys"] == []
    assert RequestKey.objects.count() == 2


@pytest.mark.parametrize(
    ("hours", "path"),
    [
        ({HOUR: ["0123"]}, f"reports.request_keys.hours.{HOUR}[0]"),
        ({HOUR: ["0123456789ABCDEF"]}, f"reports.request_keys.hours.{HOUR}[0]"),
        ({HOUR: [12]}, f"reports.request_keys.hours.{HOUR}[0]"),
        ({"2026-11-24T09:30:00Z": [A]}, "reports.request_keys.hours.2026-11-24T09:30:00Z"),
        ({HOUR: A}, f"reports.request_keys.hours.{HOUR}"),
    ],
)
def test_malformed_request_keys_are_refused_with_their_path_and_store_nothing(owner, hours, path):
    body = envelope({"request_keys": {"hours": hours}})
    response = post(api_client(token_for(owner)), body)
    assert response.status_code == 400
    assert path in response.json()["errors"]
    assert not RequestKey.objects.exists()


def test_a_replayed_batch_counts_the_keys_it_claimed_as_created_again(owner):
    client = api_client(token_for(owner))
    laptop = uuid.uuid4()
    post(client, keys_body(uuid.uuid4(), A))  # another machine owns A
    answer = post(client, keys_body(laptop, A, B, C)).json()
    batch = IngestBatch.objects.get(public_id=answer["batch_id"])

    replayed = process_batch(batch, live=False)

    assert replayed.counts["request_keys"] == answer["counts"]["request_keys"]
    assert (answer["counts"]["request_keys"]["created"], replayed.foreign_request_keys) == (
        2,
        [A],
    )


def test_thousands_of_keys_are_claimed_and_told_apart_in_one_report(owner):
    client = api_client(token_for(owner))
    first = [f"{n:016x}" for n in range(0, 3000)]
    second = [f"{n:016x}" for n in range(2000, 4500)]
    post(client, keys_body(uuid.uuid4(), *first))

    answer = post(client, keys_body(uuid.uuid4(), *second)).json()

    counts = answer["counts"]["request_keys"]
    assert (counts["created"], counts["updated"], counts["unchanged"]) == (1500, 1000, 0)
    assert answer["foreign_request_keys"] == second[:1000]
    assert RequestKey.objects.count() == 4500
    assert SharedRequest.objects.count() == 1000
