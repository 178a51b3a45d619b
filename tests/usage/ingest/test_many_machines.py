"""Many machines, one truth: the usage API sums exactly what ccusage says on each machine."""

from decimal import Decimal

import pytest

from tests.conftest import api_client, token_for
from tests.usage.ingest.helpers import (
    ccusage_reports,
    cents,
    envelope,
    generate_home,
    need_ccusage,
    post,
)

pytestmark = pytest.mark.django_db


def ccusage_totals(reports: dict) -> tuple[int, Decimal]:
    """One machine's own totals as ccusage printed them: Claude per project, then other agents."""
    claude = reports["claude_daily_instances"]["totals"]
    tokens, cost = claude["totalTokens"], Decimal(repr(claude["totalCost"]))
    for row in reports["daily_by_agent"]["daily"]:
        for agent in row["agents"]:
            if agent["agent"] != "claude":
                tokens += agent["totalTokens"]
                cost += Decimal(repr(agent["totalCost"]))
    return tokens, cost


@pytest.fixture(scope="module")
def machines(tmp_path_factory, fixture_input_home):
    """Three machines' real ccusage reports: the fixture logs and two other seeds."""
    need_ccusage()
    tmp = tmp_path_factory.mktemp("machines")
    homes = {
        "laptop": fixture_input_home,
        "desktop": generate_home(tmp, seed=424242),
        "members-pc": generate_home(tmp, seed=777),
    }
    return {name: ccusage_reports(home) for name, home in homes.items()}


def send(user, name, reports) -> str:
    body = envelope(reports, name=name)
    response = post(api_client(token_for(user, scopes=("ingest",))), body)
    assert response.status_code == 201, response.json()
    return body["machine"]["uuid"]


def read(user, **params) -> dict:
    response = api_client(token_for(user, scopes=("read",))).get("/api/v1/usage/", params)
    assert response.status_code == 200, response.json()
    return response.json()


def figures(block) -> tuple[int, Decimal]:
    return block["total_tokens"], cents(block["cost_usd"])


def expect(*reports) -> tuple[int, Decimal]:
    tokens = sum(ccusage_totals(r)[0] for r in reports)
    cost = sum((ccusage_totals(r)[1] for r in reports), Decimal(0))
    return tokens, cents(cost)


def test_the_machines_really_differ(machines):
    totals = {name: ccusage_totals(reports) for name, reports in machines.items()}
    assert len({t[0] for t in totals.values()}) == 3


def test_two_machines_of_one_user_and_two_users_of_a_team_add_up_exactly(
    machines, owner, member, admin
):
    laptop = send(owner, "laptop", machines["laptop"])
    desktop = send(owner, "desktop", machines["desktop"])
    members_pc = send(member, "members-pc", machines["members-pc"])

    assert figures(read(owner)["totals"]) == expect(machines["laptop"], machines["desktop"])
    assert figures(read(member)["totals"]) == expect(machines["members-pc"])
    team = read(admin, scope="team", group_by="machine")
    assert figures(team["totals"]) == expect(*machines.values())
    by_machine = {row["key"]: figures(row) for row in team["results"]}
    assert by_machine == {
        laptop: expect(machines["laptop"]),
        desktop: expect(machines["desktop"]),
        members_pc: expect(machines["members-pc"]),
    }
    by_member = {
        row["key"]: figures(row) for row in read(admin, scope="team", group_by="member")["results"]
    }
    assert by_member == {
        str(owner.public_id): expect(machines["laptop"], machines["desktop"]),
        str(member.public_id): expect(machines["members-pc"]),
    }
    # Every machine's Claude tokens, to the token, whatever the grouping.
    claude = sum(r["claude_daily_instances"]["totals"]["totalTokens"] for r in machines.values())
    by_source = {row["key"]: row for row in read(admin, scope="team", group_by="source")["results"]}
    assert by_source["claude-code"]["total_tokens"] == claude
    by_day = read(admin, scope="team", group_by="day")
    assert sum(row["total_tokens"] for row in by_day["results"]) == expect(*machines.values())[0]


def test_resending_every_machine_changes_nothing(machines, owner, member, admin):
    senders = {"laptop": owner, "desktop": owner, "members-pc": member}
    bodies = {name: envelope(reports, name=name) for name, reports in machines.items()}
    for attempt in range(2):
        for name, body in bodies.items():
            client = api_client(token_for(senders[name], scopes=("ingest",)))
            # A fresh encoding each time: not byte-identical, so it is compared row by row.
            body["machine"]["os"] = f"Linux {attempt}"
            assert post(client, body).status_code == 201
    assert figures(read(admin, scope="team")["totals"]) == expect(*machines.values())
