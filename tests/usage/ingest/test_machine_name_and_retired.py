"""A name a person gave a machine outlives its agent's syncs; a retired machine's reports are
refused with the reason until its owner restores it."""

import uuid

import pytest
from django.utils import timezone

from tests.conftest import api_client, login, token_for
from tests.usage.ingest.helpers import daily_report, envelope, post
from usage.models import DailyUsage, IngestBatch, Machine

pytestmark = pytest.mark.django_db


def test_a_name_set_on_the_machines_page_survives_the_next_sync(owner):
    client = api_client(token_for(owner))
    machine_uuid = uuid.uuid4()
    post(client, envelope({}, machine_uuid=machine_uuid, name="laptop"))
    login(owner).post(f"/machines/{machine_uuid}/rename/", {"name": "work laptop"})

    again = daily_report("-home-dev-webapp", "2026-11-24", 100, 1000)
    answer = post(client, envelope(again, machine_uuid=machine_uuid, name="laptop"))

    assert answer.status_code == 201
    assert Machine.objects.get(uuid=machine_uuid).name == "work laptop"
    assert answer.json()["machine"]["name"] == "work laptop"


def test_a_name_nobody_set_follows_the_agent(owner):
    client = api_client(token_for(owner))
    machine_uuid = uuid.uuid4()
    post(client, envelope({}, machine_uuid=machine_uuid, name="laptop"))
    post(client, envelope({}, machine_uuid=machine_uuid, name="desktop"))

    assert Machine.objects.get(uuid=machine_uuid).name == "desktop"


def test_a_retired_machines_report_is_refused_with_the_reason_and_stores_nothing(owner):
    client = api_client(token_for(owner))
    machine_uuid = uuid.uuid4()
    post(client, envelope({}, machine_uuid=machine_uuid))
    Machine.objects.filter(uuid=machine_uuid).update(retired_at=timezone.now())

    body = envelope(
        daily_report("-home-dev-webapp", "2026-11-24", 100, 1000), machine_uuid=machine_uuid
    )
    answer = post(client, body)

    assert answer.status_code == 409
    assert answer.json()["errors"] == {"machine.uuid": ["retired"]}
    assert "restore it on the machines page" in answer.json()["detail"]
    assert not DailyUsage.objects.exists()
    # Archived all the same: a replay after the restore can store it.
    assert IngestBatch.objects.filter(public_id=answer.json()["batch_id"]).exists()


def test_a_restored_machine_syncs_again(owner):
    client = api_client(token_for(owner))
    machine_uuid = uuid.uuid4()
    post(client, envelope({}, machine_uuid=machine_uuid))
    Machine.objects.filter(uuid=machine_uuid).update(retired_at=timezone.now())
    login(owner).post(f"/machines/{machine_uuid}/retire/", {"action": "restore"})

    body = envelope(
        daily_report("-home-dev-webapp", "2026-11-24", 100, 1000), machine_uuid=machine_uuid
    )
    assert post(client, body).status_code == 201
    assert DailyUsage.objects.get().total_tokens == 1100
