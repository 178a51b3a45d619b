"""GET /api/v1/usage/ by day, week or month: every period of the range, zeros included."""

from datetime import date
from decimal import Decimal

import pytest

from tests.conftest import api_client, token_for
from tests.factories import MachineFactory, daily

pytestmark = pytest.mark.django_db

USAGE = "/api/v1/usage/"


@pytest.fixture
def machine(member):
    machine = MachineFactory(owner=member, name="gappy")
    for day in (date(2026, 11, 5), date(2026, 11, 8), date(2026, 11, 16)):
        daily(machine, day, cost="2.00")
    return machine


def test_days_without_usage_are_zero_rows(machine, member):
    body = (
        api_client(token_for(member))
        .get(USAGE, {"group_by": "day", "since": "2026-11-04", "until": "2026-11-17"})
        .json()
    )
    # Nov 4..17 inclusive: 14 days, three of them with $2.
    assert len(body["results"]) == 14
    assert body["results"][0]["key"] == "2026-11-04"
    assert body["results"][-1]["key"] == "2026-11-17"
    nine = next(r for r in body["results"] if r["key"] == "2026-11-09")
    assert Decimal(nine["cost_usd"]) == 0 and nine["total_tokens"] == 0
    assert nine["label"] == "2026-11-09"
    assert Decimal(body["totals"]["cost_usd"]) == Decimal("6")


def test_any_time_starts_at_the_first_day_with_usage(machine, member):
    body = api_client(token_for(member)).get(USAGE, {"group_by": "day"}).json()
    keys = [r["key"] for r in body["results"]]
    # Nov 5..16: 12 days, from the first day with data to the last.
    assert (keys[0], keys[-1], len(keys)) == ("2026-11-05", "2026-11-16", 12)
    weeks = api_client(token_for(member)).get(USAGE, {"group_by": "week"}).json()
    assert [(r["key"], r["label"]) for r in weeks["results"]] == [
        ("2026-11-02", "2026-W45"),
        ("2026-11-09", "2026-W46"),
        ("2026-11-16", "2026-W47"),
    ]
    assert Decimal(weeks["results"][1]["cost_usd"]) == 0


def test_other_groupings_list_only_keys_with_usage(machine, member):
    body = (
        api_client(token_for(member))
        .get(USAGE, {"group_by": "source", "since": "2026-11-01", "until": "2026-11-30"})
        .json()
    )
    assert len(body["results"]) == 1


def test_nothing_to_fill_without_usage_and_an_open_range(member):
    body = api_client(token_for(member)).get(USAGE, {"group_by": "day"}).json()
    assert body["results"] == []


def test_the_schema_says_so():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "a row of zeros" in schema["paths"][USAGE]["get"]["description"]
