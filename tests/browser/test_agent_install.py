"""Adding a machine from the machines page in headless Chromium: the token button, the install
and setup commands with the server's address and the new token, and their copy buttons, on a
laptop and on a phone in dark mode."""

import re

import pytest

from accounts.models import ApiToken, hash_token
from tests.browser.conftest import PHONE, screenshot, skip_without_chromium

pytestmark = [pytest.mark.browser, skip_without_chromium]


@pytest.fixture(autouse=True)
def own_var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path  # the wheel is built here, not in the developer's var/


@pytest.mark.parametrize(
    "look", [{}, {"color_scheme": "dark", "viewport": PHONE}], ids=["laptop", "phone-dark"]
)
def test_a_member_adds_a_machine_with_commands_they_can_copy(pages, browser_team, look):
    pages.login("member@a.example")
    page = pages.new(**look)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=pages.base_url)
    page.goto("/machines/")
    page.get_by_text("Add a machine").click()
    install = page.locator("#install-cmd")
    assert re.fullmatch(r"pipx install http://\S+/agent/claude_telemetry-[\d.]+-py3-none-any\.whl",
                        install.inner_text())  # fmt: skip
    page.get_by_role("button", name="Create a token for a new machine").click()
    page.wait_for_load_state()

    setup = page.locator("#setup-cmd").inner_text()
    raw = setup.split("--token ", 1)[1].strip()
    (token,) = ApiToken.objects.filter(user__email="member@a.example")
    assert hash_token(raw) == token.token_hash and token.scopes == ["ingest"]
    assert setup.startswith("claude-telemetry setup --server http")
    button = page.locator("button[data-copy=setup-cmd]")
    assert button.is_visible()
    button.click()
    assert page.evaluate("navigator.clipboard.readText()") == setup
    page.locator("button[data-copy=install-cmd]").click()
    assert page.evaluate("navigator.clipboard.readText()") == install.inner_text()
    # Long commands scroll inside their box; the page itself keeps the screen's width.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"]
    screenshot(page, "add-machine-phone-dark" if look else "add-machine-laptop")
    assert pages.errors == []
