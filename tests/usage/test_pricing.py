"""Models ccusage cannot price: their tokens are listed (API and pages), the operator sets a
price in the Django admin, the server applies it to ccusage's $0 rows, and ccusage wins once it
prices the model itself."""

import uuid
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from accounts.models import User
from tests.conftest import api_client, login, token_for
from tests.usage.ingest.helpers import USAGE_URL, envelope, post
from usage.models import DailyUsage, ModelPrice
from usage.pricing import reprice

pytestmark = pytest.mark.django_db

NEW_MODEL = "claude-future-9-20270101"
KNOWN_MODEL = "claude-sonnet-4-5-20250929"
UNPRICED_URL = "/api/v1/unpriced-models/"
PRICE = {
    "model": NEW_MODEL,
    "input_usd_per_mtok": "3",
    "output_usd_per_mtok": "15",
    "cache_creation_usd_per_mtok": "3.75",
    "cache_read_usd_per_mtok": "0.30",
}
# 1M input + 0.1M output + 0.2M cache creation + 2M cache read at PRICE:
# 3 + 1.5 + 0.75 + 0.6 = $5.85.
PRICED_COST = Decimal("5.85")


def report(*days: tuple[str, str, float]) -> dict:
    """A `ccusage daily --instances` report of one project: (day, model, cost) rows."""
    return {
        "claude_daily_instances": {
            "projects": {
                "-home-dev-src-webapp": [
                    {
                        "date": day,
                        "modelBreakdowns": [
                            {
                                "modelName": model,
                                "inputTokens": 1_000_000,
                                "outputTokens": 100_000,
                                "cacheCreationTokens": 200_000,
                                "cacheReadTokens": 2_000_000,
                                "cost": cost,
                            }
                        ],
                    }
                    for day, model, cost in days
                ]
            },
            "totals": {},
        }
    }


MACHINE = uuid.UUID("5d2b6f0e-1c1a-4f7e-9a3b-6c0d2e4f8a10")


def send(user, body: dict, name: str = "laptop"):
    response = post(api_client(token_for(user)), envelope(body, machine_uuid=MACHINE, name=name))
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.fixture
def unpriced(member):
    """The member's machine used a model ccusage has no price for on two days, and a known
    model on one."""
    send(
        member,
        report(
            ("2026-11-20", NEW_MODEL, 0),
            ("2026-11-21", NEW_MODEL, 0),
            ("2026-11-21", KNOWN_MODEL, 2.5),
        ),
    )


@pytest.fixture
def operator(client):
    client.force_login(User.objects.create_superuser("operator@example.com"))
    return client


def set_price(operator, **changes):
    data = {**PRICE, **changes}
    existing = ModelPrice.objects.filter(model=data["model"]).first()
    url = (
        reverse("admin:usage_modelprice_change", args=[existing.pk])
        if existing
        else reverse("admin:usage_modelprice_add")
    )
    response = operator.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]


def unpriced_api(user, **params):
    response = api_client(token_for(user, ("read",))).get(UNPRICED_URL, params)
    assert response.status_code == 200, response.json()
    return response.json()["results"]


def test_usage_ccusage_could_not_price_is_listed_with_its_tokens(unpriced, member):
    assert unpriced_api(member) == [
        {
            "model": NEW_MODEL,
            "input_tokens": 2_000_000,
            "output_tokens": 200_000,
            "cache_creation_tokens": 400_000,
            "cache_read_tokens": 4_000_000,
            "total_tokens": 6_600_000,
            "cost_usd": "0.00",
            "priced_by_server": False,
        }
    ]


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_every_member_sees_the_teams_unpriced_models(unpriced, cast, role):
    assert [m["model"] for m in unpriced_api(cast[role], scope="team")] == [NEW_MODEL]


def test_an_outsider_sees_none_of_another_teams_unpriced_models(unpriced, outsider):
    assert unpriced_api(outsider, scope="team") == []
    assert unpriced_api(outsider) == []


def test_the_unpriced_models_endpoint_refuses_bad_input_and_missing_tokens(unpriced, member):
    client = api_client(token_for(member, ("read",)))
    bad = client.get(UNPRICED_URL, {"since": "2026-11-22", "until": "2026-11-20"})
    assert bad.status_code == 400 and "until" in bad.json()["errors"]
    assert client.get(UNPRICED_URL, {"scope": "everyone"}).status_code == 400
    assert api_client().get(UNPRICED_URL).status_code == 401
    ingest_only = api_client(token_for(member, ("ingest",)))
    assert ingest_only.get(UNPRICED_URL).status_code == 403


def test_a_price_set_by_the_operator_prices_the_zero_cost_rows(unpriced, member, operator):
    set_price(operator)

    rows = DailyUsage.objects.filter(model=NEW_MODEL)
    assert {row.cost_usd for row in rows} == {PRICED_COST}
    assert all(row.priced_by_server for row in rows)
    known = DailyUsage.objects.get(model=KNOWN_MODEL)
    assert known.cost_usd == Decimal("2.5") and not known.priced_by_server
    listed = unpriced_api(member)
    assert listed[0]["priced_by_server"] and Decimal(listed[0]["cost_usd"]) == 2 * PRICED_COST
    totals = api_client(token_for(member)).get(USAGE_URL, {"group_by": "model"}).json()
    assert Decimal(totals["totals"]["cost_usd"]) == 2 * PRICED_COST + Decimal("2.5")


