"""The usage explorer (`/usage/`) and its CSV: GET /api/v1/usage/'s figures with filters, by
period or split by project, model, machine, member or source."""

from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from accounts.access import Viewer
from dashboards.forms import ExplorerFilters, filter_options, with_defaults
from dashboards.periods import change, previous_period
from telemetry_site.formatting import CENT, SafeCsvWriter, model_name
from usage import exports, queries
from usage.figures import FIGURE_FIELDS
from usage.models import DailyUsage, Machine
from usage.pricing import models_without_ccusage_price

MODEL_MENU_DAYS = 365
CSV_COLUMNS = FIGURE_FIELDS


def _explorer_filters(request, viewer: Viewer) -> ExplorerFilters:
    options = filter_options(viewer)
    since = timezone.localdate() - timedelta(days=MODEL_MENU_DAYS)
    models = queries.models_seen(viewer, since)
    # The form shows the range it uses (the last 30 team days unless chosen).
    data = with_defaults(request.GET, range="30d", period="day")
    return ExplorerFilters(data, viewer=viewer, models=list(models), **options)


def _explorer_table(request, filters: ExplorerFilters) -> tuple[dict, dict, str]:
    """The table's figures, its query and grouping: aggregate_usage, as GET /api/v1/usage/."""
    params = filters.query(filters.today)
    group_by = filters.group_by
    try:
        data = queries.aggregate_usage(request.user, group_by=group_by, **params)
    except (queries.QueryError, PermissionDenied) as exc:
        # The form already refuses what the query would; this keeps a surprise off an error page.
        filters.add_error(None, str(exc))
        params = {"since": params["since"], "until": params["until"], "scope": "me"}
        group_by = "day"
        data = queries.aggregate_usage(request.user, group_by=group_by, **params)
    if group_by == "model":
        # Friendly names (the table's tooltip and the CSV's key column keep the raw id).
        for row in data["results"]:
            row["label"] = model_name(row["key"])
    if group_by == "member":
        # Someone who left keeps their row (their machines stay in the team), marked former.
        current = filters.member_ids()
        for row in data["results"]:
            if str(row["key"]) not in current and str(row["key"]) != str(request.user.public_id):
                row["label"] = f"{row['label']} (former member)"
    if group_by == "machine":
        # Two people's "laptop" need their owner's name to be told apart, as in the menu.
        labels = filters.machine_labels()
        for row in data["results"]:
            row["label"] = labels.get(str(row["key"]), row["label"])
    return data, params, group_by


@login_required
def usage_explorer(request):
    viewer = Viewer.of(request.user)
    filters = _explorer_filters(request, viewer)
    data, params, group_by = _explorer_table(request, filters)
    api_params = {k: v.isoformat() if isinstance(v, date) else v for k, v in params.items()}
    unpriced = _unpriced_models(request.user, params)
    if group_by == "model":
        by_server = {m["model"] for m in unpriced if m["priced_by_server"]}
        for row in data["results"]:
            row["priced_by_server"] = row["key"] in by_server
    # The total against the previous period (the stat cards' change and rule).
    preset = filters.value("range")
    previous_since, previous_until = previous_period(params["since"], params["until"], preset)
    try:
        previous = queries.aggregate_usage(
            request.user,
            group_by="source",
            **{**params, "since": previous_since, "until": previous_until},
        )["totals"]["cost_usd"]
    except (queries.QueryError, PermissionDenied, Http404):
        previous = Decimal(0)
    # Periods without usage are zero rows, so rows alone do not mean there was usage.
    has_usage = any(row["total_tokens"] or row["cost_usd"] for row in data["results"])
    periodic = group_by in ("day", "week", "month")
    split = "" if periodic else group_by
    period = group_by if periodic else (filters.value("period") or "day")
    return render(
        request,
        "dashboards/explorer.html",
        {
            "filters": filters,
            "data": data,
            "params": params,
            "group_by": group_by,
            "split": split,
            "explorer_config": {
                "api": reverse("api-usage"),
                "params": api_params,
                "period": period,
                "split": split,
                "preset": preset,
                # The year the page's dates leave out (telemetry's `span` filter).
                "today": timezone.localdate().isoformat(),
                "machine_labels": filters.machine_labels(),
                "model_labels": filters.model_labels(),
            },
            "csv_query": request.GET.urlencode(),
            "has_usage": has_usage,
            "has_machines": has_usage or Machine.objects.visible_to(viewer).exists(),
            "unpriced_models": unpriced,
            "change": change(data["totals"]["cost_usd"], previous, previous_since, previous_until),
        },
    )


def _unpriced_models(user, params: dict) -> list[dict]:
    """Usage ccusage could not price among the table's machines and days."""
    try:
        scope = queries.machine_scope(
            user,
            scope=params.get("scope", "me"),
            machine=params.get("machine"),
            member=params.get("member"),
        )
    except (queries.QueryError, PermissionDenied, Http404):
        scope = queries.machine_scope(user)
    facts = DailyUsage.objects.filter(scope, day__gte=params["since"], day__lte=params["until"])
    return models_without_ccusage_price(facts)


@login_required
def usage_csv(request):
    """The explorer's table as CSV: the same filters, the same function, the same rows."""
    viewer = Viewer.of(request.user)
    filters = _explorer_filters(request, viewer)
    data, params, group_by = _explorer_table(request, filters)
    name = f"usage-{group_by}-{params['since']}-{params['until']}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = SafeCsvWriter(response)
    writer.writerow([group_by, "key", *CSV_COLUMNS])
    for row in data["results"]:
        writer.writerow([row["label"], row["key"], *(_csv_value(row[c]) for c in CSV_COLUMNS)])
    writer.writerow(["Total", "", *(_csv_value(data["totals"][c]) for c in CSV_COLUMNS)])
    return response


def _csv_value(value):
    # Cents are what the page shows; the stored ten places are noise in a spreadsheet.
    if isinstance(value, Decimal):
        return f"{value.quantize(CENT)}"
    return value


@login_required
def chargeback_csv(request):
    """The explorer's filters as a chargeback file: per period (the explorer's day, week or
    month) by project by member, with names (usage.exports.chargeback_rows, as the API's)."""
    viewer = Viewer.of(request.user)
    filters = _explorer_filters(request, viewer)
    params = filters.query(filters.today)
    period = filters.value("period") or "month"
    try:
        rows = exports.chargeback_rows(request.user, period=period, **params)
    except (queries.QueryError, PermissionDenied):
        # The form refuses what the query would; fall back to the viewer's own rows.
        params = {"since": params["since"], "until": params["until"], "scope": "me"}
        rows = exports.chargeback_rows(request.user, period=period, **params)
    name = f"chargeback-{params['since']}-{params['until']}.csv"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = SafeCsvWriter(response)
    for row in exports.chargeback_csv_rows(rows):
        writer.writerow(row)
    return response
