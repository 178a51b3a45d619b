"""Fixtures for the site tests: a Redis of our own that a test may stop."""

from tests.telemetry_site.redis_server import own_redis  # noqa: F401 (fixture)
