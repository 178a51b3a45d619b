"""The sessions list, filtered like the explorer and paged."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Sum
from django.shortcuts import render

from accounts.access import Viewer
from dashboards.forms import DashboardFilters, filter_options
from usage import queries

SESSIONS_PER_PAGE = 50


@login_required
def sessions(request):
    viewer = Viewer.of(request.user)
    options = filter_options(viewer)
    filters = DashboardFilters(request.GET or None, viewer=viewer, **options)
    # Every value was checked against the menus above, so the query raises nothing.
    rows = queries.sessions_for(
        request.user,
        scope=filters.value("scope") or "me",
        **{
            name: filters.value(name)
            for name in ("machine", "member", "project", "source", "since", "until")
        },
    )
    totals = rows.aggregate(
        count=Count("pk"), total_tokens=Sum("total_tokens"), cost_usd=Sum("cost_usd")
    )
    paginator = Paginator(rows, SESSIONS_PER_PAGE)
    # The total is already known; the paginator need not count again.
    paginator.count = totals["count"]
    # A page number past the end shows the last page, not an error.
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "dashboards/sessions.html",
        {
            "filters": filters,
            "page": page,
            "totals": totals,
            "viewer": viewer,
            "has_machines": bool(options["machines"]),
        },
    )
