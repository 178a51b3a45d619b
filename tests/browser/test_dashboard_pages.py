"""Every dashboard page in headless Chromium: login by magic link, no console errors, charts
drawn with data, filters that change the chart and the table, a CSV equal to the table, and
screenshots in light and dark mode, on a laptop and a phone."""

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest

from tests.browser.conftest import LAPTOP, PHONE, chart_state, screenshot, skip_without_chromium

pytestmark = [pytest.mark.browser, skip_without_chromium]

# Page, address, and the charts it must draw (a chart-less page still gets screenshots).
PAGES = [
    ("overview", "/", ["daily-chart", "machine-chart"]),
    ("overview-team", "/?scope=team", ["daily-chart", "machine-chart"]),
    ("usage", "/usage/", ["explorer-chart"]),
    ("blocks", "/blocks/", ["blocks-chart"]),
    ("sessions", "/sessions/", []),
    ("machines", "/machines/", []),
    ("projects", "/projects/", []),
    ("team", "/team/", ["members-chart"]),
]
MODES = [
    ("light", {"color_scheme": "light", "viewport": LAPTOP}),
    ("dark", {"color_scheme": "dark", "viewport": LAPTOP}),
    ("phone", {"color_scheme": "light", "viewport": PHONE}),
    ("phone-dark", {"color_scheme": "dark", "viewport": PHONE}),
]


def test_a_member_logs_in_through_the_magic_link(pages, browser_team):
    page = pages.login("member@a.example")
    assert page.url.endswith("/")
    assert page.locator("h1").inner_text() == "Overview"
    assert "member@a.example" in page.locator(".who").inner_text()
    assert pages.errors == []


def test_every_page_renders_with_its_charts_in_every_mode(pages, browser_team):
    pages.login("owner@a.example")
    for mode, options in MODES:
        page = pages.new(**options)
        for name, url, charts in PAGES:
            response = page.goto(url)
            assert response.status == 200, f"{url} answered {response.status}"
            page.wait_for_load_state("networkidle")
            for canvas in charts:
                state = chart_state(page, canvas)
                assert state is not None, f"{url}: no chart on #{canvas}"
                assert state["nonzero"] > 0, f"{url}: #{canvas} has no data"
                assert state["painted"] > 0, f"{url}: #{canvas} drew nothing"
            screenshot(page, f"{name}-{mode}")
        page.context.close()
    assert pages.errors == []


def test_the_phone_menu_opens_and_closes(pages, browser_team):
    pages.login("owner@a.example")
    page = pages.new(viewport=PHONE)
    page.goto("/machines/")
    toggle = page.locator(".nav-toggle")
    nav = page.locator("#site-nav")
    assert toggle.is_visible()
    assert not nav.is_visible()
    toggle.click()
    assert nav.is_visible()
    assert toggle.get_attribute("aria-expanded") == "true"
    screenshot(page, "menu-phone-open")
    toggle.click()
    assert not nav.is_visible()
    wide = pages.new(viewport=LAPTOP)
    wide.goto("/machines/")
    assert not wide.locator(".nav-toggle").is_visible()
    assert wide.locator("#site-nav").is_visible()
    assert wide.locator('#site-nav a[aria-current="page"]').inner_text() == "Machines"
    assert pages.errors == []


