"""Django admin for alerts: last errors shown, resend and re-enable actions, secrets hidden."""

from datetime import date

import pytest
from django.urls import reverse

from budgets.models import Channel, Delivery
from tests.budgets.conftest import spend
from tests.factories import machine_for, make_budget, webhook_channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(db):
    from accounts.models import User

    return User.objects.create_superuser("operator@example.com")


@pytest.fixture
def failed(team_a, member, receiver, django_capture_on_commit_callbacks):
    """A webhook delivery that failed for good: the receiver answered 410."""
    from budgets import evaluate

    channel = webhook_channel(team_a, receiver)
    make_budget(team_a, "100", channels=[channel], forecast_alerts=False, thresholds=[90])
    spend(machine_for(member), date.today(), "95")
    receiver.answer(410)
    with django_capture_on_commit_callbacks(execute=True):
        evaluate.evaluate_team(team_a.pk)
    return Delivery.objects.get()


def test_the_admin_lists_show_last_errors_and_disabled_channels(client, operator, failed):
    client.force_login(operator)
    for model in ("channel", "delivery", "alert", "budget"):
        assert client.get(reverse(f"admin:budgets_{model}_changelist")).status_code == 200
    html = client.get(reverse("admin:budgets_channel_changelist")).content.decode()
    assert "The receiver answered 410 Gone" in html
    html = client.get(reverse("admin:budgets_delivery_changelist")).content.decode()
    assert "410 Gone" in html
    page = client.get(reverse("admin:budgets_alert_change", args=[failed.alert_id]))
    assert page.status_code == 200
    assert "410 Gone" in page.content.decode()


def test_the_channel_admin_never_shows_the_secret(client, operator, failed):
    channel = Channel.objects.get()
    client.force_login(operator)
    html = client.get(reverse("admin:budgets_channel_change", args=[channel.pk])).content
    assert channel.secret.encode() not in html


def test_re_enable_then_resend_from_the_admin_delivers_once(
    client, operator, failed, receiver, django_capture_on_commit_callbacks
):
    channel = Channel.objects.get()
    client.force_login(operator)
    client.post(
        reverse("admin:budgets_channel_changelist"),
        {"action": "re_enable", "_selected_action": [channel.pk]},
    )
    channel.refresh_from_db()
    assert channel.is_enabled
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:budgets_delivery_changelist"),
            {"action": "resend", "_selected_action": [failed.pk]},
        )
    failed.refresh_from_db()
    assert failed.status == Delivery.Status.SENT
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:budgets_delivery_changelist"),
            {"action": "resend", "_selected_action": [failed.pk]},
        )
    assert len(receiver.accepted) == 1


def test_rotating_a_secret_in_the_admin_shows_it_once(client, operator, failed):
    channel = Channel.objects.get()
    old = channel.secret
    client.force_login(operator)
    response = client.post(
        reverse("admin:budgets_channel_changelist"),
        {"action": "rotate_secret", "_selected_action": [channel.pk]},
        follow=True,
    )
    channel.refresh_from_db()
    assert channel.secret != old
    assert channel.secret in response.content.decode()


def test_team_admins_without_staff_rights_cannot_open_the_django_admin(client, admin):
    client.force_login(admin)
    response = client.get(reverse("admin:budgets_budget_changelist"))
    assert response.status_code == 302
