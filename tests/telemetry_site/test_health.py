"""The health endpoint tells a load balancer whether the database, broker and cache answer."""

import pytest
from django.test import override_settings


@pytest.mark.django_db
def test_healthz_is_ok_when_database_broker_and_cache_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "cache": "ok"}


@pytest.mark.django_db
def test_healthz_names_an_unreachable_broker_and_stays_up(client):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["failing"] == ["broker"]
    assert body["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_healthz_names_a_stopped_redis_as_broker_and_cache(client, own_redis):
    assert client.get("/healthz").json()["checks"]["cache"] == "ok"
    own_redis.stop()
    body = client.get("/healthz").json()
    assert body["failing"] == ["broker", "cache"]
    assert body["checks"]["cache"].startswith("unavailable: ")


@pytest.mark.django_db
def test_healthz_is_503_when_the_database_is_down(client, monkeypatch):
    from telemetry_site import health

    def refused() -> None:
        raise OSError("connection refused")

    monkeypatch.setattr(health, "_check_database", refused)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["failing"] == ["database"]
