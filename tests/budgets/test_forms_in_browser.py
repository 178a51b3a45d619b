"""The budget and channel forms in headless Chromium: fields follow the choices, CSP stays quiet."""

import pytest

from budgets.models import Budget, Channel
from tests.browser.conftest import (  # noqa: F401  (fixtures)
    LAPTOP,
    PHONE,
    browser,
    browser_team,
    pages,
    screenshot,
    skip_without_chromium,
)

pytestmark = [pytest.mark.browser, skip_without_chromium]

# The elements that stick out past the viewport's right edge, for the failure message.
WIDEST = """(width) => [...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > width)
  .slice(0, 5)
  .map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)"""


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


def test_form_fields_stack_label_field_and_help_like_the_filters_also_on_a_phone(
    pages,  # noqa: F811
    browser_team,  # noqa: F811
):
    page = pages.login("owner@a.example", viewport=LAPTOP)
    for viewport in (LAPTOP, PHONE):
        page.set_viewport_size(viewport)
        page.goto("/budgets/channels/new/")
        label = page.locator("[data-field=name] label").bounding_box()
        field = page.locator("input[name=name]").bounding_box()
        assert label and field and label["y"] + label["height"] <= field["y"] + 1
        page.check("input[name=kind][value=slack]")
        assert page.is_visible("[data-field=url]")
        assert page.is_hidden("[data-field=members]")
        url_box = page.locator("input[name=url]").bounding_box()
        help_box = page.locator("#id_url_helptext").bounding_box()
        assert url_box and help_box and help_box["y"] >= url_box["y"] + url_box["height"] - 1
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate(WIDEST, viewport["width"])
        assert width <= viewport["width"], f"{width} px wide at {viewport['width']}: {wide}"
        page.goto("/budgets/new/")
        assert "---------" not in page.inner_text("main")
        assert pages.errors == [], "no script errors or CSP violations"


def test_an_admin_previews_this_weeks_digest_on_the_reports_page(
    pages,  # noqa: F811
    browser_team,  # noqa: F811
):
    page = pages.login("owner@a.example")
    page.goto("/budgets/")
    page.click("text=Reports")
    page.wait_for_url("**/budgets/reports/")
    frame = page.frame_locator("iframe.report-preview")
    assert "Weekly digest · Team A" in frame.locator("h1").inner_text()
    assert frame.locator("text=Top projects").count() == 1
    # The email's own stylesheet applies inside the frame (its CSP allows inline styles).
    colour = frame.locator(".report").evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(255, 255, 255)"
    screenshot(page, "reports-page")
    page.goto("/budgets/reports/preview/")
    screenshot(page, "weekly-digest")
    page.goto("/budgets/reports/preview/?kind=monthly")
    assert "Chargeback report · Team A" in page.inner_text("h1")
    screenshot(page, "monthly-chargeback")
    assert pages.errors == [], "no script errors or CSP violations"
