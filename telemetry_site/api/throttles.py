"""Request rates per API token (per user for browser sessions): `ingest` and `read` scopes,
rates from settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]."""

from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
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
