"""The account-level blocks equal what the real ccusage reports when it reads every machine."""

import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.usage.ccusage_runs import envelope, generate_home, require_ccusage, run_ccusage
from usage.analytics import blocks
from usage.ingest.pipeline import archive, process_batch
from usage.models import Block, Machine

pytestmark = pytest.mark.django_db


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def sync(user, name: str, home, cwd, capture) -> Machine:
    """What one machine's agent does: hourly blocks from ccusage, sent in an envelope."""
    hourly = run_ccusage([home], "blocks", "--session-length", "1", cwd=cwd)
    body = envelope(name, uuid.uuid4(), {"blocks_hourly": hourly})
    with capture(execute=True):
        result = process_batch(archive(user, None, body), body=body)
    result.batch.refresh_from_db()
    assert result.batch.derived_at is not None, "derived work runs after the ingest commits"
    return result.machine


def assert_same_blocks(stored: list[Block], reported: list[dict]) -> None:
    expected = [b for b in reported if not b["isGap"]]
    assert len(stored) == len(expected)
    for block, want in zip(stored, expected, strict=True):
        where = want["startTime"]
        assert block.start_time == parse_time(want["startTime"]), where
        assert block.end_time == parse_time(want["endTime"]), where
        assert block.last_activity == parse_time(want["actualEndTime"]), where
        assert block.total_tokens == want["totalTokens"], where
        counts = want["tokenCounts"]
        assert (
            block.input_tokens,
            block.output_tokens,
            block.cache_creation_tokens,
            block.cache_read_tokens,
        ) == (
            counts["inputTokens"],
            counts["outputTokens"],
            counts["cacheCreationInputTokens"],
            counts["cacheReadInputTokens"],
        ), where
        # Same cost to the cent: ccusage sums floats per entry, we sum exact hourly decimals.
        assert abs(block.cost_usd - Decimal(str(want["costUSD"]))) < Decimal("0.005"), where
        assert block.entries == want["entries"], where
        assert set(block.models_used) == set(want["models"]) - {"<synthetic>"}, where
        assert (block.limit_hit_at is not None) == ("usageLimitResetTime" in want), where


def test_blocks_of_two_machines_equal_ccusage_reading_both_machines_at_once(
    member, fixtures_dir, tmp_path, django_capture_on_commit_callbacks
):
    require_ccusage()
    now = timezone.now()
    # The generator's "now": ten minutes past the latest hour, so the data sits the same way
    # against hour boundaries whenever the test runs, and its last session ended recently.
    anchor = now.replace(minute=10, second=0, microsecond=0)
    if anchor > now:
        anchor -= timedelta(hours=1)
    # Different seeds, anchors a day and 2.5 h apart: ten days of work whose hours overlap,
    # and the desktop's last session alone in the latest block, still active now.
    laptop_anchor = anchor - timedelta(days=1, hours=2, minutes=30)
    laptop_home = generate_home(fixtures_dir, tmp_path / "laptop", seed=11, anchor=laptop_anchor)
    desktop_home = generate_home(fixtures_dir, tmp_path / "desktop", seed=22, anchor=anchor)
    work = tmp_path / "work"
    work.mkdir()

    laptop = sync(member, "laptop", laptop_home, work, django_capture_on_commit_callbacks)
    desktop = sync(member, "desktop", desktop_home, work, django_capture_on_commit_callbacks)
    assert laptop.subscription_id == desktop.subscription_id

    both = run_ccusage([laptop_home, desktop_home], "blocks", cwd=work)
    stored = list(
        Block.objects.filter(subscription_id=laptop.subscription_id).order_by("start_time")
    )
    assert_same_blocks(stored, both["blocks"])

    # Each machine alone reports other block starts: the merge is what makes them equal.
    alone = {
        parse_time(b["startTime"])
        for home in (laptop_home, desktop_home)
        for b in run_ccusage([home], "blocks", cwd=work)["blocks"]
        if not b["isGap"]
    }
    assert alone != {b.start_time for b in stored}
    overlaps = [b for b in stored if b.overlap]
    assert overlaps, "the generated machines should share at least one block"
    for block in overlaps:
        parts = {c.machine_id: c.total_tokens for c in block.contributions.all()}
        assert set(parts) == {laptop.pk, desktop.pk}
        assert sum(parts.values()) == block.total_tokens

    # The desktop's last session ended 20 to 80 minutes ago: ccusage and we see it active.
    active = [b for b in both["blocks"] if b["isActive"]]
    assert len(active) == 1
    ours = stored[-1]
    assert ours.start_time == parse_time(active[0]["startTime"])
    assert blocks.is_active(ours) is True and ours.is_active is True
    assert blocks.burn_rate(ours).tokens_per_minute > 0
    assert blocks.projection(ours).total_tokens >= ours.total_tokens


def test_blocks_of_one_machine_equal_the_recorded_ccusage_blocks(
    member, fixtures_dir, tmp_path, django_capture_on_commit_callbacks
):
    require_ccusage()
    home = fixtures_dir / "input" / "home"
    recorded = json.loads((fixtures_dir / "output" / "blocks.json").read_text())
    machine = sync(member, "laptop", home, tmp_path, django_capture_on_commit_callbacks)
    stored = list(
        Block.objects.filter(subscription_id=machine.subscription_id).order_by("start_time")
    )
    assert_same_blocks(stored, recorded["blocks"])
    # The recorded usage-limit line (2026-11-23 14:00 block) marks that block's limit hit.
    limited = [b for b in stored if b.limit_hit_at]
    assert [b.start_time.isoformat() for b in limited] == ["2026-11-23T14:00:00+00:00"]
