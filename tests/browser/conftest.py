"""Headless Chromium (Debian's package, never a downloaded one) driven by Playwright's sync API.

Tests log in through the real magic link read from the mail outbox, against pytest-django's
live server. Screenshots go to test-artifacts/screenshots/ (git-ignored).
"""

import re
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.core import mail

from accounts.models import Role
from tests.conftest import make_member
from tests.factories import (
    BudgetFactory,
    MachineFactory,
    ProjectFactory,
    daily,
    hourly,
    rate_limit,
    session,
)
from usage.analytics.blocks import recompute_blocks
from usage.models import Subscription

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

skip_without_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API keeps an event loop in this thread; Django's ORM refuses to run
        # next to one unless told the caller is synchronous, which these tests are. Only for
        # the browser tests' module, so no other test loses Django's check.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield instance
            instance.close()


class Pages:
    """Opens pages in fresh browser contexts and remembers every console error they log."""

    def __init__(self, browser, base_url: str):
        self.browser = browser
        self.base_url = base_url
        self.contexts = []
        self.errors: list[str] = []
        self.storage_state = None

    def new(self, *, color_scheme="light", viewport=LAPTOP):
        context = self.browser.new_context(
            base_url=self.base_url,
            color_scheme=color_scheme,
            viewport=viewport,
            reduced_motion="reduce",
            accept_downloads=True,
            storage_state=self.storage_state,
        )
        self.contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                message.type == "error" and self.errors.append(f"{page.url}: {message.text}")
            ),
        )
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        return page

    def login(self, email: str, **kwargs):
        """Log in the way people do: ask for a link, open it from the email, confirm."""
        page = self.new(**kwargs)
        page.goto("/accounts/login/")
        page.fill("input[name=email]", email)
        sent = len(mail.outbox)
        page.click("main form button[type=submit]")
        page.wait_for_load_state()
        assert len(mail.outbox) == sent + 1, "no login email was sent"
        body = mail.outbox[-1].body
        link = re.search(r"https?://\S+/accounts/login/link/\S+/", body)
        assert link, f"no login link in the email:\n{body}"
        page.goto(urlparse(link.group(0)).path)
        page.click("main form button[type=submit]")
        page.wait_for_url(re.compile(r".*/$"))
        self.storage_state = page.context.storage_state()
        return page

    def close(self):
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser, live_server):
    opened = Pages(browser, live_server.url)
    yield opened
    opened.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


CHART_STATE = """(id) => {
  const canvas = document.getElementById(id);
  if (!canvas || !window.Chart) return null;
  const chart = Chart.getChart(canvas);
  if (!chart) return null;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
  const values = chart.data.datasets.flatMap((d) => d.data.map(Number));
  return {
    datasets: chart.data.datasets.length,
    labels: chart.data.labels.length,
    nonzero: values.filter((v) => v > 0).length,
    painted: painted,
    names: chart.data.datasets.map((d) => d.label),
  };
}"""


def chart_state(page, canvas_id: str) -> dict:
    page.wait_for_selector(f"#{canvas_id}[data-rendered]", state="attached")
    return page.evaluate(CHART_STATE, canvas_id)


@pytest.fixture
def browser_team(transactional_db, team_a):
    """A small team with usage up to the real now (the browser's clock is not ours to move).

    The owner's laptop and desktop share one subscription and both worked in the last two
    hours (a running, overlapping block); a member has a machine of their own.
    """
    now = datetime.now(UTC)
    owner = make_member(team_a, "owner@a.example", Role.OWNER)
    member = make_member(team_a, "member@a.example", Role.MEMBER)
    projects = [
        ProjectFactory(team=team_a, key=f"-home-dev-src-{name}", display_name=name)
        for name in ("webapp", "api-server", "infra")
    ]
    models = ("claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101")
    machines = {
        "laptop": MachineFactory(owner=owner, name="laptop"),
        "desktop": MachineFactory(owner=owner, name="desktop"),
        "workstation": MachineFactory(owner=member, name="workstation"),
    }
    for index, machine in enumerate(machines.values()):
        for offset in range(20):
            day = (now - timedelta(days=offset)).date()
            project = projects[(index + offset) % len(projects)]
            daily(
                machine,
                day,
                project=project,
                model=models[offset % 2],
                tokens=200_000 + 10_000 * offset * (index + 1),
                cost=str(Decimal("1.25") + Decimal(offset % 5) * (index + 1)),
            )
            session(
                machine,
                project=project,
                last_activity=now - timedelta(days=offset, hours=index),
                tokens=90_000,
                cost="0.90",
            )
        hour = now.replace(minute=0, second=0, microsecond=0)
        for back in (1, 0):
            hourly(machine, hour - timedelta(hours=back), minutes=min(now.minute, 50))
    owner_sub = Subscription.default_for(owner)
    recompute_blocks(owner_sub.pk)
    recompute_blocks(Subscription.default_for(member).pk)
    rate_limit(
        owner_sub, machines["laptop"], now - timedelta(minutes=3), five_hour=64, seven_day=31
    )
    BudgetFactory(team=team_a, name="Team monthly", amount_usd=Decimal("400"))
    return {"owner": owner, "member": member, "machines": machines, "projects": projects}
