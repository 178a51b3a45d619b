"""Per-request bookkeeping for the viewer: their timezone for every page and their last activity."""

import zoneinfo

from django.utils import timezone


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
