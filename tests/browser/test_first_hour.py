"""A new team's first hour in headless Chromium: what an unknown plan, an error page, a
confirmation and a refused filter look like to the person in front of them."""

from datetime import UTC, date, datetime, timedelta

import pytest

from telemetry_site.formatting import day_span
from tests.browser.conftest import chart_state, screenshot, skip_without_chromium

pytestmark = [pytest.mark.browser, skip_without_chromium]


def test_a_plan_nobody_chose_is_shown_as_unknown_until_it_is_chosen(pages, browser_team):
    page = pages.login("member@a.example")
    card = page.locator("section[aria-labelledby=value-title]")
    assert "Plan unknown" in card.inner_text()
    assert "Paid extra" not in card.inner_text() and "Saved" not in card.inner_text()
    screenshot(page, "first-hour-plan-unknown")
    card.get_by_role("link", name="Choose the plan").click()
    page.select_option("select[name=plan]", "max5x")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/settings/subscriptions/")
    assert "Max 5x" in page.locator("table.subscriptions").inner_text()
    page.goto("/")
    card = page.locator("section[aria-labelledby=value-title]")
    assert "Plan unknown" not in card.inner_text() and "/month" in card.inner_text()
    assert pages.errors == []


def test_the_add_form_asks_for_a_plan_rather_than_guessing_one(pages, browser_team):
    pages.login("member@a.example")
    page = pages.new()
    page.goto("/settings/subscriptions/")
    assert page.locator("select[name=plan]").input_value() == ""
    page.fill("input[name=label]", "Personal")
    page.get_by_role("button", name="Add subscription").click()
    assert "Choose the plan, or “Plan unknown” if you are not sure." in page.content()
    # Chromium logs the refused form's 400 as a console error; nothing else may appear.
    assert [e for e in pages.errors if "status of 400" not in e] == []


def test_error_pages_say_why_and_lead_back(pages, browser_team):
    page = pages.login("owner@a.example")
    response = page.goto("/admin/")
    assert response.status == 403
    text = page.locator("main").inner_text()
    assert "staff account" in text
    assert "manage.py createsuperuser --noinput --email ops@example.com" in text
    screenshot(page, "first-hour-admin-403")
    response = page.goto("/machines/00000000-0000-0000-0000-000000000000/")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Nothing here"
    page.get_by_role("link", name="Back to the overview").click()
    page.wait_for_url("**/")
    assert page.locator("h1").inner_text() == "Overview"


def test_a_refused_split_and_reversed_dates_read_plainly(pages, browser_team):
    today = datetime.now(UTC).date()
    page = pages.login("member@a.example")
    page.goto("/usage/?scope=team&split=member")
    assert chart_state(page, "explorer-chart")["nonzero"] > 0
    screenshot(page, "first-hour-explorer-refused-split")
    text = page.locator("main").inner_text()
    assert "Select a valid choice" not in text
    assert "Only team admins see the team split by machine or member" in text
    # The message sits below the filters: every filter's label starts on the same line.
    tops = {
        round(box["y"])
        for box in (
            page.locator(f"label[for=id_{name}]").bounding_box() for name in ("since", "split")
        )
        if box
    }
    assert len(tops) == 1
    since, until = (today - timedelta(days=3)).isoformat(), (today - timedelta(days=9)).isoformat()
    page.goto(f"/usage/?since={since}&until={until}")
    chart_state(page, "explorer-chart")
    screenshot(page, "first-hour-explorer-reversed-dates")
    assert page.locator("input[name=since]").input_value() == until
    assert page.locator("input[name=until]").input_value() == since
    # The page's script writes the dates as the rest of the site ("Nov 20 to Nov 26").
    page.wait_for_function(
        "(text) => document.getElementById('explorer-range').textContent.startsWith(text)",
        arg=day_span(date.fromisoformat(until), date.fromisoformat(since), today),
    )
    days = [d for d in page.locator("table tbody th").all_inner_texts() if d[:2] == "20"]
    assert (min(days), max(days)) == (until, since)
    assert "The end date is before the start date" in page.locator("main").inner_text()
    assert pages.errors == []


def test_removing_a_member_and_retiring_a_machine_ask_first(pages, browser_team):
    from accounts.models import ApiToken

    ApiToken.issue(browser_team["member"], "workstation", ["ingest"])
    page = pages.login("owner@a.example")
    page.goto("/settings/team/members/")
    row = page.locator("tr", has_text="member@a.example")
    assert "API tokens" in page.locator("thead").inner_text()
    row.get_by_role("link", name="Remove…").click()
    assert page.locator("h1").inner_text() == "Remove member@a.example from the team?"
    assert "Their API tokens (1) are revoked" in page.locator("main").inner_text()
    screenshot(page, "first-hour-confirm-remove")
    page.get_by_role("link", name="Cancel").click()
    assert browser_team["member"].__class__.objects.get(pk=browser_team["member"].pk).is_active
    page.locator("tr", has_text="member@a.example").get_by_role("link", name="Remove…").click()
    page.get_by_role("button", name="Remove the member").click()
    assert "member@a.example was removed" in page.locator("main").inner_text()

    page.goto("/machines/")
    page.get_by_role("link", name="Retire this machine…").first.click()
    assert page.locator("h1").inner_text().startswith("Retire the machine")
    page.get_by_role("button", name="Retire the machine").click()
    assert "Retired “" in page.locator("main").inner_text()
    assert pages.errors == []
