"""A running block across two machines: burn rate and projection equal `ccusage blocks --active`
reading both machines' logs, when the agents send each hour's first entry."""

import uuid
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from tests.crafted_logs import assistant_line, iso_ms, write_session
from tests.usage.ccusage_runs import envelope, require_ccusage, run_ccusage
from usage.analytics import blocks
from usage.ingest.pipeline import archive, process_batch
from usage.models import Block, HourlyUsage

pytestmark = pytest.mark.django_db


def ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def sync(user, name, home, cwd, capture, firsts: dict[datetime, datetime] | None):
    """The agent's envelope: ccusage's hourly blocks, and (newer agents) each hour's first entry."""
    reports: dict = {
        "blocks_hourly": run_ccusage([home], "blocks", "--session-length", "1", cwd=cwd)
    }
    if firsts is not None:
        reports["hour_first_activity"] = {
            "hours": {iso_ms(hour): iso_ms(first) for hour, first in firsts.items()}
        }
    body = envelope(name, uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.example.com"), reports)
    with capture(execute=True):
        return process_batch(archive(user, None, body), body=body).machine


@pytest.fixture
def two_machines(tmp_path):
    """A block that began last hour: the laptop's first entry at :35 and one stamped exactly on
    the hour, the desktop's from :50 until a minute ago."""
    require_ccusage()
    now = ms(timezone.now())
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    laptop, desktop = tmp_path / "laptop", tmp_path / "desktop"
    for home in (laptop, desktop):
        (home / ".config" / "claude" / "projects").mkdir(parents=True)
    first = hour + timedelta(minutes=35, seconds=12, milliseconds=345)
    last = now - timedelta(minutes=1)
    write_session(
        laptop / ".claude",
        [
            assistant_line(first, session_id="l", input_tokens=250_000, output_tokens=4_000),
            assistant_line(hour + timedelta(hours=1), session_id="l", input_tokens=90_000),
        ],
    )
    desktop_first = hour + timedelta(minutes=50)
    write_session(
        desktop / ".claude",
        [
            assistant_line(desktop_first, session_id="d", input_tokens=120_000, output_tokens=900),
            assistant_line(last, session_id="d", input_tokens=60_000, output_tokens=2_500),
        ],
    )
    work = tmp_path / "work"
    work.mkdir()
    desktop_firsts = {hour: desktop_first}
    if last > hour + timedelta(hours=1):
        desktop_firsts[hour + timedelta(hours=1)] = last
    # The laptop's entry on the hour belongs to ccusage's bucket of the hour before.
    firsts = {"laptop": {hour: first}, "desktop": desktop_firsts}
    return {"laptop": laptop, "desktop": desktop, "work": work, "first": first, "firsts": firsts}


def test_burn_rate_and_projection_equal_ccusage_reading_both_machines(
    member, two_machines, django_capture_on_commit_callbacks
):
    m = two_machines
    capture = django_capture_on_commit_callbacks
    machine = sync(member, "laptop", m["laptop"], m["work"], capture, m["firsts"]["laptop"])
    sync(member, "desktop", m["desktop"], m["work"], capture, m["firsts"]["desktop"])

    before = timezone.now()
    both = run_ccusage([m["laptop"], m["desktop"]], "blocks", "--active", cwd=m["work"])
    after = timezone.now()
    [want] = [b for b in both["blocks"] if b["isActive"]]
    block = Block.objects.get(subscription_id=machine.subscription_id, is_active=True)
    assert block.start_time.isoformat().replace("+00:00", ".000Z") == want["startTime"]
    assert block.first_activity == m["first"]
    assert block.total_tokens == want["totalTokens"]

    rate = blocks.burn_rate(block)
    assert rate.tokens_per_minute == pytest.approx(want["burnRate"]["tokensPerMinute"], rel=1e-9)
    assert rate.cost_per_hour == pytest.approx(want["burnRate"]["costPerHour"], rel=1e-6)
    # ccusage read the clock somewhere between before and after.
    ours = {blocks.projection(block, at) for at in (before, after)}
    theirs = want["projection"]
    assert (theirs["remainingMinutes"], theirs["totalTokens"]) in {
        (p.remaining_minutes, p.total_tokens) for p in ours
    }
    assert theirs["totalCost"] in {p.cost_usd for p in ours}


def test_an_old_agents_report_still_ingests_and_counts_from_the_hour(
    member, two_machines, django_capture_on_commit_callbacks
):
    m = two_machines
    capture = django_capture_on_commit_callbacks
    machine = sync(member, "laptop", m["laptop"], m["work"], capture, None)
    sync(member, "desktop", m["desktop"], m["work"], capture, m["firsts"]["desktop"])
    assert HourlyUsage.objects.filter(machine=machine, first_activity=None).exists()
    block = Block.objects.get(subscription_id=machine.subscription_id, is_active=True)
    # The laptop's first hour has no first entry: the rate runs from the block's start.
    assert block.first_activity is None
    assert blocks.measured_from(block) == block.start_time


def test_a_later_report_without_first_entries_keeps_the_known_ones(
    member, two_machines, django_capture_on_commit_callbacks
):
    m = two_machines
    capture = django_capture_on_commit_callbacks
    machine = sync(member, "laptop", m["laptop"], m["work"], capture, m["firsts"]["laptop"])
    sync(member, "laptop", m["laptop"], m["work"], capture, None)
    hour = HourlyUsage.objects.get(machine__name="laptop", first_activity__isnull=False)
    assert hour.first_activity == m["first"]
    assert Block.objects.get(subscription_id=machine.subscription_id).first_activity == m["first"]
