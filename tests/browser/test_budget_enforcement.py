"""Warn and stop in Claude Code, set up in headless Chromium: a budget set to stop, a project
budget that stops in its project, the quota levels, lifting a stop for a member until a time,
and the team page listing the warnings, stops and refused prompts that follow."""

from datetime import UTC, datetime, timedelta

import pytest

from budgets.enforcement import member_status, record_refusals
from budgets.models import Budget, Enforcement, EnforcementExemption, QuotaEnforcement
from tests.browser.conftest import (  # noqa: F401  (fixtures)
    browser,
    browser_team,
    pages,
    screenshot,
    skip_without_chromium,
)

pytestmark = [pytest.mark.browser, skip_without_chromium]


def submit(page, form_selector: str) -> None:
    page.click(f"{form_selector} button[type=submit]")
    page.wait_for_load_state()


def test_an_owner_sets_warn_and_stop_lifts_a_stop_and_sees_them_on_the_team_page(
    pages,  # noqa: F811
    browser_team,  # noqa: F811
):
    member = browser_team["member"]
    page = pages.login("owner@a.example")

    # A team budget that stops prompts once its (small) amount is spent.
    page.goto("/budgets/new/")
    page.fill("input[name=name]", "Team stop")
    page.check("input[name=scope][value=team]")
    page.fill("input[name=amount_usd]", "5")
    page.fill("input[name=thresholds]", "50, 80")
    page.check("input[name=enforcement][value=stop]")
    submit(page, "main form")
    page.wait_for_url("**/budgets/")
    assert Budget.objects.get(name="Team stop").enforcement == Enforcement.STOP

    # A project budget may stop too: in that project only.
    page.goto("/budgets/new/")
    page.check("input[name=scope][value=project]")
    page.fill("input[name=name]", "API server")
    page.select_option("select[name=project]", label="api-server")
    page.fill("input[name=amount_usd]", "1000")
    page.check("input[name=enforcement][value=warn]")
    submit(page, "main form")
    page.wait_for_url("**/budgets/")
    assert Budget.objects.get(name="API server").enforcement == Enforcement.WARN

    # Quota levels: a warn level above the stop level is refused with the reason ...
    page.fill("#quota-enforcement input[name=five_hour_warn_at]", "96")
    page.fill("#quota-enforcement input[name=five_hour_stop_at]", "90")
    submit(page, "#quota-enforcement")
    assert "Warn at a lower share than the stop." in page.inner_text("#quota-enforcement")
    assert not QuotaEnforcement.objects.exists()
    # ... and a sound one is kept.
    page.fill("#quota-enforcement input[name=five_hour_warn_at]", "80")
    page.fill("#quota-enforcement input[name=five_hour_stop_at]", "95")
    page.fill("#quota-enforcement input[name=seven_day_stop_at]", "100")
    submit(page, "#quota-enforcement")
    page.wait_for_url("**/budgets/")
    rules = QuotaEnforcement.objects.get()
    assert (rules.five_hour_warn_at, rules.five_hour_stop_at, rules.seven_day_stop_at) == (
        80,
        95,
        100,
    )

    # The member is over the team amount: stopped, until the owner lifts the stop for a day.
    assert member_status(member)["decision"] == "stop"
    until = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    page.select_option("#exemption-new select[name=member]", label="member@a.example")
    page.select_option("#exemption-new select[name=budget]", label="Team stop")
    page.fill("#exemption-new input[name=until]", until.strftime("%Y-%m-%dT%H:%M"))
    page.fill("#exemption-new input[name=note]", "release week")
    submit(page, "#exemption-new")
    page.wait_for_url("**/budgets/")
    assert "member@a.example" in page.inner_text("#exemptions")
    assert "release week" in page.inner_text("#exemptions")
    exemption = EnforcementExemption.objects.get()
    assert (exemption.member, exemption.budget.name, exemption.until) == (
        member,
        "Team stop",
        until,
    )
    status = member_status(member)
    lifted = next(c for c in status["checks"] if c["name"].startswith("Team stop"))
    assert (lifted["level"], lifted["exempt"]) == ("warn", True)
    screenshot(page, "budgets-enforcement")

    # Removing the exemption puts the stop back.
    page.click("#exemptions button[type=submit]")
    page.wait_for_url("**/budgets/")
    assert not EnforcementExemption.objects.exists()
    assert member_status(member)["decision"] == "stop"

    # The member's hook refused a prompt and its agent reported it.
    budget = Budget.objects.get(name="Team stop")
    record_refusals(
        member,
        [
            {
                "id": "0b8f7c5e-4d1a-4c3b-9a2e-1f0e9d8c7b6a",
                "at": datetime.now(UTC),
                "subject": f"budget:{budget.public_id}",
                "threshold": 100,
                "name": "Team stop",
                "spent_usd": "9.00",
                "cap_usd": "5.00",
            }
        ],
    )

    page.goto("/team/")
    rows = page.locator("#enforcement-events tbody tr")
    text = page.inner_text("#enforcement-events")
    assert "member@a.example" in text and "Team stop" in text
    kinds = {rows.nth(i).locator(".badge").inner_text() for i in range(rows.count())}
    assert {"Warning", "Stop", "Prompt refused"} <= kinds, kinds
    screenshot(page, "team-enforcement-events")
    # The refused quota form's 400 is the browser's only complaint, and an expected one.
    unexpected = [e for e in pages.errors if "quota-enforcement/" not in e or "400" not in e]
    assert unexpected == [], "no script errors or CSP violations"
