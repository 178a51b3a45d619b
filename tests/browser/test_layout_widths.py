"""Widths people use: on a 390 px phone no page is wider than the screen (tables scroll inside
their card, charts stay in theirs), and on laptops from 960 to 1366 px the header is one row
that fits the window (Log out included), in light and dark mode; staff see the Admin link."""

import pytest

from tests.browser.conftest import screenshot, skip_without_chromium

pytestmark = [pytest.mark.browser, skip_without_chromium]

PHONE = {"width": 390, "height": 844}
LAPTOP_1366 = {"width": 1366, "height": 768}
# Common laptop and small-window widths just above the 60rem (960 px) one-row breakpoint.
LAPTOPS = [960, 1000, 1024, 1366]
PAGES = [
    ("overview", "/"),
    ("overview-team", "/?scope=team"),
    ("usage", "/usage/?scope=team&split=member"),
    ("blocks", "/blocks/?scope=team"),
    ("sessions", "/sessions/?scope=team"),
    ("team", "/team/"),
    ("machines", "/machines/"),
    ("projects", "/projects/"),
]

WIDTHS = """() => ({
  scroll: document.documentElement.scrollWidth,
  inner: window.innerWidth,
  wide: Array.from(document.querySelectorAll("main *"))
    .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1
      && !el.closest(".table-wrap"))
    .slice(0, 5)
    .map((el) => el.tagName + "." + el.className + "#" + el.id),
})"""

HEADER = """() => {
  const header = document.querySelector(".site-header");
  const selector = ".brand, .nav-links > li, .nav-more > summary, .logout";
  const items = Array.from(header.querySelectorAll(selector))
    .filter((el) => el.checkVisibility());
  const tops = items.map((el) => Math.round(el.getBoundingClientRect().top));
  return {
    height: header.getBoundingClientRect().height,
    spread: Math.max(...tops) - Math.min(...tops),
    tops: tops,
    scroll: document.documentElement.scrollWidth,
    inner: window.innerWidth,
    logout: document.querySelector(".logout button").getBoundingClientRect().right,
  };
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_page_is_wider_than_a_phone(pages, browser_team, scheme):
    pages.login("owner@a.example")
    page = pages.new(color_scheme=scheme, viewport=PHONE)
    for name, url in PAGES:
        assert page.goto(url).status == 200
        page.wait_for_load_state("networkidle")
        widths = page.evaluate(WIDTHS)
        screenshot(page, f"width-390-{name}-{scheme}")
        assert widths["scroll"] <= widths["inner"], f"{url} is {widths['scroll']} px: {widths}"
    assert pages.errors == []


@pytest.mark.parametrize("width", LAPTOPS)
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_header_is_one_row_on_a_laptop(pages, browser_team, scheme, width):
    owner = browser_team["owner"]
    # The widest header: an owner's settings links and the staff Admin link.
    owner.is_staff = True
    owner.save()
    pages.login("owner@a.example")
    page = pages.new(color_scheme=scheme, viewport={**LAPTOP_1366, "width": width})
    for _name, url in PAGES:
        assert page.goto(url).status == 200
        header = page.evaluate(HEADER)
        # One row: every item's top within a line's height of the others.
        assert header["spread"] < 20, f"{url}: the header wraps: {header}"
        assert header["height"] < 64, f"{url}: the header is {header['height']} px high: {header}"
        assert header["scroll"] <= header["inner"], f"{url} scrolls sideways: {header}"
        assert header["logout"] <= header["inner"], f"{url}: Log out is cut off: {header}"
    screenshot(page, f"width-{width}-header-{scheme}")
    admin = page.get_by_role("link", name="Admin", exact=True)
    assert admin.get_attribute("href") == "/admin/"
    assert pages.errors == []


def test_a_member_who_is_not_staff_sees_no_admin_link_and_is_told_at_admin(pages, browser_team):
    page = pages.login("member@a.example")
    assert page.get_by_role("link", name="Admin", exact=True).count() == 0
    response = page.goto("/admin/")
    assert response.status == 403
    assert "staff account" in page.locator("main").inner_text()
    # The browser logs the 403 itself as a failed load; nothing else may be logged.
    assert [e for e in pages.errors if "403 (Forbidden)" not in e] == []