def test_changing_the_price_recomputes_and_recomputing_again_changes_nothing(unpriced, operator):
    set_price(operator)
    set_price(operator, output_usd_per_mtok="75")

    assert {r.cost_usd for r in DailyUsage.objects.filter(model=NEW_MODEL)} == {
        PRICED_COST + Decimal("6")
    }
    assert reprice(NEW_MODEL) == 0


def test_removing_the_price_puts_the_rows_back_at_zero(unpriced, operator):
    set_price(operator)
    price = ModelPrice.objects.get()
    response = operator.post(
        reverse("admin:usage_modelprice_delete", args=[price.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    rows = DailyUsage.objects.filter(model=NEW_MODEL)
    assert {row.cost_usd for row in rows} == {Decimal(0)}
    assert not any(row.priced_by_server for row in rows)


def test_new_reports_of_a_priced_model_are_priced_at_ingest_and_a_resend_changes_nothing(
    member, operator
):
    set_price(operator)
    body = report(("2026-11-22", NEW_MODEL, 0))
    send(member, body)
    row = DailyUsage.objects.get(model=NEW_MODEL)
    assert row.cost_usd == PRICED_COST and row.priced_by_server

    # New bytes (another machine name), the same figures: compared, not rewritten.
    again = send(member, body, name="laptop (renamed)")
    assert again["counts"]["claude_daily_instances"]["unchanged"] == 1


def test_a_later_ccusage_report_that_prices_the_model_wins(unpriced, member, operator):
    set_price(operator)
    send(member, report(("2026-11-20", NEW_MODEL, 4.2), ("2026-11-21", NEW_MODEL, 0)))

    by_day = {str(r.day): r for r in DailyUsage.objects.filter(model=NEW_MODEL)}
    assert by_day["2026-11-20"].cost_usd == Decimal("4.2")
    assert not by_day["2026-11-20"].priced_by_server
    assert by_day["2026-11-21"].priced_by_server
    # A price change leaves what ccusage priced alone.
    set_price(operator, input_usd_per_mtok="1")
    assert DailyUsage.objects.get(model=NEW_MODEL, day="2026-11-20").cost_usd == Decimal("4.2")


@pytest.mark.parametrize("role", ["owner", "admin", "member", "outsider"])
def test_team_roles_cannot_set_prices(unpriced, cast, role):
    client = login(cast[role])
    response = client.post(reverse("admin:usage_modelprice_add"), PRICE)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert not ModelPrice.objects.exists()


def test_staff_without_the_permission_cannot_set_prices_and_with_it_can(unpriced, client):
    staff = User.objects.create_user("staff@example.com", is_staff=True)
    client.force_login(staff)
    assert client.post(reverse("admin:usage_modelprice_add"), PRICE).status_code == 403
    assert not ModelPrice.objects.exists()
    staff.user_permissions.add(Permission.objects.get(codename="add_modelprice"))
    assert client.post(reverse("admin:usage_modelprice_add"), PRICE).status_code == 302
    assert DailyUsage.objects.filter(model=NEW_MODEL, priced_by_server=True).count() == 2


def test_a_negative_or_missing_price_is_refused(operator):
    response = operator.post(
        reverse("admin:usage_modelprice_add"), {**PRICE, "input_usd_per_mtok": "-1"}
    )
    assert response.status_code == 200 and not ModelPrice.objects.exists()
    response = operator.post(reverse("admin:usage_modelprice_add"), {"model": NEW_MODEL})
    assert response.status_code == 200 and not ModelPrice.objects.exists()


# --- pages -----------------------------------------------------------------------------------
@pytest.mark.parametrize("page", ["overview", "usage_explorer", "machines"])
def test_pages_name_the_models_counted_at_zero(unpriced, member, page, time_machine):
    time_machine.move_to("2026-11-22T12:00:00Z")
    content = login(member).get(reverse(page)).content.decode()
    assert NEW_MODEL in content and "counted as $0" in content
    assert KNOWN_MODEL not in content.split('id="unpriced-models"')[1].split("</section>")[0]


def test_pages_mark_cost_priced_by_the_server(unpriced, member, operator, time_machine):
    time_machine.move_to("2026-11-22T12:00:00Z")
    set_price(operator)
    content = login(member).get(reverse("usage_explorer")).content.decode()
    assert "priced by the server" in content and "$11.70" in content


def test_the_explorer_split_by_model_marks_the_rows_priced_by_the_server(
    unpriced, member, operator, time_machine
):
    time_machine.move_to("2026-11-22T12:00:00Z")
    set_price(operator)
    page = login(member).get(
        reverse("usage_explorer"),
        {"split": "model", "since": "2026-11-20", "until": "2026-11-22"},
    )
    rows = page.content.decode().split("<tbody>")[1].split("</tbody>")[0]
    marked = [r for r in rows.split("<tr") if "priced by the server" in r]
    assert len(marked) == 1 and NEW_MODEL in marked[0]


def test_pages_of_another_team_do_not_show_the_unpriced_models(unpriced, outsider, time_machine):
    time_machine.move_to("2026-11-22T12:00:00Z")
    for page in ("overview", "usage_explorer", "machines"):
        assert NEW_MODEL not in login(outsider).get(reverse(page)).content.decode()
