"""The budget and channel forms in headless Chromium: fields follow the choices, CSP stays quiet."""

import pytest

from budgets.models import Budget, Channel
from tests.browser.conftest import (  # noqa: F401  (fixtures)
    browser,
    browser_team,
    pages,
    skip_without_chromium,
)

pytestmark = [pytest.mark.browser, skip_without_chromium]


def test_an_owner_sets_up_a_channel_and_a_project_budget_in_the_browser(
    pages,  # noqa: F811
    browser_team,  # noqa: F811
):
    page = pages.login("owner@a.example")

    page.goto("/budgets/channels/new/")
    assert page.is_checked("input[name=kind][value=email]")
    assert page.is_hidden("[data-field=url]")
    page.check("input[name=kind][value=webhook]")
    assert page.is_visible("[data-field=url]")
    assert page.is_hidden("[data-field=addresses]")
    page.check("input[name=kind][value=email]")
    page.fill("input[name=name]", "Finance")
    page.fill("textarea[name=addresses]", "finance@a.example")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/budgets/channels/")
    assert "finance@a.example" in page.inner_text("main")

    page.goto("/budgets/new/")
    assert page.is_hidden("[data-field=project]")
    assert page.is_hidden("[data-field=member]")
    page.check("input[name=scope][value=project]")
    assert page.is_visible("[data-field=project]")
    page.fill("input[name=name]", "API server")
    page.select_option("select[name=project]", label="api-server")
    page.fill("input[name=amount_usd]", "10")
    page.check("input[name=channels]")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/budgets/")

    card = page.locator(".budget", has_text="API server")
    assert "Project api-server" in card.inner_text()
    assert card.locator("progress.bar").count() == 1
    budget = Budget.objects.get(name="API server")
    assert budget.project.display_name == "api-server"
    assert list(budget.channels.all()) == [Channel.objects.get(name="Finance")]
    assert pages.errors == [], "no script errors or CSP violations"
