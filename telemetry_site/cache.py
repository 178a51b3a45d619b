"""The Redis cache with a local fallback: rate limits and throttles keep working when Redis is down.

Only counters live in this cache (DRF throttles, allauth's login rate limits); losing them for a
while costs precision, never data. While Redis does not answer, each process counts in its own
memory, says so once in the log, and tries Redis again every `RETRY_SECONDS`.
"""

import logging
import threading
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# What a Redis that went away raises (connection refused, reset, timed out).
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)
RETRY_SECONDS = 15.0


class FallbackRedisCache(RedisCache):
    """RedisCache that answers from this process's memory while Redis is unreachable.

    State changes are logged once each way ("unavailable", "answers again"), not per call.
    Set OPTIONS socket timeouts short (settings does): a hung Redis must not stall requests.
    """

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._local = LocMemCache(f"fallback-{id(self)}", {"TIMEOUT": params.get("TIMEOUT", 300)})
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0

    @property
    def degraded(self) -> bool:
        """True while calls are answered from the local fallback."""
        return self._down_since is not None

    def ping(self) -> None:
        """Ask Redis itself (not the fallback); raises what the client raises when it is down."""
        # RedisCache._cache is the client wrapper (a cached_property the stubs leave out).
        self._cache.get_client(write=False).ping()  # type: ignore[attr-defined]

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        if self._down_since is not None and now < self._retry_at:
            return getattr(self._local, name)(*args, **kwargs)
        try:
            result = getattr(super(), name)(*args, **kwargs)
        except UNAVAILABLE as exc:
            with self._lock:
                self._retry_at = now + RETRY_SECONDS
                if self._down_since is None:
                    self._down_since = now
                    log.warning(
                        "cache unavailable; rate limits count in this process until it answers",
                        extra={"error": f"{type(exc).__name__}: {exc}"},
                    )
            return getattr(self._local, name)(*args, **kwargs)
        if self._down_since is not None:
            with self._lock:
                if self._down_since is not None:
                    log.warning(
                        "cache answers again",
                        extra={"down_seconds": round(now - self._down_since, 1)},
                    )
                    self._down_since = None
        return result

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", key, value, timeout, version)

    def get(self, key, default=None, version=None):
        return self._call("get", key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", key, value, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", key, timeout, version)

    def delete(self, key, version=None):
        return self._call("delete", key, version)

    def get_many(self, keys, version=None):
        return self._call("get_many", keys, version)

    def has_key(self, key, version=None):
        return self._call("has_key", key, version)

    def incr(self, key, delta=1, version=None):
        return self._call("incr", key, delta, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", data, timeout, version)

    def delete_many(self, keys, version=None):
        return self._call("delete_many", keys, version)

    def clear(self):
        return self._call("clear")
