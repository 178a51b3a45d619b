"""Parsers read every real ccusage output the server accepts, to the token and the cent."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.usage.ingest.helpers import (
    ANCHOR,
    INFRA,
    OUTPUT,
    OUTPUT_V18,
    ROLES,
    V18_FILES,
    V20_FILES,
    WEBAPP,
    cents,
    envelope,
    load,
)
from usage.ingest.parsers import (
    ParseError,
    Reader,
    ccusage_v18,
    ccusage_v20,
    parse_envelope,
    parser_for,
)
from usage.ingest.parsers.statusline import parse_statusline

# The suite-wide cache reset needs the database, even for pure parser tests.
pytestmark = pytest.mark.django_db

# Just after the fixture logs' anchor: their newest data is from the evening before.
FIXTURE_NOW = datetime.fromisoformat(ANCHOR) + timedelta(minutes=5)


def reader() -> Reader:
    return Reader(FIXTURE_NOW)


def files_of(table: dict, kind: str) -> list[str]:
    return sorted(name for name, k in table.items() if k == kind)


def sums(rows) -> tuple[int, Decimal]:
    return (
        sum(row.tokens.total_tokens for row in rows),
        sum((row.tokens.cost_usd for row in rows), Decimal(0)),
    )


def blocks_sums(data) -> tuple[int, Decimal]:
    real = [b for b in data["blocks"] if not b["isGap"]]
    return sum(b["totalTokens"] for b in real), sum((b["costUSD"] for b in real), Decimal(0))


def test_every_fixture_file_is_classified(fixtures_dir):
    assert {p.name for p in OUTPUT.glob("*.json")} == set(V20_FILES)
    assert {p.name for p in OUTPUT_V18.glob("*.json")} >= set(V18_FILES)


@pytest.mark.parametrize("name", files_of(V20_FILES, "claude_daily_instances"))
def test_daily_instances_parse_to_ccusage_totals(fixtures_dir, name):
    data = load(OUTPUT / name)
    rows = ccusage_v20.parse_claude_daily_instances(data, "r", reader())
    tokens, cost = sums(rows)
    assert tokens == data["totals"]["totalTokens"]
    assert cents(cost) == cents(data["totals"]["totalCost"])
    assert {row.project_key for row in rows} == set(data.get("projects", {}))
    assert all(row.source == "claude-code" for row in rows)


def test_a_fresh_installs_reports_are_a_valid_empty_envelope(fixtures_dir):
    """What the agent sends before Claude Code's first session: nothing to store, no error."""
    reports = {
        "claude_daily_instances": load(OUTPUT / "empty-claude-daily-instances.json"),
        "claude_session": load(OUTPUT / "empty-claude-session.json"),
        "blocks_hourly": load(OUTPUT / "empty-blocks-hourly.json"),
        "daily_by_agent": load(OUTPUT / "empty-all-daily-by-agent.json"),
    }
    parsed = parse_envelope(envelope(reports))
    assert all(rows == [] for rows in parsed.reports.values())


@pytest.mark.parametrize("name", files_of(V20_FILES, "claude_session"))
def test_sessions_parse_to_ccusage_totals(fixtures_dir, name):
    data = load(OUTPUT / name)
    rows = ccusage_v20.parse_claude_session(data, "r", reader())
    tokens, cost = sums(rows)
    assert tokens == data["totals"]["totalTokens"]
    assert cents(cost) == cents(data["totals"]["totalCost"])
    # A nested subagent transcript is part of its parent session, not a session of its own.
    nested = [s for s in data["sessions"] if "/" in s["projectPath"]]
    assert len(rows) == len(data["sessions"]) - len(nested)


