"""GET /api/v1/data-quality/: the findings of the machines a viewer may see, never others'."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.conftest import api_client, token_for
from tests.factories import MachineFactory, daily, session
from usage.models import Machine, ModelPrice, SharedRequest

pytestmark = pytest.mark.django_db

URL = "/api/v1/data-quality/"
NOW = datetime(2026, 11, 24, 18, tzinfo=UTC)


@pytest.fixture
def findings(cast):
    """The member's laptop lost two days and shares a session with their desktop (a copy of
    its folder); the admin's box holds a request the member's laptop reported first."""
    laptop = MachineFactory(
        owner=cast["member"], name="laptop", lost_history_days=["2026-10-20", "2026-10-21"]
    )
    desktop = MachineFactory(owner=cast["member"], name="desktop", copied_from=laptop)
    session(laptop, "shared-session", last_activity=NOW, cost="0.75")
    session(desktop, "shared-session", last_activity=NOW, cost="0.50")
    box = MachineFactory(owner=cast["admin"], name="admin-box")
    SharedRequest.objects.create(machine=box, owner=laptop, key=42, hour=NOW)
    daily(box, NOW.date(), cost="0", model="model-nobody-priced")
    outsider = MachineFactory(
        owner=cast["outsider"], name="outsider-box", lost_history_days=["2026-11-01"]
    )
    return {"laptop": laptop, "desktop": desktop, "box": box, "outsider": outsider}


def get(user, **params):
    return api_client(token_for(user, scopes=("read",))).get(URL, params)


def by_name(body) -> dict:
    return {row["machine"]["name"]: row for row in body["machines"]}


def test_a_member_sees_their_own_machines_findings(findings, member):
    response = get(member)
    assert response.status_code == 200, response.content
    rows = by_name(response.json())
    assert set(rows) == {"laptop", "desktop"}
    assert rows["laptop"]["lost_history_days"] == ["2026-10-20", "2026-10-21"]
    assert rows["desktop"]["copied_from"]["name"] == "laptop"
    assert rows["laptop"]["duplicate_sessions"] == rows["desktop"]["duplicate_sessions"] == 1
    # The smaller copy is what is counted twice, charged once.
    assert sum(Decimal(r["double_counted_usd"]) for r in rows.values()) == Decimal("0.50")
    assert response.json()["advice"]["lost_history"]


def test_an_admin_sees_the_whole_team_and_names_only_visible_machines(findings, admin):
    rows = by_name(get(admin, scope="team").json())
    assert set(rows) == {"laptop", "desktop", "admin-box"}
    assert rows["admin-box"]["shared_requests"] == 1
    assert rows["admin-box"]["shared_with"] == ["laptop"]
    assert rows["admin-box"]["unpriced_models"] == ["model-nobody-priced"]
    assert rows["laptop"]["unpriced_models"] == []
    models = {m["model"]: m for m in get(admin, scope="team").json()["unpriced_models"]}
    assert models["model-nobody-priced"]["priced_by_server"] is False


def test_a_member_may_not_read_the_teams_machines_one_by_one(findings, member):
    response = get(member, scope="team")
    assert response.status_code == 403
    assert "admins" in response.json()["detail"]


def test_an_outsider_sees_only_their_own_team(findings, outsider):
    rows = by_name(get(outsider, scope="team").json())
    assert set(rows) == {"outsider-box"}


def test_a_member_never_learns_the_name_of_a_machine_they_may_not_see(findings, member, admin):
    # The admin's box holds the member's laptop's request: the admin sees whose; the member,
    # who cannot see the admin's box, sees nothing of it.
    assert "admin-box" not in by_name(get(member).json())
    SharedRequest.objects.create(
        machine=findings["laptop"], owner=findings["box"], key=43, hour=NOW
    )
    assert by_name(get(member).json())["laptop"]["shared_with"] == ["another machine"]


def test_bad_parameters_and_tokens_are_refused(findings, member):
    assert get(member, scope="everyone").status_code == 400
    assert api_client("cct_" + "x" * 40).get(URL).status_code == 401
    no_read = api_client(token_for(member, scopes=("ingest",))).get(URL)
    assert no_read.status_code == 403
    assert Machine.objects.count() == 4


def test_a_model_the_operator_priced_is_no_longer_a_finding(findings, admin):
    ModelPrice.objects.create(
        model="model-nobody-priced",
        input_usd_per_mtok=Decimal("1"),
        output_usd_per_mtok=Decimal("1"),
        cache_creation_usd_per_mtok=Decimal("1"),
        cache_read_usd_per_mtok=Decimal("1"),
    )
    rows = by_name(get(admin, scope="team").json())
    assert "model-nobody-priced" not in rows["admin-box"]["unpriced_models"]
