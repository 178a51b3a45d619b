"""Date presets in the browser: choosing one fills the dates, typing a date switches to Custom,
the explorer's total shows its change against the days before, and the chargeback link keeps
the filters; a session opens from the list."""

from datetime import date

import pytest
from django.utils import timezone

from dashboards.periods import previous_period
from telemetry_site.formatting import day_span
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
    # The script writes the dates as the rest of the site does ("Nov 23 to Nov 29"), and
    # compares with the period dashboards.periods.previous_period names.
    for name in ("7d", "mtd", "last_month"):
        option = page.locator(f"select[name=range] option[value='{name}']")
        first = date.fromisoformat(option.get_attribute("data-since"))
        last = date.fromisoformat(option.get_attribute("data-until"))
        preset.select_option(name)
        page.get_by_role("button", name="Apply").click()
        shown = day_span(first, last, timezone.localdate())
        page.wait_for_function(
            "(text) => document.getElementById('explorer-range').textContent === text + ': '",
            arg=shown,
        )
        before = day_span(*previous_period(first, last, name), timezone.localdate())
        status = page.locator("#explorer-status").inner_text()
        assert f"({before})" in status and "vs $" in status, status
    preset.select_option("7d")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function(
        "(text) => document.getElementById('explorer-range').textContent === text + ': '",
        arg=day_span(date.fromisoformat(since), date.fromisoformat(until), timezone.localdate()),
    )
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
