"""Big-team pages in the browser: the explorer's split table a page at a time (the page and
its script show the same rows), and the sessions list's searched machine menu."""

import re

import pytest

from dashboards import forms as dashboard_forms
from dashboards.views import explorer
from tests.browser.conftest import screenshot, skip_without_chromium
from usage.models import Machine

pytestmark = [pytest.mark.browser, skip_without_chromium]

ROWS = "#explorer-table tbody tr"


def keys(page) -> list[str]:
    return page.locator(ROWS).evaluate_all("(rows) => rows.map((r) => r.dataset.key)")


def test_a_long_split_comes_a_page_at_a_time(pages, browser_team, monkeypatch):
    monkeypatch.setattr(explorer, "SPLIT_ROWS_PER_PAGE", 2)
    page = pages.login("owner@a.example")
    page.goto("/usage/?scope=team&split=machine")
    page.wait_for_load_state("networkidle")
    nav = page.locator("#explorer-rows-pages")
    assert page.locator(ROWS).count() == 2
    found = re.match(r"Rows 1\N{EN DASH}2 of (\d+)", nav.inner_text())
    assert found and int(found.group(1)) > 2
    total = int(found.group(1))
    first = keys(page)
    nav.get_by_role("link", name="Next").click()
    page.wait_for_url(re.compile(r".*rows_page=2.*"))
    page.wait_for_load_state("networkidle")
    # After the script redrew the table from the API: still the second page's rows.
    assert page.locator(ROWS).count() == min(2, total - 2)
    assert "Rows 3\N{EN DASH}" in nav.inner_text()
    assert not set(keys(page)) & set(first)
    screenshot(page, "explorer-split-pages")
    # New filters start at the first page again.
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function(
        "() => document.querySelector('#explorer-rows-pages span')"
        " && document.querySelector('#explorer-rows-pages span')"
        ".textContent.startsWith('Rows 1\N{EN DASH}2')"
    )
    assert keys(page) == first


def test_the_sessions_machine_menu_is_searched(pages, browser_team, monkeypatch):
    monkeypatch.setattr(dashboard_forms, "MENU_LIMIT", 2)
    workstation = Machine.objects.get(name="workstation")
    page = pages.login("owner@a.example")
    page.goto("/sessions/?scope=team")
    page.wait_for_load_state("networkidle")
    menu = page.locator("select[name=machine]")
    assert menu.locator("option").count() == 1
    page.get_by_role("searchbox", name="Search machines").fill("work")
    page.wait_for_function(
        "(id) => Array.from(document.querySelectorAll('select[name=machine] option'))"
        ".some((o) => o.value === id)",
        arg=str(workstation.uuid),
    )
    menu.select_option(str(workstation.uuid))
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(rf".*machine={workstation.uuid}.*"))
    assert menu.input_value() == str(workstation.uuid)
    screenshot(page, "sessions-machine-search")
