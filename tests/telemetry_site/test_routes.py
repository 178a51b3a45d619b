"""Route inventory: every URL of the project is public on purpose or needs a login.

The test walks the live URL resolver, so pages and endpoints added later by any app are checked
too. A new public URL must be added to PUBLIC below, deliberately.
"""

import re
import uuid
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern

pytestmark = pytest.mark.django_db

# URL names that anyone may open, and why.
PUBLIC = {
    "healthz": "load balancers probe it",
    "account_login": "the login page",
    "account_request_login_code": "redirects to the login page",
    "account_confirm_login_code": "the 'check your email' page of the browser that asked",
    "login_link": "the magic link's confirm page",
    "account_logout": "logging out needs no login",
    "account_inactive": "says an account is inactive",
    "admin:login": "redirects to the magic-link login",
    "admin:logout": "logging out needs no login (anonymous visitors go to the admin index)",
    "api-schema": "the OpenAPI schema is public documentation",
    "api-docs": "the API documentation page",
    "api-not-found": "an unknown API path: the same JSON 404 for everyone, nothing behind it",
    "agent_wheel": "the agent's wheel (open code only) for `pipx install <url>`, fetched by pip",
    "report_unsubscribe": "a report email's one-click unsubscribe: the signed token is the key",
}

SAMPLE_VALUES = ["1", str(uuid.UUID(int=1)), "x", "accounts", "user", "2026-01-01", "json"]


@dataclass
class Route:
    name: str
    path: str
    pattern: str


def _named_group_samples(regex: str) -> str | None:
    """Fill a URL regex's named groups with sample values and drop regex syntax."""

    def fill(match: re.Match) -> str:
        group = match.group(0)
        inner = re.match(r"\(\?P<\w+>(.*)\)$", group).group(1)
        for value in SAMPLE_VALUES:
            if re.fullmatch(inner, value):
                return value
        raise LookupError(group)

    try:
        # Named groups without nested parentheses, which is what URL patterns use.
        text = re.sub(r"\(\?P<\w+>(?:[^()]|\([^()]*\))*\)", fill, regex)
    except LookupError:
        return None
    text = text.lstrip("^").rstrip("$").replace("\\Z", "")
    text = re.sub(r"(.)\?", r"\1", text)  # optional characters: take them
    return text.replace("\\", "")


def _route_samples(route: RoutePattern) -> str | None:
    text = str(route)
    for name, converter in route.converters.items():
        for value in SAMPLE_VALUES:
            if re.fullmatch(converter.regex, value):
                text = re.sub(rf"<(?:\w+:)?{name}>", value, text)
                break
        else:
            return None
    return text


def _sample(pattern) -> str | None:
    if isinstance(pattern, RoutePattern):
        return _route_samples(pattern)
    if isinstance(pattern, RegexPattern):
        return _named_group_samples(pattern.regex.pattern)
    return None


def all_routes(resolver=None, prefix="", namespace="") -> list[Route]:
    resolver = resolver or get_resolver()
    routes = []
    for entry in resolver.url_patterns:
        piece = _sample(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            routes += all_routes(entry, prefix + (piece if piece is not None else "<?>"), ns)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else ""
            path = "/" + prefix + piece if piece is not None else ""
            routes.append(Route(name=name, path=path, pattern=prefix + str(entry.pattern)))
    return routes


def test_every_route_has_a_sample_url_that_resolves_to_it():
    for route in all_routes():
        assert route.path and "<?>" not in route.path, f"no sample URL for {route.pattern}"
        match = resolve(route.path)
        if route.name:
            assert match.view_name == route.name or route.name.endswith(":" + match.url_name), (
                f"{route.path} resolves to {match.view_name}, not {route.name}"
            )


def test_the_public_list_names_only_existing_routes():
    names = {route.name for route in all_routes()}
    assert set(PUBLIC) <= names, set(PUBLIC) - names


def _needs_login(response) -> bool:
    if response.status_code in (401, 403):
        return True
    if response.status_code == 302:
        location = response["Location"]
        return location.startswith(("/accounts/login/", "/admin/login/"))
    return False


@pytest.mark.parametrize("route", all_routes(), ids=lambda r: r.name or r.pattern)
def test_every_route_is_public_on_purpose_or_needs_a_login(route):
    client = Client()
    response = client.get(route.path)
    if response.status_code == 405:
        response = client.post(route.path)
    if route.name in PUBLIC:
        assert response.status_code < 500, f"{route.path}: {response.status_code}"
        return
    assert _needs_login(response), (
        f"{route.path} ({route.name or route.pattern}) answered {response.status_code} to an "
        "anonymous visitor; require a login or add it to PUBLIC with a reason"
    )


def test_api_endpoints_answer_401_not_a_login_page():
    api_routes = [r for r in all_routes() if r.path.startswith("/api/v1/") and r.name not in PUBLIC]
    for route in api_routes:
        response = Client().get(route.path, HTTP_ACCEPT="application/json")
        if response.status_code == 405:
            response = Client().post(route.path)
        assert response.status_code in (401, 403), f"{route.path}: {response.status_code}"