def test_a_nested_workflow_transcript_belongs_to_its_parent_session_and_project(fixtures_dir):
    data = load(OUTPUT / "claude-session.json")
    parent = ROLES["session_with_subagents"]
    listed = {s["sessionId"]: s for s in data["sessions"]}
    nested = [s for s in data["sessions"] if s["projectPath"].startswith(f"{WEBAPP}/{parent}/")]
    # ccusage 20.0.24 lists the workflow transcript as a session `wf_…` of a path "project".
    assert [s["sessionId"][:3] for s in nested] == ["wf_"]
    rows = {row.session_id: row for row in ccusage_v20.parse_claude_session(data, "r", reader())}
    assert nested[0]["sessionId"] not in rows
    row = rows[parent]
    assert row.project_key == WEBAPP
    assert row.tokens.total_tokens == listed[parent]["totalTokens"] + nested[0]["totalTokens"]
    assert cents(row.tokens.cost_usd) == cents(
        Decimal(str(listed[parent]["totalCost"])) + Decimal(str(nested[0]["totalCost"]))
    )
    assert row.first_activity == min(
        datetime.fromisoformat(s["firstActivity"]) for s in (listed[parent], nested[0])
    )
    assert set(row.models) == set(listed[parent]["modelsUsed"]) | set(nested[0]["modelsUsed"])


@pytest.mark.parametrize(
    ("project_path", "owner"),
    [
        ("-home-dev-src-webapp", ("-home-dev-src-webapp", None)),
        ("-home-dev-src-webapp/s1/subagents", ("-home-dev-src-webapp", "s1")),
        ("-home-dev-src-webapp/s1/subagents/workflows", ("-home-dev-src-webapp", "s1")),
        ("-home-dev-src-webapp/s1/subagents/workflows/wf_1", ("-home-dev-src-webapp", "s1")),
        ("C--Users-dev-webapp\\s1\\subagents\\workflows", ("C--Users-dev-webapp", "s1")),
        ("", ("", None)),
    ],
)
def test_every_transcript_layout_under_a_project_folder_maps_to_its_project_and_session(
    project_path, owner
):
    assert ccusage_v20.session_owner(project_path) == owner


@pytest.mark.parametrize("name", files_of(V20_FILES, "daily_by_agent"))
def test_daily_by_agent_keeps_every_agent_but_claude(fixtures_dir, name):
    data = load(OUTPUT / name)
    rows = ccusage_v20.parse_daily_by_agent(data, "r", reader())
    others = [a for row in data["daily"] for a in row["agents"] if a["agent"] != "claude"]
    tokens, cost = sums(rows)
    assert tokens == sum(a["totalTokens"] for a in others)
    assert cents(cost) == cents(sum((a["totalCost"] for a in others), Decimal(0)))
    assert all(row.source != "claude-code" and row.project_key == "" for row in rows)


def test_daily_by_agent_codex_rows_equal_ccusage_codex_report(fixtures_dir):
    rows = ccusage_v20.parse_daily_by_agent(load(OUTPUT / "all-daily-by-agent.json"), "r", reader())
    codex = load(OUTPUT / "codex-daily.json")["totals"]
    tokens, cost = sums([row for row in rows if row.source == "codex"])
    assert tokens == codex["totalTokens"]
    assert cents(cost) == cents(codex["costUSD"])


@pytest.mark.parametrize("name", files_of(V20_FILES, "blocks"))
def test_blocks_parse_to_the_sum_of_their_non_gap_blocks(fixtures_dir, name):
    data = load(OUTPUT / name)
    rows = ccusage_v20.parse_blocks_hourly(data, "r", reader(), hours=None)
    tokens, cost = sums(rows)
    assert tokens == blocks_sums(data)[0]
    assert cents(cost) == cents(blocks_sums(data)[1])
    assert len(rows) == len([b for b in data["blocks"] if not b["isGap"]])


@pytest.mark.parametrize("name", ["daily-instances.json"])
def test_v18_daily_instances_parse_to_its_totals(fixtures_dir, name):
    data = load(OUTPUT_V18 / name)
    rows = parser_for("18.0.11").parse_claude_daily_instances(data, "r", reader())
    tokens, cost = sums(rows)
    assert tokens == data["totals"]["totalTokens"]
    assert cents(cost) == cents(data["totals"]["totalCost"])
    # 18.x keeps the first line of a streamed message (a partial output count): fewer tokens.
    assert tokens < load(OUTPUT / "claude-daily-instances.json")["totals"]["totalTokens"]


