"""Site-wide template filters and tags: money, tokens, times, quota bars, navigation, Chart.js.

The wording and rounding are telemetry_site.formatting's; this module only registers them.

Times are rendered in the active timezone, which accounts.middleware sets to the viewer's.
"""

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from django import template
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from telemetry_site import formatting

register = template.Library()

usd = register.filter("usd", formatting.usd)
compact = register.filter("compact", formatting.compact)
tokens = register.filter("tokens", formatting.tokens)
pct = register.filter("pct", formatting.pct)
duration = register.filter("duration", formatting.duration)
share = register.filter("share", formatting.share)
window_name = register.filter("window_name", formatting.window_name)


model_name = register.filter("model_name", formatting.model_name)


def _this_year() -> date:
    return timezone.localdate()


@register.filter
def day(value) -> str:
    """A day in a table or a sentence: `Tue, Nov 24` (the year only when not this one)."""
    if isinstance(value, datetime):
        value = timezone.localtime(value).date()
    if not isinstance(value, date):
        return formatting.EMPTY
    return formatting.day_label(value, _this_year())


@register.filter
def short_day(value) -> str:
    """A day in a range or on an axis: `Nov 24` (the year only when not this one)."""
    if isinstance(value, datetime):
        value = timezone.localtime(value).date()
    if not isinstance(value, date):
        return formatting.EMPTY
    return formatting.short_day(value, _this_year())


@register.filter
def span(since, until) -> str:
    """Two days as a range: `Nov 1 to Nov 24`; one day alone as `Nov 24`."""
    if not isinstance(since, date) or not isinstance(until, date):
        return formatting.EMPTY
    return formatting.day_span(since, until, _this_year())


@register.filter
def model(value) -> str:
    """A model by its friendly name with the raw id as a tooltip (`<span title=…>`); an id
    formatting.model_name does not know is shown as it is."""
    raw = str(value or "")
    friendly = formatting.model_name(raw)
    if friendly == raw:
        return format_html('<span class="model">{}</span>', raw)
    return format_html('<span class="model" title="{}">{}</span>', raw, friendly)


@register.filter
def models(values) -> str:
    """A list of model ids as `model` spans, comma separated."""
    return format_html_join(", ", "{}", ((model(v),) for v in values or []))


@register.filter
def ago(value, now=None) -> str:
    """How long ago: `just now`, `12 min ago`, `3 h ago`, `2 d ago`; nothing → `never`."""
    if not isinstance(value, datetime):
        return "never"
    now = now if isinstance(now, datetime) else timezone.now()
    delta = now - value
    if delta < timedelta(minutes=1):
        return "just now"
    return f"{duration(delta)} ago"


@register.filter
def when(value) -> str:
    """A `<time>` in the viewer's timezone: `Nov 24, 23:40`; the year only when not this one."""
    if not isinstance(value, datetime):
        return "—"
    local = timezone.localtime(value)
    now = timezone.localtime()
    pattern = "%b %-d, %H:%M" if local.year == now.year else "%b %-d %Y, %H:%M"
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        value.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        local.strftime("%Y-%m-%d %H:%M %Z"),
        local.strftime(pattern),
    )


@register.filter
def quota_level(value, stale=False) -> str:
    """The bar class for a used percentage: ok under 50, warn to 80, bad above; stale greys it."""
    if stale:
        return "stale"
    number = formatting.as_decimal(value)
    if number is None:
        return "stale"
    if number < 50:
        return "ok"
    if number <= 80:
        return "warn"
    return "bad"


@register.filter
def quota_word(value, stale=False) -> str:
    """The words that go with the bar's colour, so colour is never the only signal."""
    return {
        "ok": "low",
        "warn": "high",
        "bad": "near the limit",
        "stale": "stale reading",
    }[quota_level(value, stale)]


@lru_cache(maxsize=1)
def _chartjs_file() -> str:
    """The vendored Chart.js; `make chartjs` replaces it with one named after its version."""
    for folder in settings.STATICFILES_DIRS:
        found = sorted(Path(folder).glob("vendor/chart-*.umd.min.js"))
        if found:
            return f"vendor/{found[-1].name}"
    raise ImproperlyConfigured("Chart.js is not vendored under static/vendor/; run `make chartjs`.")


@register.simple_tag
def chartjs_src() -> str:
    return static(_chartjs_file())


@register.simple_tag
def first_owner_command() -> str:
    """The command that creates the first account, while no account exists and DEBUG is on
    (a fresh development install); "" otherwise, so production never says who is missing."""
    if not settings.DEBUG or get_user_model().objects.exists():
        return ""
    return formatting.FIRST_OWNER_COMMAND


@register.simple_tag
def url_if_exists(name: str, *args) -> str:
    """`{% url %}` that gives "" for a page that does not exist (yet) instead of failing."""
    try:
        return reverse(name, args=args or None)
    except NoReverseMatch:
        return ""


@register.simple_tag(takes_context=True)
def nav_item(context, name: str, label: str) -> str:
    """One `<li>` of the main navigation, marked as the current page; nothing if no such page."""
    url = url_if_exists(name)
    if not url:
        return ""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    if match is not None and match.url_name == name:
        return format_html('<li><a href="{}" aria-current="page">{}</a></li>', url, label)
    return format_html('<li><a href="{}">{}</a></li>', url, label)


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced ("" drops one), for paging links."""
    request = context["request"]
    params = request.GET.copy()
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"