def table_rows(page) -> list[dict]:
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('#explorer-table tbody tr')).map((tr) => ({
            key: tr.dataset.key,
            label: tr.querySelector('th').innerText,
            tokens: tr.cells[5].dataset.sort,
            cost: tr.cells[6].dataset.sort,
        }))"""
    )


def apply_filters(page, **values):
    # The first drawing (from the page's own address) must be done before the filters change.
    page.wait_for_selector("#explorer-status:not([aria-busy])", state="attached")
    for name, value in values.items():
        page.select_option(f"#filters [name={name}]", value)
    with page.expect_response(lambda r: "/api/v1/usage/" in r.url):
        page.click("#filters button[type=submit]")
    # explorer.js marks the status busy until the table and the chart are both redrawn.
    page.wait_for_selector("#explorer-status:not([aria-busy])", state="attached")


def test_explorer_filters_change_the_chart_and_the_table(pages, browser_team):
    pages.login("owner@a.example")
    page = pages.new()
    page.goto("/usage/")
    page.wait_for_load_state("networkidle")
    before = chart_state(page, "explorer-chart")
    assert before["names"] == ["All usage"]
    # One row per day of the last 30, the 10 without usage as zeros (the team has 20 days).
    rows = table_rows(page)
    assert len(rows) == 30
    assert sum(1 for r in rows if r["tokens"] == "0") == 10
    total_before = page.locator("#explorer-total-cost").inner_text()

    apply_filters(page, split="project")
    after = chart_state(page, "explorer-chart")
    assert sorted(after["names"]) == ["api-server", "infra", "webapp"]
    assert after["nonzero"] > 0
    rows = table_rows(page)
    assert sorted(r["label"] for r in rows) == ["api-server", "infra", "webapp"]
    assert page.locator("#explorer-table-title").inner_text() == "By project"
    assert "split=project" in page.url
    assert page.locator("#explorer-total-cost").inner_text() == total_before

    laptop = browser_team["machines"]["laptop"]
    apply_filters(page, machine=str(laptop.uuid))
    narrowed = page.locator("#explorer-total-cost").inner_text()
    assert narrowed != total_before
    assert Decimal(narrowed.strip("$").replace(",", "")) < Decimal(
        total_before.strip("$").replace(",", "")
    )

    page.select_option("#explorer-metric", "tokens")
    tokens_state = chart_state(page, "explorer-chart")
    assert tokens_state["nonzero"] > 0
    screenshot(page, "usage-filtered-light")
    assert pages.errors == []


def test_the_csv_download_matches_the_table(pages, browser_team):
    pages.login("owner@a.example")
    page = pages.new()
    page.goto("/usage/?scope=team&split=machine")
    page.wait_for_load_state("networkidle")
    apply_filters(page, split="model")
    rows = table_rows(page)
    assert len(rows) == 2
    with page.expect_download() as download:
        page.click("#explorer-csv")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0][0] == "model"
    body = lines[1:-1]
    assert [line[1] for line in body] == [r["key"] for r in rows]
    assert [line[0] for line in body] == [r["label"] for r in rows]
    assert [int(line[6]) for line in body] == [int(r["tokens"]) for r in rows]
    assert [Decimal(line[7]) for line in body] == [
        Decimal(r["cost"]).quantize(Decimal("0.01")) for r in rows
    ]
    assert pages.errors == []


def test_tables_sort_when_a_header_is_pressed(pages, browser_team):
    pages.login("owner@a.example")
    page = pages.new()
    page.goto("/sessions/?scope=team")
    header = page.locator("#sessions-table thead th").nth(7)
    header.locator("button").click()
    costs = page.eval_on_selector_all(
        "#sessions-table tbody tr", "rows => rows.map(r => Number(r.cells[7].dataset.sort))"
    )
    assert costs == sorted(costs)
    assert header.get_attribute("aria-sort") == "ascending"
    header.locator("button").press("Enter")
    assert header.get_attribute("aria-sort") == "descending"
    assert pages.errors == []


def test_a_machine_is_renamed_from_its_card(pages, browser_team):
    pages.login("member@a.example")
    page = pages.new()
    page.goto("/machines/")
    card = page.locator(".machine").filter(has_text="workstation")
    card.locator("summary", has_text="Rename").click()
    card.locator("input[name=name]").fill("studio")
    card.locator("button", has_text="Rename").click()
    page.wait_for_load_state()
    assert "Renamed “workstation” to “studio”." in page.locator(".messages").inner_text()
    assert page.locator(".machine-name").all_inner_texts() == ["studio"]
    assert pages.errors == []
