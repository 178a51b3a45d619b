"""/api/v1/agent/plan/: the agent's `setup` asks for the plan of the caller's own Claude account
and sets it only while nobody has chosen one."""

import uuid

import pytest

from tests.conftest import api_client, login, token_for
from tests.factories import MachineFactory
from usage.models import Plan, Subscription

pytestmark = pytest.mark.django_db

URL = "/api/v1/agent/plan/"


@pytest.mark.parametrize("role", ["owner", "admin", "member", "outsider"])
def test_every_role_sets_the_plan_of_its_own_unknown_subscription(cast, role):
    user = cast[role]
    sub = Subscription.default_for(user)  # as the first sync creates it: plan unknown
    client = api_client(token_for(user, scopes=("ingest",)))
    before = client.get(URL).json()
    assert before["plan"] == "unknown" and before["chosen"] is False
    assert [c["plan"] for c in before["choices"]] == ["pro", "max5x", "max20x", "team", "api"]
    response = client.post(URL, {"plan": "max20x"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["plan"] == "max20x" and response.json()["plan_label"] == "Max 20x"
    sub.refresh_from_db()
    assert sub.plan == Plan.MAX20X
    # Nobody else's subscription changed.
    others = Subscription.objects.exclude(owner=user)
    assert set(others.values_list("plan", flat=True)) <= {Plan.UNKNOWN}


def test_a_chosen_plan_is_never_overwritten(member):
    sub = Subscription.default_for(member)
    Subscription.objects.filter(pk=sub.pk).update(plan=Plan.PRO)
    client = api_client(token_for(member))
    assert client.get(URL).json()["chosen"] is True
    response = client.post(URL, {"plan": "max5x"}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert "Pro" in body["errors"]["plan"][0] and "subscriptions page" in body["errors"]["plan"][0]
    sub.refresh_from_db()
    assert sub.plan == Plan.PRO
    # The same answer again (a retried request) is fine and changes nothing.
    assert client.post(URL, {"plan": "pro"}, format="json").status_code == 200


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"plan": "unknown"}, "plan"),
        ({"plan": "custom"}, "plan"),  # a custom price is set on the web page
        ({"plan": "gold"}, "plan"),
        ({}, "plan"),
        ({"plan": "pro", "machine": "not-a-uuid"}, "machine"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(member, payload, field):
    sub = Subscription.default_for(member)
    response = api_client(token_for(member)).post(URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    sub.refresh_from_db()
    assert sub.plan == Plan.UNKNOWN


def test_the_machine_picks_its_own_subscription(member):
    default = Subscription.default_for(member)
    other = Subscription.objects.create(owner=member, label="Work account")
    machine = MachineFactory(owner=member, subscription=other)
    client = api_client(token_for(member))
    answer = client.post(URL, {"plan": "team", "machine": str(machine.uuid)}, format="json")
    assert answer.status_code == 200 and answer.json()["subscription_label"] == "Work account"
    other.refresh_from_db()
    default.refresh_from_db()
    assert (other.plan, default.plan) == (Plan.TEAM, Plan.UNKNOWN)
    assert client.get(URL, {"machine": str(machine.uuid)}).json()["plan"] == "team"


@pytest.mark.parametrize("role", ["owner", "admin", "outsider"])
def test_nobody_sets_another_members_plan_through_their_machine(cast, member, role):
    machine = MachineFactory(owner=member)
    client = api_client(token_for(cast[role]))
    answer = client.post(URL, {"plan": "pro", "machine": str(machine.uuid)}, format="json")
    assert answer.status_code == 404
    assert client.get(URL, {"machine": str(machine.uuid)}).status_code == 404
    machine.subscription.refresh_from_db()
    assert machine.subscription.plan == Plan.UNKNOWN
    unknown = api_client(token_for(member)).get(URL, {"machine": str(uuid.uuid4())})
    assert unknown.status_code == 404


def test_before_the_first_sync_the_default_subscription_is_made(member):
    assert api_client(token_for(member)).get(URL).json()["subscription"] is None
    assert not Subscription.objects.filter(owner=member).exists()  # a GET writes nothing
    answer = api_client(token_for(member)).post(URL, {"plan": "api"}, format="json")
    assert answer.status_code == 200
    sub = Subscription.objects.get(owner=member)
    assert (sub.is_default, sub.plan) == (True, Plan.API)


def test_a_token_needs_the_ingest_scope_and_anonymous_callers_are_refused(member):
    Subscription.default_for(member)
    read_only = api_client(token_for(member, scopes=("read",)))
    assert read_only.post(URL, {"plan": "pro"}, format="json").status_code == 403
    assert api_client().get(URL).status_code == 401
    assert api_client().post(URL, {"plan": "pro"}, format="json").status_code == 401
    assert Subscription.objects.get(owner=member).plan == Plan.UNKNOWN


def test_a_logged_in_browser_sees_its_own_plan(member):
    Subscription.default_for(member)
    assert login(member).get(URL).json()["plan"] == "unknown"
