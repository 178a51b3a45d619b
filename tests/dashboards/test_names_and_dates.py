"""Friendly model names (raw id in a tooltip, unknown ids raw) and one date format per kind of
place: days in tables and sentences, ranges, instants in the viewer's zone."""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.template import Context, Template

from telemetry_site.formatting import day_label, day_span, model_name, short_day
from tests.conftest import login
from tests.dashboards.conftest import NOW
from tests.factories import session

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _at_now():
    with time_machine.travel(NOW, tick=False):
        yield


# The ids and names of Anthropic's models overview and OpenAI's Codex model list.
@pytest.mark.parametrize(
    ("model_id", "name"),
    [
        ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"),
        ("claude-sonnet-4-5", "Claude Sonnet 4.5"),
        ("claude-haiku-4-5-20251001", "Claude Haiku 4.5"),
        ("claude-opus-4-1-20250805", "Claude Opus 4.1"),
        ("claude-opus-4-20250514", "Claude Opus 4"),
        ("claude-sonnet-4-20250514", "Claude Sonnet 4"),
        ("claude-3-7-sonnet-20250219", "Claude 3.7 Sonnet"),
        ("claude-3-7-sonnet-latest", "Claude 3.7 Sonnet"),
        ("claude-3-5-haiku-20241022", "Claude 3.5 Haiku"),
        ("claude-3-haiku-20240307", "Claude 3 Haiku"),
        ("gpt-5-codex", "GPT-5 Codex"),
        ("gpt-5", "GPT-5"),
        ("gpt-4.1-mini", "GPT-4.1 Mini"),
        # Unknown ids are shown as they are.
        ("<synthetic>", "<synthetic>"),
        ("o3", "o3"),
        ("claude-sonnet-4-5-20250929[1m]", "claude-sonnet-4-5-20250929[1m]"),
        ("model-nobody-priced", "model-nobody-priced"),
        ("", ""),
    ],
)
def test_model_names(model_id, name):
    assert model_name(model_id) == name


def render(source: str, **context) -> str:
    return Template("{% load telemetry %}" + source).render(Context(context))


def test_the_model_filter_keeps_the_raw_id_in_a_tooltip_and_escapes_it():
    assert render("{{ m|model }}", m="claude-opus-4-1-20250805") == (
        '<span class="model" title="claude-opus-4-1-20250805">Claude Opus 4.1</span>'
    )
    assert (
        render("{{ m|model }}", m="<b>x</b>") == '<span class="model">&lt;b&gt;x&lt;/b&gt;</span>'
    )
    assert render("{{ m|models }}", m=["gpt-5", "o3"]) == (
        '<span class="model" title="gpt-5">GPT-5</span>, <span class="model">o3</span>'
    )


def test_days_and_ranges_have_one_format_each():
    today = date(2026, 11, 24)
    assert day_label(date(2026, 11, 24), today) == "Tue, Nov 24"
    assert day_label(date(2025, 12, 31), today) == "Wed, Dec 31, 2025"
    assert short_day(date(2026, 11, 3), today) == "Nov 3"
    assert day_span(date(2026, 11, 1), date(2026, 11, 24), today) == "Nov 1 to Nov 24"
    assert day_span(date(2026, 11, 24), date(2026, 11, 24), today) == "Nov 24"
    assert render("{{ d|day }}", d=date(2026, 11, 24)) == "Tue, Nov 24"
    assert render("{{ a|span:b }}", a=date(2026, 10, 1), b=date(2026, 10, 31)) == (
        "Oct 1 to Oct 31"
    )
    assert render("{{ d|day }}", d="not a day") == "—"


def test_instants_are_in_the_viewers_zone(member):
    member.timezone = "Asia/Tokyo"
    member.save()
    moment = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
    session(member_machine := _machine(member), last_activity=moment, first_activity=moment)
    html = login(member).get("/sessions/").content.decode()
    # 15:30 UTC is 00:30 the next day in Tokyo.
    assert ">Nov 25, 00:30</time>" in html
    assert member_machine.name in html


def _machine(user):
    from tests.factories import MachineFactory

    return MachineFactory(owner=user, name="tokyo-box")


def test_tables_menus_and_charts_name_models(populated, member):
    machine = populated.machines["member"][0]
    # The fixture's facts are all claude-sonnet-4-5-20250929 (the factories' default).
    session(
        machine,
        models=["claude-sonnet-4-5-20250929", "o3"],
        last_activity=NOW - timedelta(minutes=5),
    )
    client = login(member)
    sessions = client.get("/sessions/").content.decode()
    assert (
        '<span class="model" title="claude-sonnet-4-5-20250929">Claude Sonnet 4.5</span>'
        in sessions
    )
    explorer = client.get("/usage/", {"split": "model"})
    html = explorer.content.decode()
    # The menu, the table (raw id as a tooltip) and the chart's labels for JavaScript.
    assert '<option value="claude-sonnet-4-5-20250929">Claude Sonnet 4.5</option>' in html
    assert 'title="claude-sonnet-4-5-20250929">Claude Sonnet 4.5</span>' in html
    labels = explorer.context["explorer_config"]["model_labels"]
    assert labels["claude-sonnet-4-5-20250929"] == "Claude Sonnet 4.5"
    rows = {r["key"]: r["label"] for r in explorer.context["data"]["results"]}
    assert rows["claude-sonnet-4-5-20250929"] == "Claude Sonnet 4.5"
    csv_text = client.get("/usage/export.csv", {"split": "model"}).content.decode()
    assert "Claude Sonnet 4.5,claude-sonnet-4-5-20250929," in csv_text


def test_the_overview_uses_the_day_format(populated, member):
    html = login(member).get("/").content.decode()
    assert "today is Tue, Nov 24" in html
    assert '<th scope="row">Tue, Nov 24</th>' in html
