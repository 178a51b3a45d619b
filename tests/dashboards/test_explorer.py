"""The usage explorer and its CSV: filters, splits, who may split the team, and equal figures."""

import csv
import io
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from tests.conftest import login
from tests.dashboards.conftest import NOW
from tests.factories import daily

pytestmark = pytest.mark.django_db

URL = "/usage/"
CSV_URL = "/usage/export.csv"


@pytest.fixture(autouse=True)
def _at_now():
    with time_machine.travel(NOW, tick=False):
        yield


def read_csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.mark.parametrize("url", [URL, CSV_URL])
def test_anonymous_visitors_are_sent_to_the_login_page(url):
    response = login(None).get(url)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


def test_a_member_sees_their_own_usage_per_day_by_default(populated, member):
    response = login(member).get(URL)
    assert response.status_code == 200
    data = response.context["data"]
    # 3 machines x 5 days x $1.50.
    assert data["totals"]["cost_usd"] == Decimal("22.5")
    # The last 30 days (Oct 26 to Nov 24), the 25 without usage as zero rows.
    assert len(data["results"]) == 30
    assert sum(1 for r in data["results"] if r["cost_usd"]) == 5
    assert response.context["group_by"] == "day"
    html = response.content.decode()
    assert "$22.50" in html
    assert 'id="explorer-config"' in html


def test_a_member_may_see_the_team_totals_but_not_split_by_machine(populated, member):
    client = login(member)
    team = client.get(URL, {"scope": "team"})
    assert team.context["data"]["totals"]["cost_usd"] == Decimal("67.5")
    refused = client.get(URL, {"scope": "team", "split": "machine"})
    assert "Only team admins see the team split by machine or member" in refused.content.decode()
    assert refused.context["group_by"] == "day"


def test_a_member_cannot_split_by_member(populated, member):
    response = login(member).get(URL, {"split": "member"})
    assert response.context["filters"].errors
    assert response.context["group_by"] == "day"


def test_a_member_asking_for_the_team_split_by_member_gets_a_plain_reason(populated, member):
    response = login(member).get(URL, {"scope": "team", "split": "member"})
    html = response.content.decode()
    assert "Select a valid choice" not in html
    assert "Only team admins see the team split by machine or member" in html
    assert response.context["group_by"] == "day"
    # The team's totals still show, by day.
    assert response.context["data"]["totals"]["cost_usd"] == Decimal("67.5")


def test_an_unknown_filter_value_is_named_and_ignored(populated, member):
    html = login(member).get(URL, {"source": "galaxy"}).content.decode()
    assert "“galaxy” is not one of the options, so this filter is ignored." in html


def test_reversed_dates_show_the_data_of_the_dates_in_the_fields(populated, member):
    response = login(member).get(URL, {"since": "2026-11-24", "until": "2026-11-22"})
    params = response.context["params"]
    assert (params["since"].isoformat(), params["until"].isoformat()) == (
        "2026-11-22",
        "2026-11-24",
    )
    html = response.content.decode()
    assert 'name="since" value="2026-11-22"' in html and 'name="until" value="2026-11-24"' in html
    assert "showing Nov 22, 2026 to Nov 24, 2026" in html


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_split_the_team_by_member(populated, cast, role):
    response = login(cast[role]).get(URL, {"scope": "team", "split": "member"})
    results = response.context["data"]["results"]
    assert {r["key"] for r in results} == {
        str(cast[name].public_id) for name in ("owner", "admin", "member")
    }
    assert all(r["cost_usd"] == Decimal("22.5") for r in results)


def test_an_outsider_sees_only_their_own_team(populated, outsider):
    response = login(outsider).get(URL, {"scope": "team"})
    assert response.context["data"]["totals"]["cost_usd"] == Decimal("99")


def test_filters_narrow_the_figures(populated, member):
    laptop = populated.machines["member"][0]
    webapp = populated.projects[0]
    client = login(member)
    by_machine = client.get(URL, {"machine": str(laptop.uuid)})
    assert by_machine.context["data"]["totals"]["cost_usd"] == Decimal("7.5")
    by_project = client.get(URL, {"project": str(webapp.public_id), "split": "machine"})
    assert by_project.context["data"]["totals"]["cost_usd"] == Decimal("7.5")
    day = NOW.date().isoformat()
    one_day = client.get(URL, {"since": day, "until": day, "split": "project"})
    assert [r["cost_usd"] for r in one_day.context["data"]["results"]] == [Decimal("1.5")] * 3


def test_models_and_sources_are_filters_and_splits(populated, member):
    laptop = populated.machines["member"][0]
    daily(
        laptop,
        NOW.date(),
        project=populated.projects[0],
        model="gpt-5.1-codex",
        source="codex",
        cost="4.00",
    )
    client = login(member)
    by_source = client.get(URL, {"split": "source"})
    assert [(r["key"], r["cost_usd"]) for r in by_source.context["data"]["results"]] == [
        ("claude-code", Decimal("22.5")),
        ("codex", Decimal("4")),
    ]
    by_model = client.get(URL, {"model": "gpt-5.1-codex"})
    assert by_model.context["data"]["totals"]["cost_usd"] == Decimal("4")
    assert "gpt-5.1-codex" in dict(by_model.context["filters"].fields["model"].choices)


