"""Numbers and times for people: the template filters every page uses."""

import zoneinfo
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from telemetry_site import formatting
from telemetry_site.templatetags import telemetry as fmt

# The suite's autouse cache reset touches the (database) cache.
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("1234.5"), "$1,234.50"),
        (0, "$0.00"),
        (-0.0, "$0.00"),
        (Decimal("-0.0000001"), "$0.00"),
        (Decimal("0.005"), "$0.01"),
        (-12.3, "-$12.30"),
        ("1000000", "$1,000,000.00"),
        (None, "—"),
        ("abc", "—"),
    ],
)
def test_money_is_shown_as_dollars_and_cents(value, text):
    assert fmt.usd(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (950, "950"),
        (1234, "1.2K"),
        (12_345_678, "12.3M"),
        (999_950, "1M"),
        (50_000, "50K"),
        (123_456_789, "123M"),
        (10_140_271, "10.1M"),
        (2_500_000_000, "2.5B"),
        (None, "—"),
    ],
)
def test_token_counts_are_compact(value, text):
    assert fmt.compact(value) == text


def test_token_counts_carry_their_unit():
    assert fmt.tokens(12_345_678) == "12.3M tokens"
    assert fmt.tokens(1) == "1 token"
    assert fmt.tokens(None) == "—"


@pytest.mark.parametrize(
    ("value", "text"),
    [(42.46, "42%"), (4.5, "4.5%"), (0, "0%"), (100, "100%"), (Decimal("80.5"), "81%")],
)
def test_percentages_round_to_whole_numbers_above_ten(value, text):
    assert fmt.pct(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(minutes=45), "45 min"),
        (timedelta(hours=2, minutes=5), "2 h 05 min"),
        (timedelta(days=3, hours=4), "3 d 4 h"),
        (timedelta(days=2), "2 d"),
        (timedelta(seconds=-5), "0 min"),
        (90, "1 h 30 min"),
    ],
)
def test_durations_read_naturally(value, text):
    assert fmt.duration(value) == text


def test_times_are_shown_in_the_viewers_timezone():
    moment = datetime(2026, 11, 24, 23, 40, tzinfo=UTC)
    with timezone.override(zoneinfo.ZoneInfo("Asia/Tokyo")):
        html = fmt.when(moment)
    assert 'datetime="2026-11-24T23:40:00Z"' in html
    assert ">Nov 25, 08:40<" in html or ">Nov 25 2026, 08:40<" in html


def test_ago_counts_from_now():
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert fmt.ago(now - timedelta(minutes=12), now) == "12 min ago"
    assert fmt.ago(now - timedelta(seconds=10), now) == "just now"
    assert fmt.ago(None) == "never"


@pytest.mark.parametrize(
    ("value", "stale", "level", "word"),
    [
        (10, False, "ok", "low"),
        (49.9, False, "ok", "low"),
        (50, False, "warn", "high"),
        (80, False, "warn", "high"),
        (80.1, False, "bad", "near the limit"),
        (95, True, "stale", "stale reading"),
        (None, False, "stale", "stale reading"),
    ],
)
def test_quota_bars_have_a_colour_class_and_words(value, stale, level, word):
    assert fmt.quota_level(value, stale) == level
    assert fmt.quota_word(value, stale) == word


def test_a_missing_page_name_gives_an_empty_link_instead_of_an_error():
    assert fmt.url_if_exists("no-such-page") == ""
    assert fmt.url_if_exists("machines") == "/machines/"


def test_the_current_page_is_marked_in_the_navigation():
    request = RequestFactory().get("/machines/")
    from django.urls import resolve

    request.resolver_match = resolve("/machines/")
    html = Template("{% load telemetry %}{% nav_item 'machines' 'Machines' %}").render(
        Context({"request": request})
    )
    assert 'aria-current="page"' in html
    other = Template("{% load telemetry %}{% nav_item 'sessions' 'Sessions' %}").render(
        Context({"request": request})
    )
    assert "aria-current" not in other


def test_paging_links_keep_the_other_filters():
    request = RequestFactory().get("/sessions/", {"machine": "abc", "page": "2"})
    html = Template("{% load telemetry %}{% query_with page=3 %}").render(
        Context({"request": request})
    )
    assert html == "?machine=abc&amp;page=3"


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"])
def test_text_a_spreadsheet_would_run_is_made_plain_text(text):
    assert formatting.spreadsheet_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["laptop", "", Decimal("-1.50"), -3, None])
def test_other_cells_and_numbers_pass_unchanged(value):
    assert formatting.spreadsheet_cell(value) == value
