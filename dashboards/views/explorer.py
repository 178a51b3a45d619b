"""The usage explorer (`/usage/`) and its CSV: GET /api/v1/usage/'s figures with filters, by
period or split by project, model, machine, member or source; and the search its long filter
menus (a big team's machines, members, projects) use instead of listing every option."""

from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.access import Viewer
from dashboards.forms import (
    SEARCH_KINDS,
    SEARCH_MAX_IDS,
    SEARCH_MAX_TEXT,
    ExplorerFilters,
    explorer_menus,
    menu_search,
    submitted_ids,
    with_defaults,
)
from dashboards.periods import change, previous_period
from telemetry_site.formatting import CENT, SafeCsvWriter, model_name
from usage import exports, queries
from usage.figures import FIGURE_FIELDS
from usage.models import DailyUsage, Machine
from usage.pricing import models_without_ccusage_price

MODEL_MENU_DAYS = 365
# Rows of a split table a page (`?rows_page=`): a big team's 3,000 machines took a second to
# render and 1.6 MB to send; the CSV keeps every row. explorer.js pages the same way.
SPLIT_ROWS_PER_PAGE = 100
SPLIT_KEYS = ("project", "model", "machine", "member", "source")
CSV_COLUMNS = FIGURE_FIELDS


def _explorer_filters(request, viewer: Viewer) -> ExplorerFilters:
    since = timezone.localdate() - timedelta(days=MODEL_MENU_DAYS)
    models = queries.models_seen(viewer, since)
    # The form shows the range it uses (the last 30 team days unless chosen).
    data = with_defaults(request.GET, range="30d", period="day")
    menus = explorer_menus(viewer, data)
    return ExplorerFilters(data, viewer=viewer, models=list(models), **menus)


def _explorer_table(
    request, filters: ExplorerFilters, *, paged: bool = False
) -> tuple[dict, dict, str]:
    """The table's figures, its query and grouping: aggregate_usage, as GET /api/v1/usage/.

    With `paged`, a split of more than SPLIT_ROWS_PER_PAGE rows (a big team's 3,000
    machines) keeps only the page `rows_page` asks for (costliest first, as aggregate_usage
    sorts them) and `data["rows_page"]` is that Page; the totals still cover every row. Only
    the kept rows are labelled, so a page costs the same at any team size. The CSV asks for
    every row."""
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
    data["rows_page"] = None
    if paged and group_by in SPLIT_KEYS and len(data["results"]) > SPLIT_ROWS_PER_PAGE:
        # A page number past the end shows the last page, not an error.
        page = Paginator(data["results"], SPLIT_ROWS_PER_PAGE).get_page(
            request.GET.get("rows_page")
        )
        data = {**data, "results": list(page.object_list), "rows_page": page}
    if group_by == "model":
        # Friendly names (the table's tooltip and the CSV's key column keep the raw id).
        for row in data["results"]:
            row["label"] = model_name(row["key"])
    if group_by == "member":
        # Someone who left keeps their row (their machines stay in the team), marked former.
        current = filters.member_ids(row["key"] for row in data["results"])
        for row in data["results"]:
            if str(row["key"]) not in current and str(row["key"]) != str(request.user.public_id):
                row["label"] = f"{row['label']} (former member)"
    if group_by == "machine":
        # Two people's "laptop" need their owner's name to be told apart, as in the menu.
        labels = filters.machine_labels(row["key"] for row in data["results"])
        for row in data["results"]:
            row["label"] = labels.get(str(row["key"]), row["label"])
    return data, params, group_by


@login_required
def usage_explorer(request):
    viewer = Viewer.of(request.user)
    filters = _explorer_filters(request, viewer)
    data, params, group_by = _explorer_table(request, filters, paged=True)
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
                # The labels of the menu's machines and of the table's rows; for a searched
                # menu the script asks machine_search for those of any other rows it shows.
                "machine_labels": filters.machine_labels(
                    row["key"] for row in data["results"] if group_by == "machine"
                ),
                "machine_search": (
                    reverse("usage_filter_search", args=["machine"])
                    if filters.menus["machine"].search
                    else None
                ),
                "model_labels": filters.model_labels(),
                # The split table's page (explorer.js shows the same rows of its answer).
                "rows_per_page": SPLIT_ROWS_PER_PAGE,
                "rows_page": data["rows_page"].number if data["rows_page"] else 1,
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


def _search_error(field: str, reason: str) -> JsonResponse:
    return JsonResponse({"detail": "Invalid input.", "errors": {field: [reason]}}, status=400)


@login_required
@require_GET
def filter_search(request, kind: str):
    """GET /usage/search/<machine|member|project>/: the options of the explorer's menu of
    that kind matching a search, as JSON {"results": [{"id", "label"}], "more": bool}.

    `q` (at most 100 characters) searches names (a machine's host name and owner's email too)
    and answers up to 20 options in menu order, `more` true when others match; repeated `id`
    (UUIDs, at most 100) instead labels those the viewer may pick and leaves out the rest.
    `scope` ("me" or "team", machines only) narrows to the viewer's own machines or asks for
    the team's. Only what the menu could offer: a member's own machines, the team's for those
    who may see other members (403 JSON otherwise, and for the member search); another team's
    never. Bad input is 400 JSON naming the field; an unknown kind 404 JSON.
    """
    if kind not in SEARCH_KINDS:
        return JsonResponse(
            {"detail": f"No search for {kind!r}; use machine, member or project."}, status=404
        )
    text = request.GET.get("q", "").strip()
    if "\x00" in text:
        return _search_error("q", "Null characters are not allowed.")
    if len(text) > SEARCH_MAX_TEXT:
        return _search_error("q", f"Ensure this value has at most {SEARCH_MAX_TEXT} characters.")
    ids = request.GET.getlist("id")
    if ids and text:
        return _search_error("id", "Give either a search (q) or ids, not both.")
    if len(ids) > SEARCH_MAX_IDS:
        return _search_error("id", f"Ask for at most {SEARCH_MAX_IDS} ids at a time.")
    bad = [value for value in ids if not submitted_ids(value)]
    if bad:
        return _search_error("id", f"{bad[0]!r} is not a UUID.")
    scope = request.GET.get("scope") or None
    if scope not in (None, "me", "team"):
        return _search_error("scope", f"{scope!r} is not one of me, team.")
    if scope is not None and kind != "machine":
        return _search_error("scope", "Only the machine search takes a scope.")
    viewer = Viewer.of(request.user)
    try:
        results, more = menu_search(
            viewer, kind, text=text, ids=[submitted_ids(v)[0] for v in ids], scope=scope
        )
    except PermissionDenied as exc:
        return JsonResponse({"detail": str(exc)}, status=403)
    return JsonResponse({"results": results, "more": more})
