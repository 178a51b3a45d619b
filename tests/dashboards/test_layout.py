"""The base layout: navigation to every area by role, times in the viewer's zone, CSP-safe."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from tests.conftest import login
from tests.dashboards.conftest import NOW

pytestmark = pytest.mark.django_db

EVERYONE = [
    "overview",
    "usage_explorer",
    "blocks",
    "sessions",
    "machines",
    "projects",
    "team_dashboard",
    "budgets",
    "profile",
    "tokens",
    "subscriptions",
]
ADMINS_ONLY = ["team_settings", "team_members", "channels"]
PAGES = ["/", "/usage/", "/blocks/", "/sessions/", "/machines/", "/projects/", "/team/"]


def nav_links(html: str) -> set[str]:
    nav = re.search(r'<nav id="site-nav".*?</nav>', html, re.S).group(0)
    return set(re.findall(r'href="([^"]+)"', nav))


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_get_a_link_to_every_area(populated, cast, role):
    links = nav_links(login(cast[role]).get("/").content.decode())
    assert {reverse(name) for name in EVERYONE + ADMINS_ONLY} <= links


def test_members_get_no_link_to_admin_settings(populated, member):
    links = nav_links(login(member).get("/").content.decode())
    assert {reverse(name) for name in EVERYONE} <= links
    assert not {reverse(name) for name in ADMINS_ONLY} & links


@pytest.mark.parametrize("url", PAGES)
def test_each_page_marks_itself_current_and_has_no_inline_script_or_style(populated, owner, url):
    html = login(owner).get(url).content.decode()
    assert html.count('aria-current="page"') >= 1
    assert "style=" not in html
    # Only external scripts and JSON data blocks: the CSP allows nothing inline.
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag


def test_times_are_shown_in_the_viewers_own_timezone(populated, member):
    member.timezone = "Asia/Tokyo"
    member.save()
    latest = NOW - timedelta(hours=1)  # the member's newest session, 14:30 UTC
    with time_machine.travel(NOW, tick=False):
        html = login(member).get("/sessions/").content.decode()
    assert f'datetime="{latest:%Y-%m-%dT%H:%M:%S}Z"' in html
    assert "Nov 24, 23:30" in html  # 14:30 UTC is 23:30 in Tokyo
    assert "Times are shown in Asia/Tokyo" in html


@pytest.mark.parametrize(
    ("url", "text"),
    [
        ("/", "No usage yet"),
        ("/usage/", "No usage yet"),
        ("/blocks/", "No blocks yet"),
        ("/sessions/", "No sessions yet"),
        ("/machines/", "Add your first machine"),
        ("/team/", "You are not in a team yet"),
    ],
)
def test_a_user_outside_any_team_gets_working_empty_pages(db, url, text):
    from accounts.models import User

    # An operator: staff without a team may log in (accounts.login.is_admitted).
    loner = User.objects.create_user("operator@example.com", is_staff=True)
    response = login(loner).get(url)
    assert response.status_code == 200
    assert text in response.content.decode()


def test_a_team_without_usage_says_how_to_get_data_in(member):
    html = login(member).get("/team/").content.decode()
    assert "No team usage yet" in html
    assert "/machines/#onboarding" in html