def test_weeks_and_months_group_the_days(populated, member):
    client = login(member)
    weeks = client.get(URL, {"period": "week", "since": "2026-11-01"})
    # Nov 20-22 fall in ISO week 47, Monday Nov 23 starts week 48; Sunday Nov 1 is in week 44,
    # and weeks 44-46 have no usage (zero rows).
    assert [r["label"] for r in weeks.context["data"]["results"]] == [
        "2026-W44",
        "2026-W45",
        "2026-W46",
        "2026-W47",
        "2026-W48",
    ]
    months = client.get(URL, {"period": "month"})
    # The default 30 days (Oct 26 to Nov 24) touch October, which had no usage.
    assert [r["label"] for r in months.context["data"]["results"]] == ["2026-10", "2026-11"]
    assert months.context["data"]["results"][0]["cost_usd"] == 0


@pytest.mark.parametrize(
    "params",
    [{"since": "soon"}, {"split": "planet"}, {"period": "decade"}, {"machine": "x"}],
)
def test_bad_filters_show_errors_instead_of_failing(populated, member, params):
    response = login(member).get(URL, params)
    assert response.status_code == 200
    assert response.context["filters"].errors
    assert response.context["data"]["totals"]["cost_usd"] == Decimal("22.5")


def test_the_csv_has_exactly_the_rows_of_the_table(populated, admin):
    params = {"scope": "team", "split": "project", "since": "2026-11-21", "until": "2026-11-24"}
    client = login(admin)
    page = client.get(URL, params)
    rows = read_csv(client.get(CSV_URL, params))
    assert rows[0] == [
        "project",
        "key",
        "input_tokens",
        "output_tokens",
        "cache_creation_tokens",
        "cache_read_tokens",
        "total_tokens",
        "cost_usd",
    ]
    table = page.context["data"]
    assert [r[1] for r in rows[1:-1]] == [str(r["key"]) for r in table["results"]]
    assert [r[0] for r in rows[1:-1]] == [r["label"] for r in table["results"]]
    assert [Decimal(r[7]) for r in rows[1:-1]] == [r["cost_usd"] for r in table["results"]]
    assert rows[-1][0] == "Total"
    assert Decimal(rows[-1][7]) == table["totals"]["cost_usd"] == Decimal("54")
    assert int(rows[-1][6]) == table["totals"]["total_tokens"]


def test_the_csv_follows_the_same_visibility_rules(populated, member):
    rows = read_csv(login(member).get(CSV_URL, {"scope": "team", "split": "member"}))
    # The member split is refused: the CSV has the team's totals per day, no one's name.
    assert rows[0][0] == "day"
    assert Decimal(rows[-1][7]) == Decimal("67.50")
    assert not any("@" in cell for row in rows for cell in row)


def test_the_table_matches_the_read_api(populated, admin):
    client = login(admin)
    params = {"scope": "team", "split": "machine"}
    page = client.get(URL, params).context["data"]
    api = client.get(
        "/api/v1/usage/",
        {**params, "group_by": "machine", "since": "2026-10-26", "until": "2026-11-24"},
    ).json()
    assert [r["key"] for r in api["results"]] == [str(r["key"]) for r in page["results"]]
    assert Decimal(api["totals"]["cost_usd"]) == page["totals"]["cost_usd"]


def test_the_page_runs_a_bounded_number_of_queries(populated, admin, django_assert_max_num_queries):
    client = login(admin)
    # +1: allow-list check per request; +1: the previous period's total (the change); +1: the
    # machines named after their rollup rows are summed (usage.queries._rollup_rows).
    with django_assert_max_num_queries(14):
        response = client.get(URL, {"scope": "team", "split": "machine"})
    assert len(response.context["data"]["results"]) == 9


def test_without_machines_the_page_says_how_to_get_data_in(member):
    html = login(member).get(URL).content.decode()
    assert "No usage yet" in html
    assert "/machines/#onboarding" in html


def test_machines_of_two_people_are_told_apart_by_their_owner(populated, admin):
    params = {"scope": "team", "split": "machine"}
    client = login(admin)
    labels = {r["label"] for r in client.get(URL, params).context["data"]["results"]}
    assert "admin-laptop" in labels  # the viewer's own keep their plain name
    assert "member-laptop (member@a.example)" in labels
    rows = read_csv(client.get(CSV_URL, params))
    assert "member-laptop (member@a.example)" in [row[0] for row in rows]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def test_names_that_look_like_formulas_are_plain_text_in_the_csv(populated, admin):
    laptop = populated.machines["member"][0]
    laptop.name = '=HYPERLINK("http://evil.example","open")'
    laptop.save()
    project = populated.projects[0]
    project.display_name = "+1+cmd|' /C calc'!A0"
    project.save()
    daily(laptop, NOW.date(), project=project, model="-2+3", cost="1.00")
    daily(laptop, NOW.date(), project=project, model="\tindent", cost="1.00")
    client = login(admin)
    cells = []
    for split in ("machine", "project", "model", "member"):
        rows = read_csv(client.get(CSV_URL, {"scope": "team", "split": split}))
        cells += [cell for row in rows for cell in row]
    assert '\'=HYPERLINK("http://evil.example","open") (member@a.example)' in cells
    assert "'+1+cmd|' /C calc'!A0" in cells
    assert "'-2+3" in cells and "'\tindent" in cells
    assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
