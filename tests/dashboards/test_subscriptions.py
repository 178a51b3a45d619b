"""The subscriptions settings page: each member manages only their own Claude accounts."""

from decimal import Decimal

import pytest
from django.urls import reverse

from tests.factories import MachineFactory, SubscriptionFactory
from usage.models import Subscription

pytestmark = pytest.mark.django_db

ROLES = ("owner", "admin", "member", "outsider")


@pytest.fixture
def accounts(cast):
    """Each of the cast has a default subscription named after their role."""
    return {
        role: SubscriptionFactory(owner=user, label=f"{role} account", is_default=True)
        for role, user in cast.items()
    }


def test_anonymous_visitors_are_sent_to_log_in(client, accounts):
    response = client.get(reverse("subscriptions"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    edit = reverse("subscription_edit", args=[accounts["member"].public_id])
    assert client.post(edit, {"label": "x", "plan": "pro"}).status_code == 302
    assert Subscription.objects.get(pk=accounts["member"].pk).label == "member account"


@pytest.mark.parametrize("role", ROLES)
def test_everyone_sees_only_their_own_subscriptions(client, cast, accounts, role):
    client.force_login(cast[role])
    page = client.get(reverse("subscriptions")).content.decode()
    for other in ROLES:
        assert (f"{other} account" in page) is (other == role)


@pytest.mark.parametrize("role", ["owner", "admin", "outsider"])
def test_another_users_subscription_is_not_found(client, cast, accounts, role):
    client.force_login(cast[role])
    sub = accounts["member"]
    for name in ("subscription_edit", "subscription_default", "subscription_delete"):
        response = client.post(reverse(name, args=[sub.public_id]), {"label": "x", "plan": "pro"})
        assert response.status_code == 404
    sub.refresh_from_db()
    assert (sub.label, sub.is_default) == ("member account", True)


def test_a_member_adds_a_subscription_with_a_plan_and_price(client, member, accounts):
    client.force_login(member)
    response = client.post(
        reverse("subscriptions"),
        {"label": "Personal", "plan": "custom", "monthly_price_usd": "42.50"},
    )
    assert response.status_code == 302
    personal = Subscription.objects.get(owner=member, label="Personal")
    assert (personal.plan, personal.monthly_price_usd, personal.is_default) == (
        "custom",
        Decimal("42.50"),
        False,
    )
    page = client.get(reverse("subscriptions")).content.decode()
    assert "$42.50" in page and "$100.00" in page  # own price, and Max 5x's list price


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"label": "  ", "plan": "pro"}, "label"),
        ({"label": "member account", "plan": "pro"}, "label"),
        ({"label": "Mine", "plan": "custom"}, "monthly_price_usd"),
        ({"label": "Mine", "plan": "pro", "monthly_price_usd": "-1"}, "monthly_price_usd"),
        ({"label": "Mine", "plan": "platinum"}, "plan"),
        ({"label": "Mine"}, "plan"),
        ({"label": "Mine", "plan": "unknown", "monthly_price_usd": "100"}, "plan"),
    ],
)
def test_bad_input_is_refused_with_a_reason_and_changes_nothing(
    client, member, accounts, data, field
):
    client.force_login(member)
    response = client.post(reverse("subscriptions"), data)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert Subscription.objects.filter(owner=member).count() == 1


def test_making_another_subscription_the_default_moves_the_mark(client, member, accounts):
    client.force_login(member)
    personal = SubscriptionFactory(owner=member, label="Personal")
    response = client.post(reverse("subscription_default", args=[personal.public_id]))
    assert response.status_code == 302
    assert list(Subscription.objects.filter(owner=member, is_default=True)) == [personal]
    assert Subscription.default_for(member) == personal


def test_adding_a_new_default_clears_the_old_one(client, member, accounts):
    client.force_login(member)
    client.post(reverse("subscriptions"), {"label": "New", "plan": "max20x", "is_default": "on"})
    assert Subscription.objects.get(owner=member, is_default=True).label == "New"


def test_the_only_subscription_stays_the_default(client, member, accounts):
    client.force_login(member)
    edit = reverse("subscription_edit", args=[accounts["member"].public_id])
    assert client.get(edit).status_code == 200
    response = client.post(edit, {"label": "Work", "plan": "max20x"})
    assert response.status_code == 302
    sub = Subscription.objects.get(pk=accounts["member"].pk)
    assert (sub.label, sub.plan, sub.is_default) == ("Work", "max20x", True)


def test_a_subscription_with_machines_cannot_be_removed(client, member, accounts):
    client.force_login(member)
    spare = SubscriptionFactory(owner=member, label="Spare")
    MachineFactory(owner=member, subscription=spare)
    response = client.post(reverse("subscription_delete", args=[spare.public_id]), follow=True)
    assert "still has machines" in response.content.decode()
    assert Subscription.objects.filter(pk=spare.pk).exists()


def test_an_unused_subscription_is_removed_but_never_the_default(client, member, accounts):
    client.force_login(member)
    spare = SubscriptionFactory(owner=member, label="Spare")
    client.post(reverse("subscription_delete", args=[spare.public_id]))
    assert not Subscription.objects.filter(pk=spare.pk).exists()
    client.post(reverse("subscription_delete", args=[accounts["member"].public_id]))
    assert Subscription.objects.filter(pk=accounts["member"].pk).exists()


def test_removing_needs_a_post(client, member, accounts):
    client.force_login(member)
    spare = SubscriptionFactory(owner=member, label="Spare")
    assert client.get(reverse("subscription_delete", args=[spare.public_id])).status_code == 405


def test_the_page_has_no_inline_script_or_style(client, member, accounts):
    client.force_login(member)
    page = client.get(reverse("subscriptions")).content.decode()
    assert "<script>" not in page and "style=" not in page


def test_the_add_form_preselects_no_plan(client, member, accounts):
    client.force_login(member)
    form = client.get(reverse("subscriptions")).context["form"]
    html = str(form["plan"])
    assert '<option value="" selected>Choose a plan…</option>' in html
    assert html.count("selected") == 1


def test_a_subscription_nobody_chose_a_plan_for_shows_no_price(client, member):
    sub = Subscription.default_for(member)  # as a member's first sync creates it
    client.force_login(member)
    page = client.get(reverse("subscriptions")).content.decode()
    assert "Plan unknown: choose it" in page
    assert reverse("subscription_edit", args=[sub.public_id]) in page
    assert "unknown until the plan is chosen" in page
    assert "Max 5x</td>" not in page
