"""GET /api/v1/usage/'s answer: built without DRF's per-field serializers, it must be the
serializer's representation exactly; team figures per member and machine, read from rollup
rows summed per id in SQL, must equal the raw facts with every source of a member added up."""

import json
from datetime import date
from decimal import Decimal

import pytest
from django.db.models import Sum

from tests.conftest import api_client, token_for
from tests.factories import MachineFactory, daily
from usage import queries, rollups
from usage.api.usage import UsageResponseSerializer, usage_response
from usage.figures import COST_PLACES
from usage.models import DailyUsage

pytestmark = pytest.mark.django_db

USAGE = "/api/v1/usage/"


@pytest.fixture
def mixed(owner, admin, member):
    """Three members' machines with Claude Code and Codex rows over two months."""
    for person, share in ((owner, "1.25"), (admin, "0.3333333333"), (member, "7")):
        first = MachineFactory(owner=person, name=f"{person.email.split('@')[0]}-one")
        second = MachineFactory(owner=person, name=f"{person.email.split('@')[0]}-two")
        for day in (date(2026, 10, 30), date(2026, 11, 2), date(2026, 11, 3)):
            daily(first, day, cost=share, source="claude-code", input_tokens=11, total_tokens=111)
            daily(first, day, cost="0.0000000001", source="codex", total_tokens=7)
            daily(second, day, cost=share, source="codex", output_tokens=5, total_tokens=55)
    return owner


@pytest.mark.parametrize("group_by", queries.GROUP_BY)
@pytest.mark.parametrize("period", [{}, {"since": "2026-11-01", "until": "2026-11-03"}])
def test_the_answer_is_the_serializers_representation_field_for_field(mixed, group_by, period):
    data = queries.aggregate_usage(mixed, group_by=group_by, scope="team", **period)
    assert data["results"]
    fast = usage_response(data)
    slow = UsageResponseSerializer(data).data
    # Equal values and the same key order, so the JSON is byte for byte the same.
    assert json.dumps(fast) == json.dumps(slow)


@pytest.mark.parametrize("group_by", ["member", "machine"])
@pytest.mark.parametrize(
    "period", [{}, {"since": "2026-11-01"}, {"since": "2026-10-31", "until": "2026-11-02"}]
)
def test_team_figures_per_member_and_machine_equal_the_facts(mixed, group_by, period):
    body = (
        api_client(token_for(mixed))
        .get(USAGE, {"scope": "team", "group_by": group_by, **period})
        .json()
    )
    facts = DailyUsage.objects.filter(machine__team=mixed.team_membership.team)
    if "since" in period:
        facts = facts.filter(day__gte=period["since"])
    if "until" in period:
        facts = facts.filter(day__lte=period["until"])
    key = "machine__owner__public_id" if group_by == "member" else "machine__uuid"
    expected = {
        str(row[key]): row
        for row in facts.values(key).annotate(
            cost=Sum("cost_usd"), tokens=Sum("total_tokens"), output=Sum("output_tokens")
        )
    }
    assert {row["key"] for row in body["results"]} == set(expected)
    for row in body["results"]:
        want = expected[row["key"]]
        assert Decimal(row["cost_usd"]) == want["cost"].quantize(Decimal("0.0000000001"))
        assert (row["total_tokens"], row["output_tokens"]) == (want["tokens"], want["output"])
        # Integers in the JSON, not strings or floats.
        assert isinstance(row["total_tokens"], int) and isinstance(row["cost_usd"], str)


def test_sums_per_id_add_up_the_rows_per_key(mixed):
    team = mixed.team_membership.team
    for dimension in (rollups.MEMBER, rollups.MACHINE):
        part = rollups.Slice(dimension, team_id=team.pk)
        for since, until in ((None, None), (date(2026, 11, 2), date(2026, 11, 3))):
            per_key: dict[int, dict] = {}
            for row in rollups.sums(part, since, until, by="key"):
                entry = per_key.setdefault(row["key_id"], {n: 0 for n in rollups.SUMS})
                for name in rollups.SUMS:
                    entry[name] += row[name]
            per_id = {
                row["key_id"]: {n: row[n] for n in rollups.SUMS}
                for row in rollups.sums(part, since, until, by="id")
            }
            # At the places figures are shown with (SQLite sums money as floats).
            for sums in (*per_id.values(), *per_key.values()):
                sums["cost_usd"] = sums["cost_usd"].quantize(COST_PLACES)
            assert per_id == per_key
            assert all(type(v["total_tokens"]) is int for v in per_id.values())
