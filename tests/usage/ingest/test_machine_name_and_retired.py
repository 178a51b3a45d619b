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


def test_two_pcs_set_up_with_one_name_are_told_apart_and_keep_their_names(owner):
    client = api_client(token_for(owner))
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for machine_uuid, name in ((first, "pc-one"), (second, "pc-one"), (third, "PC-ONE")):
        answer = post(client, envelope({}, machine_uuid=machine_uuid, name=name))
        assert answer.status_code == 201
    names = {m.uuid: m.name for m in Machine.objects.filter(owner=owner)}
    assert names == {first: "pc-one", second: "pc-one (2)", third: "PC-ONE (3)"}
    # Their next syncs keep the names stable, and the agent's answer says the server's name.
    again = post(client, envelope({}, machine_uuid=second, name="pc-one"))
    assert again.json()["machine"]["name"] == "pc-one (2)"
    post(client, envelope({}, machine_uuid=first, name="pc-one"))
    assert {m.uuid: m.name for m in Machine.objects.filter(owner=owner)} == names
    # A new name from the agent still follows the agent.
    post(client, envelope({}, machine_uuid=second, name="desk"))
    assert Machine.objects.get(uuid=second).name == "desk"


def test_another_persons_machine_may_share_the_agents_name(owner, member):
    post(api_client(token_for(owner)), envelope({}, name="laptop"))
    post(api_client(token_for(member)), envelope({}, name="laptop"))
    assert list(Machine.objects.values_list("name", flat=True)) == ["laptop", "laptop"]


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
