"""A machine belongs to its owner's current team: a member who moves takes their machines."""

import uuid

import pytest

from accounts.models import AllowedEmail, Membership
from tests.conftest import api_client, login, token_for
from tests.usage.ingest.helpers import daily_report, envelope, post
from usage.models import DailyUsage, Machine

pytestmark = pytest.mark.django_db


def test_a_member_moved_to_another_team_takes_their_machines_along(admin, member, team_b):
    client = api_client(token_for(member))
    machine_uuid = uuid.uuid4()
    post(client, envelope({}, machine_uuid=machine_uuid))

    membership = Membership.objects.get(user=member)
    membership.team = team_b
    membership.save()

    assert Machine.objects.get(uuid=machine_uuid).team == team_b
    renamed = login(admin).post(f"/machines/{machine_uuid}/rename/", {"name": "taken"})
    assert renamed.status_code == 404


def test_new_usage_of_a_machine_left_in_the_old_team_counts_in_the_owners_team(member, team_b):
    client = api_client(token_for(member))
    machine_uuid = uuid.uuid4()
    post(client, envelope({}, machine_uuid=machine_uuid))
    # A move that bypasses the model's save (a bulk update) leaves the stored team stale.
    Membership.objects.filter(user=member).update(team=team_b)
    AllowedEmail.objects.filter(pattern=member.email).update(team=team_b)

    body = envelope(
        daily_report("-home-dev-webapp", "2026-11-24", 100, 1000), machine_uuid=machine_uuid
    )
    assert post(client, body).status_code == 201

    machine = Machine.objects.get(uuid=machine_uuid)
    assert machine.team == team_b
    assert DailyUsage.objects.get(machine=machine).project.team == team_b
    assert not DailyUsage.objects.filter(machine__team__slug="team-a").exists()
