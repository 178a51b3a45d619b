"""Request rates per API token (per user for browser sessions): `ingest` and `read` scopes, and
failed authentications per client; rates from settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].

Counting is one atomic `cache.incr` per request in a fixed window, so parallel requests cannot
all read the same count and pass together (DRF's default keeps a list it reads, then writes).
"""

from rest_framework.throttling import SimpleRateThrottle


def count_hit(cache, key: str, seconds: int) -> int:
    """Add one to the counter `key` (created for `seconds`) and return the new count, atomically
    where the cache's `incr` and `add` are (Redis, local memory)."""
    try:
        return cache.incr(key)
    except ValueError:  # the window's first request
        pass
    if cache.add(key, 1, seconds + 1):
        return 1
    try:
        return cache.incr(key)  # another request created it a moment ago
    except ValueError:
        cache.set(key, 1, seconds + 1)
        return 1


class WindowRateThrottle(SimpleRateThrottle):
    """A fixed-window counter: at most `num_requests` per `duration` seconds per cache key."""

    # Set by SimpleRateThrottle.__init__ from the rate (the stubs leave them out).
    num_requests: int
    duration: int
    _wait: float | None = None

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        count = count_hit(self.cache, f"{self.key}:{window}", self.duration)
        if count <= self.num_requests:
            self._wait = None
            return True
        self._wait = (window + 1) * self.duration - now
        return False

    def wait(self) -> float | None:
        """Seconds until the window ends (the Retry-After of the 429)."""
        return self._wait


class TokenRateThrottle(WindowRateThrottle):
    """Counts requests per API token (per user for browser sessions)."""

    def get_cache_key(self, request, view):
        # Token authentication sets request.auth to the token row; a session sets None.
        if request.auth is not None and getattr(request.auth, "pk", None) is not None:
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IngestThrottle(TokenRateThrottle):
    scope = "ingest"


class ReadThrottle(TokenRateThrottle):
    scope = "read"


class FailedAuthThrottle(WindowRateThrottle):
    """Failed token authentications per client address (scope `auth_failed`).

    The authentication class calls `record(request)` after each failure; past the rate the
    failure is answered 429 with Retry-After instead of 401. A valid token is never refused.
    """

    scope = "auth_failed"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    @classmethod
    def record(cls, request) -> float | None:
        """Count one failure; the seconds to wait when this client is over the rate, else None."""
        throttle = cls()
        if throttle.allow_request(request, None):
            return None
        return throttle.wait()
