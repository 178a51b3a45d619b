"""Machine identity is the agent's UUID plus a fingerprint of where it runs: a copied agent
folder becomes a second machine, never a merge."""

import uuid

import pytest
from django.db.models import Sum

from tests.conftest import api_client, token_for
from tests.usage.ingest.helpers import daily_report, envelope, post
from usage.models import DailyUsage, Machine

pytestmark = pytest.mark.django_db

PC1 = "a" * 64
PC2 = "b" * 64


def sent_from(body: dict, fingerprint: str, os_user: str = "dev") -> dict:
    body["machine"].update(fingerprint=fingerprint, os_user=os_user)
    return body


def test_the_same_uuid_from_another_place_is_a_second_machine_with_its_own_usage(owner):
    client = api_client(token_for(owner))
    machine_uuid = uuid.uuid4()
    on_pc1 = envelope(
        daily_report("-home-dev-webapp", "2026-11-24", 100, 1000), machine_uuid=machine_uuid
    )
    on_pc2 = envelope(
        daily_report("-home-dev-api", "2026-11-24", 100, 2000), machine_uuid=machine_uuid
    )
    first = post(client, sent_from(on_pc1, PC1))
    second = post(client, sent_from(on_pc2, PC2, os_user="other"))

    assert first.status_code == second.status_code == 201
    original = Machine.objects.get(uuid=machine_uuid)
    copy = Machine.objects.exclude(pk=original.pk).get()
    assert second.json()["machine"]["uuid"] == str(copy.uuid)
    assert second.json()["machine"]["copied_from"] == str(machine_uuid)
    assert first.json()["machine"]["copied_from"] is None
    assert (copy.copied_from, copy.fingerprint, copy.os_user) == (original, PC2, "other")
    assert DailyUsage.objects.aggregate(t=Sum("total_tokens"))["t"] == 3200
    assert DailyUsage.objects.get(machine=copy).total_tokens == 2100


def test_a_copy_keeps_sending_the_old_uuid_until_it_adopts_the_new_one_and_stays_one_machine(
    owner,
):
    client = api_client(token_for(owner))
    machine_uuid = uuid.uuid4()
    post(client, sent_from(envelope({}, machine_uuid=machine_uuid), PC1))
    body = sent_from(envelope({}, machine_uuid=machine_uuid), PC2)
    new_uuid = post(client, body).json()["machine"]["uuid"]
    body["reports"] = daily_report("-home-dev-api", "2026-11-24", 1, 1)
    assert post(client, body).json()["machine"]["uuid"] == new_uuid
    adopted = sent_from(envelope({}, machine_uuid=new_uuid), PC2)
    assert post(client, adopted).json()["machine"]["uuid"] == new_uuid
    assert Machine.objects.count() == 2


def test_a_machine_registered_without_a_fingerprint_takes_the_first_one_it_is_sent(owner):
    client = api_client(token_for(owner))
    machine_uuid = uuid.uuid4()
    post(client, envelope({}, machine_uuid=machine_uuid))
    post(client, sent_from(envelope({}, machine_uuid=machine_uuid), PC1))
    post(client, sent_from(envelope({}, machine_uuid=machine_uuid), PC1))
    assert Machine.objects.get().fingerprint == PC1


def test_a_folder_copied_into_another_members_home_becomes_their_machine(owner, member):
    machine_uuid = uuid.uuid4()
    post(api_client(token_for(owner)), sent_from(envelope({}, machine_uuid=machine_uuid), PC1))
    response = post(
        api_client(token_for(member)), sent_from(envelope({}, machine_uuid=machine_uuid), PC2)
    )
    assert response.status_code == 201
    copy = Machine.objects.get(owner=member)
    assert copy.copied_from.owner == owner


def test_another_users_uuid_from_the_same_place_is_still_refused(owner, member):
    machine_uuid = uuid.uuid4()
    post(api_client(token_for(owner)), sent_from(envelope({}, machine_uuid=machine_uuid), PC1))
    response = post(
        api_client(token_for(member)), sent_from(envelope({}, machine_uuid=machine_uuid), PC1)
    )
    assert response.status_code == 409
    assert Machine.objects.count() == 1


@pytest.mark.parametrize("value", ["abc", "g" * 64, 12])
def test_a_malformed_fingerprint_is_refused_with_its_path(owner, value):
    body = envelope({})
    body["machine"]["fingerprint"] = value
    response = post(api_client(token_for(owner)), body)
    assert response.status_code == 400
    assert "machine.fingerprint" in response.json()["errors"]
    assert not Machine.objects.exists()
