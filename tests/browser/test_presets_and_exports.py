"""Date presets in the browser: choosing one fills the dates, typing a date switches to Custom,
the explorer's total shows its change against the days before, and the chargeback link keeps
the filters; a session opens from the list."""

import pytest

from tests.browser.conftest import screenshot, skip_without_chromium

pytestmark = [pytest.mark.browser, skip_without_chromium]


def test_presets_fill_the_dates_and_the_change_follows(pages, browser_team):
    page = pages.login("owner@a.example")
    page.goto("/usage/")
    page.wait_for_load_state("networkidle")
    preset = page.locator("select[name=range]")
    assert preset.input_value() == "30d"
    option = page.locator("select[name=range] option[value='7d']")
    since, until = option.get_attribute("data-since"), option.get_attribute("data-until")
    preset.select_option("7d")
    assert page.input_value("input[name=since]") == since
    assert page.input_value("input[name=until]") == until
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function(
        "(since) => document.getElementById('explorer-range').textContent.startsWith(since)",
        arg=since,
    )
    status = page.locator("#explorer-status").inner_text()
    assert since in status and "vs $" in status
    link = page.locator("#explorer-chargeback").get_attribute("href")
    assert "range=7d" in link
    # Typing a date makes the range a custom one.
    page.fill("input[name=since]", "2026-01-01")
    page.locator("input[name=since]").dispatch_event("change")
    assert preset.input_value() == "custom"
    screenshot(page, "presets-explorer")
    assert pages.errors == []


def test_the_overview_period_and_a_session_page(pages, browser_team):
    page = pages.login("owner@a.example")
    page.locator("#period select[name=range]").select_option("last_month")
    page.locator("#period").get_by_role("button", name="Apply").click()
    page.wait_for_load_state()
    assert "range=last_month" in page.url
    assert "Last month" in page.locator("section[aria-label='Cost and tokens']").inner_text()
    page.goto("/sessions/")
    page.locator("#sessions-table tbody tr a").first.click()
    page.wait_for_load_state()
    assert "Where it ran" in page.locator("main").inner_text()
    screenshot(page, "session-detail")
    assert pages.errors == []