def test_v18_sessions_are_per_project_with_a_day_as_last_activity(fixtures_dir):
    data = load(OUTPUT_V18 / "session.json")
    rows = ccusage_v18.parse_claude_session(data, "r", reader())
    tokens, cost = sums(rows)
    assert tokens == data["totals"]["totalTokens"]
    assert cents(cost) == cents(data["totals"]["totalCost"])
    by_id = {row.session_id: row for row in rows}
    assert by_id[WEBAPP].project_key == WEBAPP
    # The subagent pseudo-session belongs to the project its path starts with.
    assert by_id["subagents"].project_key == WEBAPP
    # The day of the project's last activity, as ccusage 20 tells it to the millisecond.
    v20 = load(OUTPUT / "claude-session.json")["sessions"]
    last = max(s["lastActivity"] for s in v20 if s["projectPath"] == INFRA)
    assert by_id[INFRA].last_activity == datetime.fromisoformat(last[:10]).replace(tzinfo=UTC)


@pytest.mark.parametrize("name", files_of(V18_FILES, "blocks"))
def test_v18_blocks_parse_to_the_sum_of_their_blocks(fixtures_dir, name):
    data = load(OUTPUT_V18 / name)
    rows = ccusage_v20.parse_blocks_hourly(data, "r", reader(), hours=None)
    assert sums(rows)[0] == blocks_sums(data)[0]


def test_a_v18_machine_gets_the_v18_parsers_and_v20_the_v20_ones():
    assert parser_for("18.0.11") is ccusage_v18
    assert parser_for("19.2.0") is ccusage_v18
    assert parser_for("20.0.24") is ccusage_v20
    assert parser_for("21.0.0") is ccusage_v20
    assert parser_for("") is ccusage_v20


def test_hourly_blocks_of_the_fixture_sum_to_the_claude_daily_totals(fixtures_dir, hourly_blocks):
    data = json.loads(json.dumps(hourly_blocks), parse_float=Decimal)
    rows = ccusage_v20.parse_blocks_hourly(data, "r", reader())
    daily = load(OUTPUT / "claude-daily.json")["totals"]
    tokens, cost = sums(rows)
    assert tokens == daily["totalTokens"]
    assert cents(cost) == cents(daily["totalCost"])
    assert all(row.hour.minute == 0 for row in rows)


def test_gap_blocks_are_skipped_and_the_usage_limit_reset_is_kept(fixtures_dir):
    data = load(OUTPUT / "blocks.json")
    rows = ccusage_v20.parse_blocks_hourly(data, "r", reader(), hours=None)
    assert all(not row.hour.isoformat().startswith("gap") for row in rows)
    limited = [row for row in rows if row.limit_reset_at]
    assert [(r.hour, r.limit_reset_at) for r in limited] == [
        (datetime(2026, 11, 23, 14, tzinfo=UTC), datetime(2026, 11, 23, 16, tzinfo=UTC))
    ]
    # The same block and reset time as ccusage's own blocks report and the generator's manifest.
    (block,) = [b for b in data["blocks"] if "usageLimitResetTime" in b]
    assert (block["startTime"], block["usageLimitResetTime"]) == (
        ROLES["usage_limit_block"],
        ROLES["usage_limit_reset"],
    )


def test_five_hour_blocks_are_refused_where_hourly_ones_are_expected(fixtures_dir):
    with pytest.raises(ParseError) as caught:
        ccusage_v20.parse_blocks_hourly(
            load(OUTPUT / "blocks.json"), "reports.blocks_hourly", reader()
        )
    assert caught.value.path == "reports.blocks_hourly.blocks[0].endTime"
    assert "session-length 1" in caught.value.message


def test_negative_zero_costs_of_empty_reports_are_zero(fixtures_dir):
    data = load(OUTPUT / "empty-claude-session.json")
    assert str(data["totals"]["totalCost"]) == "-0.0"
    assert reader().decimal(data["totals"]["totalCost"], "x") == Decimal("0")
    assert not reader().decimal(Decimal("-0.0"), "x").is_signed()


def test_costs_stay_exact_decimals_not_floats():
    row = {"inputTokens": 1, "outputTokens": 2, "totalCost": Decimal("0.1")}
    a = ccusage_v20.tokens(reader(), row, "x")
    b = ccusage_v20.tokens(reader(), {**row, "totalCost": Decimal("0.2")}, "x")
    assert (a + b).cost_usd == Decimal("0.3")


