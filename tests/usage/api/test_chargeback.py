"""GET /api/v1/chargeback/ (JSON and CSV): rows per period by project by member with names,
adding up to the usage total, and only the detail each viewer may see."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from rest_framework.renderers import JSONRenderer

from accounts.team import remove_member
from telemetry_site.formatting import decimal_string
from tests.conftest import api_client, make_member, token_for
from tests.factories import MachineFactory, ProjectFactory, daily
from usage import exports
from usage.api.chargeback import ChargebackSerializer
from usage.figures import TOKEN_FIELDS
from usage.models import DailyUsage, Machine

pytestmark = pytest.mark.django_db

URL = "/api/v1/chargeback/"
NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _at_now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def spend(cast, team_a):
    """November: owner $2 webapp + $1 api, admin $4 webapp, member $8 api, a former member
    $16 webapp (removed afterwards); October: member $32 webapp. Outsider: $64 of their own."""
    webapp = ProjectFactory(team=team_a, key="-home-dev-src-webapp", display_name="webapp")
    api = ProjectFactory(team=team_a, key="-home-dev-src-api", display_name="=HYPERLINK(1)")
    former = make_member(team_a, "former@a.example", "member")
    machines = {
        role: MachineFactory(owner=user, name=f"{role}-box")
        for role, user in {**cast, "former": former}.items()
    }
    daily(machines["owner"], date(2026, 11, 3), cost="2.00", project=webapp)
    daily(machines["owner"], date(2026, 11, 20), cost="1.00", project=api)
    daily(machines["admin"], date(2026, 11, 10), cost="4.00", project=webapp)
    daily(machines["member"], date(2026, 11, 24), cost="8.00", project=api)
    daily(machines["former"], date(2026, 11, 5), cost="16.00", project=webapp)
    daily(machines["member"], date(2026, 10, 31), cost="32.00", project=webapp)
    outsider_project = ProjectFactory(team=cast["outsider"].team, key="-x-secret")
    daily(machines["outsider"], date(2026, 11, 24), cost="64.00", project=outsider_project)
    remove_member(cast["owner"].membership, former.membership)
    return {"former": former, "webapp": webapp, "api": api}


def get(user, **params):
    client = api_client(token_for(user) if user else None)
    return client.get(URL, params)


def by_member(rows) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for row in rows:
        out[row["email"] or row["member"]] = out.get(row["email"] or row["member"], 0) + Decimal(
            row["cost_usd"]
        )
    return out


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_get_every_member_by_name_and_former_members_stay(spend, cast, role):
    response = get(cast[role], since="2026-11-01", until="2026-11-30")
    assert response.status_code == 200
    body = response.json()
    assert body["per_member"] is True
    assert by_member(body["results"]) == {
        "owner@a.example": Decimal("3"),
        "admin@a.example": Decimal("4"),
        "member@a.example": Decimal("8"),
        "former@a.example": Decimal("16"),
    }
    former = [r for r in body["results"] if r["email"] == "former@a.example"]
    assert [r["former_member"] for r in former] == [True]
    assert not any(r["former_member"] for r in body["results"] if r["email"] != "former@a.example")
    # The rows add up to the team's usage total (2 + 1 + 4 + 8 + 16).
    usage = api_client(token_for(cast[role])).get(
        "/api/v1/usage/", {"scope": "team", "since": "2026-11-01", "until": "2026-11-30"}
    )
    assert sum(Decimal(r["cost_usd"]) for r in body["results"]) == Decimal("31")
    assert Decimal(usage.json()["totals"]["cost_usd"]) == Decimal("31")
    # Names, never UUIDs, in the columns people read.
    assert {r["project"] for r in body["results"]} == {"webapp", "=HYPERLINK(1)"}
    assert {r["period_start"] for r in body["results"]} == {"2026-11-01"}


def test_a_member_gets_the_team_per_project_without_names(spend, cast):
    body = get(cast["member"], since="2026-11-01", until="2026-11-30").json()
    assert body["per_member"] is False
    assert {(r["project"], r["member"], r["email"]) for r in body["results"]} == {
        ("webapp", "All members", ""),
        ("=HYPERLINK(1)", "All members", ""),
    }
    costs = {r["project"]: Decimal(r["cost_usd"]) for r in body["results"]}
    assert costs == {"webapp": Decimal("22"), "=HYPERLINK(1)": Decimal("9")}


def test_a_member_sees_names_when_the_team_shares_figures(spend, cast, team_a):
    team_a.members_see_each_other = True
    team_a.save()
    body = get(cast["member"], since="2026-11-01", until="2026-11-30").json()
    assert body["per_member"] is True
    assert by_member(body["results"])["admin@a.example"] == Decimal("4")


def test_a_member_asking_for_a_colleague_is_refused(spend, cast):
    response = get(cast["member"], member=str(cast["admin"].public_id))
    assert response.status_code == 403


def test_own_scope_is_ones_own_rows(spend, cast):
    body = get(cast["member"], scope="me", since="2026-10-01", until="2026-11-30").json()
    assert by_member(body["results"]) == {"member@a.example": Decimal("40")}
    assert [r["period_start"] for r in body["results"]] == ["2026-10-01", "2026-11-01"]
    assert [r["period_end"] for r in body["results"]] == ["2026-10-31", "2026-11-30"]


def test_outsiders_see_nothing_of_another_team(spend, cast):
    assert get(cast["outsider"], member=str(cast["member"].public_id)).status_code == 404
    assert get(cast["outsider"], project=str(spend["webapp"].public_id)).status_code == 404
    body = get(cast["outsider"]).json()
    assert by_member(body["results"]) == {"outsider@b.example": Decimal("64")}


def test_anonymous_is_refused():
    assert get(None).status_code == 401


def test_the_default_range_is_the_month_to_date_by_month(spend, cast):
    body = get(cast["owner"]).json()
    assert (body["since"], body["until"], body["period"]) == ("2026-11-01", "2026-11-24", "month")


def test_periods_and_totals(spend, cast):
    days = get(cast["owner"], period="day", since="2026-11-01", until="2026-11-30").json()
    assert {r["period_start"] for r in days["results"]} == {
        "2026-11-03",
        "2026-11-05",
        "2026-11-10",
        "2026-11-20",
        "2026-11-24",
    }
    total = get(cast["owner"], period="total", since="2026-10-15", until="2026-11-30").json()
    assert {(r["period_start"], r["period_end"]) for r in total["results"]} == {
        ("2026-10-15", "2026-11-30")
    }
    assert sum(Decimal(r["cost_usd"]) for r in total["results"]) == Decimal("63")


def test_a_week_cut_by_since_starts_there_and_ends_on_its_sunday(spend, cast):
    # 2026-11-04 is a Wednesday: its week runs from Monday 11-02 to Sunday 11-08.
    weeks = get(cast["owner"], period="week", since="2026-11-04", until="2026-11-30").json()
    spans = sorted({(r["period_start"], r["period_end"]) for r in weeks["results"]})
    assert spans[0] == ("2026-11-04", "2026-11-08")
    assert all(date.fromisoformat(start).weekday() == 0 for start, _ in spans[1:])
    assert all(date.fromisoformat(end).weekday() == 6 for _, end in spans[:-1])


def test_the_csv_has_names_and_no_formulas(spend, cast):
    response = get(cast["admin"], since="2026-11-01", until="2026-11-30", format="csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="chargeback-2026-11-01-2026-11-30.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    header, body = rows[0], rows[1:]
    assert header[:6] == [
        "period_start",
        "period_end",
        "project",
        "member",
        "email",
        "former_member",
    ]
    projects = {row[2] for row in body}
    # A name a spreadsheet would run as a formula is text.
    assert projects == {"webapp", "'=HYPERLINK(1)"}
    former = [row for row in body if row[4] == "former@a.example"]
    assert [row[5] for row in former] == ["yes"]
    cost = header.index("cost_usd")
    assert sum(Decimal(row[cost]) for row in body) == Decimal("31.00")


@pytest.mark.parametrize(
    ("params", "field"),
    [({"period": "year"}, "period"), ({"since": "2026-11-30", "until": "2026-11-01"}, "until")],
)
def test_bad_parameters_are_a_json_400_even_for_csv(spend, cast, params, field):
    response = get(cast["owner"], format="csv", **params)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert field in response.json()["errors"]


@pytest.fixture
def mixed(spend, cast, team_a):
    """`spend` plus what the grouping by ids must merge and keep apart: a project grouped
    under webapp (its facts charged to webapp), a second source agent, a second model, and
    token counts that differ per fact, in October and November."""
    fork = ProjectFactory(team=team_a, key="-home-dev-src-webapp-fork", display_name="fork")
    fork.set_alias(spend["webapp"])
    machines = {m.owner.email: m for m in Machine.objects.filter(team=team_a)}
    facts = [
        ("owner@a.example", date(2026, 10, 20), "0.1234567891", fork, "codex", 1_234),
        ("owner@a.example", date(2026, 11, 3), "3.3333333333", fork, "claude-code", 98_765),
        ("admin@a.example", date(2026, 11, 10), "0.0049999999", fork, "codex", 7),
        ("admin@a.example", date(2026, 11, 11), "5.25", spend["api"], "codex", 555_555),
        ("member@a.example", date(2026, 10, 14), "9.99", spend["api"], "codex", 42),
        ("former@a.example", date(2026, 11, 6), "0.015", fork, "codex", 31_337),
    ]
    for email, day, cost, project, source, tokens in facts:
        daily(
            machines[email],
            day,
            cost=cost,
            project=project,
            source=source,
            tokens=tokens,
            model="gpt-5-codex" if source == "codex" else "claude-sonnet-4-5",
        )
    return {**spend, "fork": fork}


def _expected(facts, *, since, until, period, per_member, team_id):
    """Chargeback rows summed in Python straight from DailyUsage facts, keyed as the API
    names them: (period_start, project, member email or "", former), figures per key."""

    def start_of(day):
        if period == "day":
            return day
        if period == "week":
            return day - timedelta(days=day.weekday())
        if period == "month":
            return day.replace(day=1)
        return since

    out: dict[tuple, dict] = {}
    for fact in facts:
        if not since <= fact.day <= until:
            continue
        owner = fact.machine.owner
        # Former: no membership any more, or one in another team.
        former = getattr(owner, "membership", None) is None or owner.membership.team_id != team_id
        member = (owner.email, former) if per_member else ("", False)
        key = (
            max(start_of(fact.day), since).isoformat(),
            fact.project.canonical.display_name,
            *member,
        )
        sums = out.setdefault(key, dict.fromkeys((*TOKEN_FIELDS, "total_tokens"), 0))
        sums.setdefault("cost_usd", Decimal(0))
        for name in (*TOKEN_FIELDS, "total_tokens", "cost_usd"):
            sums[name] += getattr(fact, name)
    return {
        key: {**sums, "cost_usd": decimal_string(sums["cost_usd"].quantize(Decimal("0.01")))}
        for key, sums in out.items()
    }


@pytest.mark.parametrize("period", ["month", "week", "day", "total"])
@pytest.mark.parametrize("role", ["owner", "member"])
def test_rows_are_the_sums_of_the_raw_facts(mixed, cast, team_a, period, role):
    # A range cutting October in the middle: the partial month starts on the 10th.
    since, until = date(2026, 10, 10), date(2026, 11, 24)
    body = get(cast[role], since=since, until=until, period=period).json()
    per_member = role == "owner"
    facts = DailyUsage.objects.filter(machine__team=team_a).select_related(
        "machine__owner__membership", "project__alias_of"
    )
    expected = _expected(
        facts, since=since, until=until, period=period, per_member=per_member, team_id=team_a.pk
    )
    got = {
        (r["period_start"], r["project"], r["email"], r["former_member"]): {
            name: r[name] for name in (*TOKEN_FIELDS, "total_tokens", "cost_usd")
        }
        for r in body["results"]
    }
    assert len(got) == len(body["results"])  # one row per key, aliases merged
    assert got == expected
    assert "fork" not in {r["project"] for r in body["results"]}
    webapp_id = str(mixed["webapp"].public_id)
    assert {r["project_id"] for r in body["results"] if r["project"] == "webapp"} == {webapp_id}


def test_json_is_what_the_row_serializer_gives_byte_for_byte(mixed, cast):
    since, until = date(2026, 10, 10), date(2026, 11, 24)
    response = get(cast["owner"], since=since, until=until, period="week")
    rows = exports.chargeback_rows(cast["owner"], since=since, until=until, period="week")
    data = {"since": since, "until": until, "period": "week", "per_member": True, "rows": rows}
    assert response.content == JSONRenderer().render(ChargebackSerializer(data).data)


def test_the_row_query_count_does_not_grow_with_rows(mixed, cast, django_assert_max_num_queries):
    # The grouping query plus one lookup of projects and one of members, whatever the rows.
    with django_assert_max_num_queries(5):
        rows = exports.chargeback_rows(
            cast["owner"], since=date(2026, 10, 1), until=date(2026, 11, 30), period="day"
        )
    assert len(rows) > 8
