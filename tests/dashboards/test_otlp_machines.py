"""Machines that came by Claude Code's OTLP export are labelled so on the machines page and in
the machine filter menus; an agent machine is not."""

from datetime import UTC, datetime

import pytest

from tests.conftest import api_client, login, token_for
from tests.factories import MachineFactory
from tests.usage.ingest.otlp_helpers import LOGS_URL, PROTOBUF, api_request, logs_body, resource
from usage.models import Machine

pytestmark = pytest.mark.django_db


@pytest.fixture
def otlp_machine(member) -> Machine:
    body = logs_body([api_request(datetime(2026, 11, 20, 9, 30, tzinfo=UTC))], resource("ci-7"))
    client = api_client(token_for(member, ["ingest"]))
    assert client.post(LOGS_URL, data=body, content_type=PROTOBUF).status_code == 200
    return Machine.objects.get(owner=member, ingest_path="otlp")


def test_the_machines_page_says_which_path_each_machine_came_by(member, otlp_machine):
    agent = MachineFactory(owner=member, name="desk")
    html = login(member).get("/machines/").content.decode()
    card = html[html.index(f'id="machine-{otlp_machine.uuid}"') :]
    card = card[: card.index("</li>")]
    assert ">OTLP</span>" in card
    assert "Comes by</dt><dd>Claude Code's OTLP export" in card
    assert "/settings/otlp/" in card
    agent_card = html[html.index(f'id="machine-{agent.uuid}"') :]
    agent_card = agent_card[: agent_card.index("</li>")]
    assert ">OTLP</span>" not in agent_card
    assert "Agent (ccusage)" in agent_card


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_the_filter_menus_mark_otlp_machines_for_those_who_see_them(cast, otlp_machine, role):
    response = login(cast[role]).get("/usage/", {"scope": "team"})
    labels = dict(response.context["filters"].fields["machine"].choices)
    assert labels[str(otlp_machine.uuid)] == "ci-7 · OTLP (member@a.example)"


def test_an_outsider_sees_no_such_machine(outsider, otlp_machine):
    html = login(outsider).get("/machines/").content.decode()
    assert str(otlp_machine.uuid) not in html
