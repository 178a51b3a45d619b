"""Helpers for the accounts tests: asking for a login email and reading the link and code in it."""

import re
from urllib.parse import urlparse

import pytest
from django.urls import reverse

LINK_RE = re.compile(r"https?://\S+/accounts/login/link/\S+/")
CODE_RE = re.compile(r"Or type this code in the browser where you asked:\s+(\S+)")


def ask_for_link(client, email: str, next_url: str | None = None, **extra):
    url = reverse("account_login")
    data = {"email": email}
    if next_url is not None:
        data["next"] = next_url
    return client.post(url, data, **extra)


def link_path(message) -> str:
    match = LINK_RE.search(message.body)
    assert match, f"no login link in: {message.body}"
    return urlparse(match.group(0)).path


def code_in(message) -> str:
    match = CODE_RE.search(message.body)
    assert match, f"no code in: {message.body}"
    return match.group(1)


@pytest.fixture
def login_by_link(client, mailoutbox):
    """Ask for a link for `email` and confirm it; returns the final response."""

    def run(email: str, next_url: str | None = None):
        ask_for_link(client, email, next_url)
        path = link_path(mailoutbox[-1])
        return client.post(path)

    return run
