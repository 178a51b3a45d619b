"""The explorer's searched menus in the browser: typing finds a colleague's machine, choosing
it and applying shows its figures, and a machine split names machines the page did not list."""

import re
from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from dashboards import forms as dashboard_forms
from telemetry_site.formatting import usd
from tests.browser.conftest import screenshot, skip_without_chromium
from usage.models import DailyUsage, Machine

pytestmark = [pytest.mark.browser, skip_without_chromium]


def test_a_long_machine_menu_is_searched_and_its_choice_applied(pages, browser_team, monkeypatch):
    # Past two options a menu is a search: the same page a 3,000-machine team gets.
    monkeypatch.setattr(dashboard_forms, "MENU_LIMIT", 2)
    workstation = Machine.objects.get(name="workstation")
    page = pages.login("owner@a.example")
    page.goto("/usage/?scope=team")
    page.wait_for_load_state("networkidle")
    menu = page.locator("select[name=machine]")
    assert menu.get_attribute("data-search") == "/usage/search/machine/"
    assert menu.locator("option").count() == 1
    search = page.get_by_role("searchbox", name="Search machines")
    search.fill("work")
    label = "workstation (member@a.example)"
    page.wait_for_function(
        "(text) => Array.from(document.querySelectorAll('select[name=machine] option'))"
        ".some((o) => o.textContent === text)",
        arg=label,
    )
    menu.select_option(str(workstation.uuid))
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(rf".*machine={workstation.uuid}.*"))
    today = timezone.localdate()
    cost = DailyUsage.objects.filter(
        machine=workstation, day__gte=today - timedelta(days=29), day__lte=today
    ).aggregate(cost=Sum("cost_usd"))["cost"]
    page.wait_for_function(
        "(text) => document.getElementById('explorer-total-cost').textContent === text",
        arg=usd(cost),
    )
    # The chosen machine stays in the menu (and in the address) after a reload.
    page.reload()
    page.wait_for_load_state("networkidle")
    assert menu.input_value() == str(workstation.uuid)
    assert menu.locator("option:checked").inner_text() == label
    screenshot(page, "explorer-machine-search")

    # A split by machine names rows the page never listed, with their owner, by asking the
    # search for their labels.
    page.goto("/usage/?scope=team")
    page.wait_for_load_state("networkidle")
    page.locator("select[name=split]").select_option("machine")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_function(
        "(text) => Array.from(document.querySelectorAll('#explorer-table tbody th'))"
        ".some((th) => th.textContent === text)",
        arg=label,
    )
    rows = page.locator("#explorer-table tbody th").all_inner_texts()
    assert sorted(rows) == ["desktop", "laptop", label]
    assert pages.errors == []
