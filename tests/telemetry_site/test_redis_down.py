"""Redis going away mid-flight: ingest, reads and login keep working, /healthz names it."""

import logging

import pytest
from django.core.cache import cache
from django.urls import reverse

from tests.conftest import api_client, token_for
from tests.usage.ingest.helpers import USAGE_URL, envelope, fixture_reports, post

pytestmark = pytest.mark.django_db


def test_ingest_reads_and_login_keep_working_when_redis_stops(
    own_redis, client, member, fixtures_dir, caplog, mailoutbox
):
    raw = token_for(member)
    reader = api_client(raw)
    assert reader.get(USAGE_URL).status_code == 200
    assert cache.get("throttle_read_token-1:0") is None  # sanity: the cache is reachable
    assert client.get("/healthz").json()["status"] == "ok"

    own_redis.stop()
    caplog.set_level(logging.WARNING, logger="telemetry_site.cache")

    assert post(api_client(raw), envelope(fixture_reports())).status_code == 201
    for _ in range(5):
        assert reader.get(USAGE_URL).status_code == 200
    login = client.post(reverse("account_login"), {"email": member.email})
    assert login.status_code == 302
    assert len(mailoutbox) == 1

    health = client.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "degraded"
    assert set(body["failing"]) == {"broker", "cache"}
    assert body["checks"]["database"] == "ok"

    down = [r for r in caplog.records if r.name == "telemetry_site.cache"]
    assert [r.getMessage() for r in down] == [
        "cache unavailable; rate limits count in this process until it answers"
    ]


def test_throttling_still_limits_from_memory_while_redis_is_down(own_redis, member, settings):
    from rest_framework.throttling import SimpleRateThrottle

    raw = token_for(member)
    own_redis.stop()
    rates = {**SimpleRateThrottle.THROTTLE_RATES, "read": "3/minute"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    original = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = rates
    try:
        codes = [api_client(raw).get(USAGE_URL).status_code for _ in range(4)]
    finally:
        SimpleRateThrottle.THROTTLE_RATES = original
    assert codes == [200, 200, 200, 429]
