"""The OpenAPI schema tells the truth: fuzzed requests get documented answers, never a 500."""

from contextlib import contextmanager

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import api_client, token_for
from tests.usage.ingest.helpers import envelope, fixture_reports, post

pytestmark = pytest.mark.django_db

# Every endpoint: its body and its query parameters.
OUR_PATHS = r"^/api/v1/"
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@contextmanager
def connection_kept():
    """Requests go through the real WSGI handler, which recycles the database connection; in
    the test's transaction that would drop it (Django's own test client does the same)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(db, owner, member):
    with connection_kept():
        return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def owner_token(owner, fixtures_dir):
    raw = token_for(owner)
    # Some real data, so list and detail views answer with full bodies too.
    assert post(api_client(raw), envelope(fixture_reports())).status_code == 201
    return raw


schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex=OUR_PATHS)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_fuzzed_requests_as_its_schema_says(case, owner_token):
    with connection_kept():
        case.call_and_validate(headers={"Authorization": f"Bearer {owner_token}"}, checks=CHECKS)


def test_the_schema_documents_every_endpoint_and_error_body(client):
    document = client.get("/api/schema/?format=json").json()
    paths = document["paths"]
    for path in (
        "/api/v1/ingest/",
        "/api/v1/usage/",
        "/api/v1/machines/",
        "/api/v1/machines/{uuid}/",
        "/api/v1/sessions/",
        "/api/v1/projects/",
        "/api/v1/projects/{public_id}/",
    ):
        assert path in paths
    ingest = paths["/api/v1/ingest/"]["post"]
    assert set(ingest["responses"]) >= {"200", "201", "400", "401", "403", "409", "413", "429"}
    assert "Retry-After" in ingest["responses"]["429"]["headers"]
    assert ingest["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/EnvelopeRequest"
    )
    assert set(paths["/api/v1/usage/"]["get"]["responses"]) >= {"200", "400", "401", "403", "404"}
    assert document["components"]["securitySchemes"]["apiToken"]["scheme"] == "bearer"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_docs_page_renders_from_local_files_under_the_strict_csp(live_server):
    playwright = pytest.importorskip("playwright.sync_api")
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with playwright.sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        except Exception as exc:  # no browser installed here
            pytest.skip(f"headless Chromium unavailable: {exc}")
        page = browser.new_page()
        requests, errors = [], []
        page.on("request", lambda request: requests.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(live_server.url + "/api/docs/")
        page.get_by_text("Send a machine's ccusage reports").wait_for(timeout=15_000)
        browser.close()
    assert not errors
    assert requests and all(url.startswith(live_server.url) for url in requests)
