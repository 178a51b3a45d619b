"""Per-request bookkeeping for the viewer: still admitted, their timezone, their last activity."""

import logging
import zoneinfo

from django.contrib.auth import logout
from django.utils import timezone

from accounts.login import is_admitted

log = logging.getLogger(__name__)


class AdmittedSessionMiddleware:
    """Ends the browser session of a user who may no longer log in (accounts.login.is_admitted).

    The same rule as every API token, checked on every request: removing an address from the
    allow-list, or deactivating the user, stops their open sessions at the next click.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not is_admitted(user):
            log.warning("session ended: user no longer admitted", extra={"user_id": user.pk})
            logout(request)
        return self.get_response(request)


class ViewerTimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            try:
                timezone.activate(zoneinfo.ZoneInfo(user.viewer_timezone()))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        return self.get_response(request)


class LastActivityMiddleware:
    """Keeps `User.last_activity_at` current for pages and API calls, at most one write a minute.

    It looks after the response, so API requests count too: DRF puts the token's user on the
    request while the view runs.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active:
            user.record_activity()
        return response
