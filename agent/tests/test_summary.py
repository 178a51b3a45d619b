"""What a sync prints, from ccusage's own recorded report and the server's answer shapes."""

import json

from claude_telemetry.summary import changes_text, human_lines, sent_usage, tokens_text

from tests.conftest import FIXTURES


def envelope(full: bool = True) -> dict:
    unified = json.loads((FIXTURES / "output" / "all-daily-by-agent.json").read_text())
    return {"full": full, "since": None if full else "2026-11-21", "reports": {
        "daily_by_agent": unified}}  # fmt: skip


def test_the_figures_sent_are_ccusages_own_totals():
    unified = envelope()["reports"]["daily_by_agent"]
    sent = sent_usage(envelope())
    assert sent["days"] == len(unified["daily"])
    assert sent["tokens"] == unified["totals"]["totalTokens"]
    assert sent["cost_usd"] == round(unified["totals"]["totalCost"], 2)
    assert set(sent["agents"]) == {a["agent"] for d in unified["daily"] for a in d["agents"]}


def test_a_person_reads_days_tokens_cost_changes_and_the_dashboard():
    answer = {"counts": {"claude_session": {"created": 2, "updated": 1}, "blocks_hourly": {
        "created": 0, "updated": 0, "unchanged": 30}}}  # fmt: skip
    lines = human_lines(envelope(full=False), answer, "https://t.example.com/")
    assert lines[0].startswith("Sent days since 2026-11-21: 9 days of usage (2026-11-16 to ")
    assert lines[-2] == "Changed on the server: 2 new and 1 updated sessions."
    assert lines[-1] == "Dashboard: https://t.example.com/"


def test_nothing_new_and_a_big_report_in_processing_say_so():
    assert changes_text({"claude_session": {"unchanged": 4}}).startswith("Nothing changed")
    lines = human_lines(envelope(), {"status": "received", "counts": {}}, "https://t")
    assert "still processing it" in lines[-2]
    assert changes_text({"daily_by_agent": {"kept": 2}}) == (
        "Changed on the server: kept 2 stored rows the logs no longer hold."
    )


def test_token_counts_read_short():
    assert [tokens_text(n) for n in (950, 12_345, 3_081_701, 2_500_000_000)] == [
        "950", "12.3k", "3.08M", "2.5B"
    ]  # fmt: skip


def test_claude_figures_come_from_the_per_project_report_beside_a_kept_unified_one():
    # ccusage's own two reports of the same logs: the same figures either way.
    claude = json.loads((FIXTURES / "output" / "claude-daily-instances.json").read_text())
    both = envelope()
    both["reports"]["claude_daily_instances"] = claude
    alone = sent_usage(envelope())
    assert sent_usage(both) == alone
    assert alone["agents"]["claude"][0] > 0 and len(alone["agents"]) > 1
    # A unified report kept from an earlier sync (only Claude's logs changed since): its
    # older Claude part is not what the sync sent; the per-project report is.
    kept = envelope()
    for row in kept["reports"]["daily_by_agent"]["daily"]:
        for part in row["agents"]:
            if part["agent"] == "claude":
                part["totalTokens"] //= 2
    kept["reports"]["claude_daily_instances"] = claude
    assert sent_usage(kept) == alone
    assert sent_usage({"reports": {"daily_by_agent": kept["reports"]["daily_by_agent"]}}) != alone
