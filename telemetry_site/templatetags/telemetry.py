"""Template filters and tags that format figures for people: money, tokens, times, quota bars.

Times are rendered in the active timezone, which accounts.middleware sets to the viewer's.
"""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from django import template
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.templatetags.static import static
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()

_CENT = Decimal("0.01")
_COMPACT_STEPS = (
    (Decimal(10**3), "K"),
    (Decimal(10**6), "M"),
    (Decimal(10**9), "B"),
    (Decimal(10**12), "T"),
)


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None


@register.filter
def usd(value) -> str:
    """`1234.5` → `$1,234.50`; nothing → an em dash."""
    amount = _decimal(value)
    if amount is None:
        return "—"
    rounded = amount.quantize(_CENT, rounding=ROUND_HALF_UP)
    # ccusage reports an empty day as -0.0; it must not print as "-$0.00".
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.2f}"


@register.filter
def compact(value) -> str:
    """`12345678` → `12.3M`, `950` → `950`."""
    number = _decimal(value)
    if number is None:
        return "—"
    sign = "-" if number < 0 else ""
    number = abs(number)
    if number < 1000:
        return f"{sign}{int(number):,}"
    for step, suffix in _COMPACT_STEPS:
        scaled = number / step
        tenths = scaled.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        # 999,950 is 1000.0K once rounded; the next unit says it better: 1.0M.
        if tenths >= 1000 and suffix != "T":
            continue
        if tenths >= 100:
            return f"{sign}{scaled.quantize(Decimal('1'), rounding=ROUND_HALF_UP)}{suffix}"
        # 50.0K reads better as 50K; 12.3M keeps its decimal.
        return f"{sign}{str(tenths).removesuffix('.0')}{suffix}"
    return f"{sign}{int(number):,}"


@register.filter
def tokens(value) -> str:
    """`12345678` → `12.3M tokens`."""
    if _decimal(value) is None:
        return "—"
    text = compact(value)
    return f"{text} token" if text == "1" else f"{text} tokens"


@register.filter
def pct(value) -> str:
    """`42.46` → `42%`; under 10 keeps one decimal (`4.5%`) so small readings are not 0%."""
    number = _decimal(value)
    if number is None:
        return "—"
    if abs(number) < 10 and number != number.to_integral_value():
        return f"{number.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%"
    return f"{number.quantize(Decimal('1'), rounding=ROUND_HALF_UP)}%"


@register.filter
def duration(value) -> str:
    """A timedelta (or minutes) as `2 h 05 min`, `45 min`, `3 d 4 h`."""
    if value is None or value == "":
        return "—"
    if isinstance(value, timedelta):
        minutes = int(value.total_seconds() // 60)
    else:
        number = _decimal(value)
        if number is None:
            return "—"
        minutes = int(number)
    minutes = max(minutes, 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min"


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
    number = _decimal(value)
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


@register.filter
def share(part, whole) -> Decimal:
    """`part` as a percentage of `whole` (0 when whole is 0)."""
    part_d, whole_d = _decimal(part), _decimal(whole)
    if not part_d or not whole_d:
        return Decimal(0)
    return (part_d * 100 / whole_d).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


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