@pytest.mark.parametrize(
    ("cost", "stored"),
    [
        (Decimal("0.123456789012345"), "0.1234567890"),
        (Decimal("0.00000000005"), "0E-10"),  # half to even: down to 0
        (Decimal("0.00000000015"), "2E-10"),  # half to even: up to 2
        (Decimal("-0.0"), "0E-10"),
        (Decimal("1E+2"), "100.0000000000"),
        (Decimal("1000000000"), "1000000000.0000000000"),
        (0, "0E-10"),
        (3, "3.0000000000"),
    ],
)
def test_token_counts_are_whole_numbers_and_costs_ten_places_rounded_half_to_even(cost, stored):
    row = {
        "inputTokens": 7,
        "outputTokens": 10**15,
        "cacheCreationTokens": 0,
        "cacheReadTokens": Decimal("12.0"),  # a whole number written as a float
        "totalCost": cost,
    }
    for cache_read in (12, Decimal("12.0")):
        tokens = ccusage_v20.tokens(reader(), {**row, "cacheReadTokens": cache_read}, "x")
        assert (tokens.input_tokens, tokens.output_tokens, tokens.cache_read_tokens) == (
            7,
            10**15,
            12,
        )
        assert type(tokens.cache_read_tokens) is int
        assert str(tokens.cost_usd) == stored
        assert not tokens.cost_usd.is_signed()


# --- refusals name the path ---------------------------------------------------------------------
def sessions_with(**changes):
    data = load(OUTPUT / "claude-session.json")
    data["sessions"][3].update(changes)
    return data


def parse_sessions(data):
    return ccusage_v20.parse_claude_session(data, "reports.claude_session", reader())


def test_a_missing_cost_names_its_path(fixtures_dir):
    data = load(OUTPUT / "claude-session.json")
    del data["sessions"][3]["totalCost"]
    with pytest.raises(ParseError) as caught:
        parse_sessions(data)
    assert caught.value.path == "reports.claude_session.sessions[3].totalCost"
    assert caught.value.message == "required"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("inputTokens", "12", "expected a whole number, got a string"),
        ("inputTokens", -5, "must not be negative"),
        ("inputTokens", Decimal("1.5"), "expected a whole number"),
        ("inputTokens", True, "expected a whole number, got a boolean"),
        ("outputTokens", 10**16, "must be at most"),
        ("totalCost", "1.0", "expected a number, got a string"),
        ("totalCost", Decimal("-0.01"), "must not be negative"),
        ("totalCost", Decimal("1E+400"), "must be at most"),
        ("totalCost", Decimal("NaN"), "must be a finite number"),
        ("totalCost", float("inf"), "must be a finite number"),
        ("sessionId", 42, "expected a string, got a number"),
        ("lastActivity", "yesterday", "expected an ISO 8601 time"),
        ("lastActivity", "2026-11-20T10:00:00", "expected an ISO 8601 time"),
        ("modelsUsed", "claude", "expected a list"),
    ],
)
def test_mistyped_fields_are_refused_with_their_path(fixtures_dir, field, value, reason):
    with pytest.raises(ParseError) as caught:
        parse_sessions(sessions_with(**{field: value}))
    assert caught.value.path == f"reports.claude_session.sessions[3].{field}"
    assert reason in caught.value.message


def test_unknown_fields_are_ignored(fixtures_dir):
    data = sessions_with(brandNewField={"nested": [1, 2]}, speed="fast")
    data["someNewTopLevelKey"] = True
    plain = {s["sessionId"] for s in data["sessions"] if "/" not in s["projectPath"]}
    assert {row.session_id for row in parse_sessions(data)} == plain


def test_dates_more_than_two_days_ahead_are_refused(fixtures_dir):
    data = load(OUTPUT / "claude-daily-instances.json")
    key = WEBAPP
    future = (FIXTURE_NOW + timedelta(days=3)).date().isoformat()
    data["projects"][key][0]["date"] = future
    with pytest.raises(ParseError) as caught:
        ccusage_v20.parse_claude_daily_instances(data, "reports.claude_daily_instances", reader())
    assert caught.value.path == f'reports.claude_daily_instances.projects["{key}"][0].date'
    assert "future" in caught.value.message


def test_tomorrow_in_a_timezone_ahead_of_utc_is_accepted(fixtures_dir):
    data = load(OUTPUT / "claude-daily-instances.json")
    data["projects"][WEBAPP][0]["date"] = "2026-11-26"
    assert ccusage_v20.parse_claude_daily_instances(data, "r", reader())


