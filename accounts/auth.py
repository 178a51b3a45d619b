"""DRF authentication by `Authorization: Bearer cct_…` (scopes are checked by
telemetry_site.api.permissions).

A token works only while its owner may log in (accounts.login.is_admitted): deactivating the
user or removing their allow-list entry stops every token they own, without touching the rows.
"""

import hmac
import logging

from rest_framework import authentication, exceptions

from accounts.login import client_ip, is_admitted
from accounts.models import ApiToken, hash_token, is_well_formed_token
from telemetry_site.api.throttles import FailedAuthThrottle

log = logging.getLogger(__name__)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        try:
            return self._authenticate(request, header)
        except exceptions.AuthenticationFailed:
            # Guessing tokens costs a 429 per client address past the rate, not endless 401s.
            wait = FailedAuthThrottle.record(request)
            if wait is not None:
                raise exceptions.Throttled(wait) from None
            raise

    def _authenticate(self, request, header: str):
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer cct_…'.")
        raw = parts[1]
        # Shape first: a malformed token costs no query.
        if not is_well_formed_token(raw):
            raise exceptions.AuthenticationFailed("Malformed API token.")
        digest = hash_token(raw)
        token = (
            ApiToken.objects.select_related("user", "user__membership")
            .filter(token_hash=digest)
            .first()
        )
        # The index found the row; compare anyway in constant time as a second guard.
        if token is None or not hmac.compare_digest(token.token_hash, digest):
            raise exceptions.AuthenticationFailed("Unknown API token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API token was revoked.")
        if token.is_expired:
            raise exceptions.AuthenticationFailed("This API token has expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The owner of this API token is deactivated.")
        if not is_admitted(token.user):
            log.info("token refused: owner not allow-listed", extra={"token": token.pk})
            raise exceptions.AuthenticationFailed(
                "The owner of this API token is no longer on the team's allow-list."
            )
        token.touch(client_ip(request))
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword
