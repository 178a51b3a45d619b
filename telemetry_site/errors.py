"""Error pages: 403 and 404 in the site's layout with the reason and a way back; the 500 page
is a static template (templates/500.html) so it renders when the database is gone."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """403 with the reason the view gave; at /admin/ also what a non-staff account must do
    (docs/production.md: the Django admin needs a separate staff account)."""
    reason = str(exception) if exception is not None and str(exception) else ""
    context = {"reason": reason, "at_admin": request.path.startswith("/admin/")}
    return render(request, "403.html", context, status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 that never says whether the object exists for someone else (a 404 also answers
    objects of another team)."""
    return render(request, "404.html", {"request_path": request.path}, status=404)