def test_a_daily_report_without_projects_is_refused_with_the_command_to_run(fixtures_dir):
    with pytest.raises(ParseError) as caught:
        ccusage_v20.parse_claude_daily_instances(
            load(OUTPUT / "claude-daily.json"), "reports.claude_daily_instances", reader()
        )
    assert caught.value.path == "reports.claude_daily_instances.projects"
    assert "--instances" in caught.value.message


def test_a_unified_daily_report_without_agents_is_refused(fixtures_dir):
    with pytest.raises(ParseError) as caught:
        ccusage_v20.parse_daily_by_agent(
            load(OUTPUT / "all-daily.json"), "reports.daily_by_agent", reader()
        )
    assert caught.value.path.endswith(".agents")
    assert "--by-agent" in caught.value.message


def test_a_report_without_costs_is_refused(fixtures_dir):
    data = load(OUTPUT / "all-daily-by-agent.json")
    for row in data["daily"]:
        for agent in row["agents"]:
            for model in agent["modelBreakdowns"]:
                del model["cost"]
    with pytest.raises(ParseError) as caught:
        ccusage_v20.parse_daily_by_agent(data, "reports.daily_by_agent", reader())
    assert caught.value.path.endswith(".cost")


def test_v18_has_no_all_agents_report():
    with pytest.raises(ParseError, match="ccusage 20"):
        ccusage_v18.parse_daily_by_agent({"daily": []}, "reports.daily_by_agent", reader())


# --- statusline ---------------------------------------------------------------------------------
def test_statusline_captures_become_rate_limit_rows(fixtures_dir):
    base = load(OUTPUT / "statusline-input.json")
    captures = [
        {
            **base,
            "captured_at": "2026-11-24T23:40:00Z",
            "rate_limits": {
                "five_hour": {"used_percentage": Decimal("42.5"), "resets_at": 1795996800},
                "seven_day": {"used_percentage": 61, "resets_at": "2026-11-28T08:00:00Z"},
                "seven_day_opus": {"used_percentage": Decimal("12.25"), "resets_at": None},
            },
        },
        {**base, "captured_at": "2026-11-24T23:41:00Z"},  # no rate limits: nothing to store
    ]
    rows = parse_statusline(captures, "reports.statusline", reader())
    assert len(rows) == 1
    row = rows[0]
    assert row.five_hour_used_pct == Decimal("42.50")
    assert row.five_hour_resets_at == datetime.fromtimestamp(1795996800, tz=UTC)
    assert row.seven_day_resets_at == datetime(2026, 11, 28, 8, tzinfo=UTC)
    assert row.extra_windows == {"seven_day_opus": {"used_percentage": 12.25, "resets_at": None}}


def test_a_statusline_percentage_above_range_is_refused():
    captures = [
        {
            "captured_at": "2026-11-24T23:40:00Z",
            "rate_limits": {"five_hour": {"used_percentage": 5000}},
        }
    ]
    with pytest.raises(ParseError) as caught:
        parse_statusline(captures, "reports.statusline", reader())
    assert caught.value.path == "reports.statusline[0].rate_limits.five_hour.used_percentage"


# --- envelope -----------------------------------------------------------------------------------
def test_an_envelope_needs_schema_1_and_a_machine_uuid():
    with pytest.raises(ParseError) as caught:
        parse_envelope({**envelope({}), "schema": 2}, now=FIXTURE_NOW)
    assert caught.value.path == "schema"
    body = envelope({})
    body["machine"]["uuid"] = "not-a-uuid"
    with pytest.raises(ParseError) as caught:
        parse_envelope(body, now=FIXTURE_NOW)
    assert caught.value.path == "machine.uuid"


def test_an_unknown_report_kind_is_ignored_and_named():
    parsed = parse_envelope(envelope({"future_kind": {"x": 1}}), now=FIXTURE_NOW)
    assert parsed.reports == {}
    assert parsed.ignored_kinds == ["future_kind"]


def test_an_unknown_machine_timezone_is_refused():
    body = envelope({})
    body["machine"]["timezone"] = "Mars/Olympus"
    with pytest.raises(ParseError) as caught:
        parse_envelope(body, now=FIXTURE_NOW)
    assert caught.value.path == "machine.timezone"
