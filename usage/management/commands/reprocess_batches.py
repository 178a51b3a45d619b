"""`reprocess_batches [--failed] [--since DATE] [--batch ID]`: replay archived ingest batches.

Batches run through the current parsers in the order they were received, so the newest report
still wins; replaying is idempotent (a batch that already stored its facts changes nothing).
"""

import uuid
from datetime import date, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone

from usage.ingest.pipeline import IngestError, process_batch
from usage.models import BatchStatus, IngestBatch

# A batch still "received" this long after arriving was interrupted mid-way (worker killed).
STUCK_AFTER = timedelta(minutes=10)


class Command(BaseCommand):
    help = "Replay archived ingest batches through the current parsers, oldest first."

    def add_arguments(self, parser):
        parser.add_argument(
            "--failed",
            action="store_true",
            help="Only batches that failed (or were interrupted before finishing).",
        )
        parser.add_argument("--since", help="Only batches received on or after this day (UTC).")
        parser.add_argument(
            "--batch",
            action="append",
            default=[],
            metavar="ID",
            help="Only this batch (public id or number); may be repeated.",
        )

    def handle(self, *args, **opts):
        # OTLP batches are not agent envelopes; their events are stored once, on arrival.
        batches = IngestBatch.objects.filter(ingest_path="agent").order_by("received_at", "id")
        # Refused reports kept without their body (usage.ingest.rejected) have nothing to replay.
        batches = batches.exclude(body_discarded=True)
        if opts["failed"]:
            stuck = Q(status=BatchStatus.RECEIVED, received_at__lt=timezone.now() - STUCK_AFTER)
            batches = batches.filter(Q(status=BatchStatus.FAILED) | stuck)
        if opts["since"]:
            batches = batches.filter(received_at__gte=_start_of(opts["since"]))
        if opts["batch"]:
            batches = batches.filter(_batch_ids(opts["batch"]))
        ids = list(batches.values_list("id", flat=True))
        if not ids:
            if opts["batch"]:
                raise CommandError(f"No batch {', '.join(opts['batch'])} matches these options.")
            self.stdout.write("No batches to reprocess.")
            return
        total, failed = len(ids), 0
        self.stdout.write(f"Reprocessing {total} batch{'es' if total != 1 else ''}, oldest first.")
        for number, batch_id in enumerate(ids, start=1):
            batch = IngestBatch.objects.select_related("user").get(pk=batch_id)
            prefix = (
                f"[{number}/{total}] batch {batch.public_id} "
                f"(received {batch.received_at:%Y-%m-%d %H:%M:%S} UTC, {batch.user.email})"
            )
            try:
                result = process_batch(batch, live=False)
            except IngestError as exc:
                failed += 1
                self.stdout.write(self.style.WARNING(f"{prefix}: failed: {exc.detail}"))
                continue
            except Exception as exc:
                failed += 1
                self.stdout.write(
                    self.style.ERROR(f"{prefix}: failed: internal error {exc.__class__.__name__}")
                )
                continue
            self.stdout.write(f"{prefix}: processed, {_summary(result.counts)}")
        done = total - failed
        self.stdout.write(f"Done: {done} processed, {failed} failed.")
        if failed:
            raise CommandError(f"{failed} of {total} batches failed; their errors are stored.")


def _start_of(text: str) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--since {text!r} is not a date (YYYY-MM-DD).") from None
    return datetime.combine(day, time.min, tzinfo=timezone.get_fixed_timezone(0))


def _batch_ids(values: list[str]) -> Q:
    q = Q(pk__in=[])
    for value in values:
        value = value.strip()
        if value.isdigit():
            q |= Q(pk=int(value))
            continue
        try:
            q |= Q(public_id=uuid.UUID(value))
        except ValueError:
            raise CommandError(f"--batch {value!r} is neither a batch number nor a UUID.") from None
    return q


def _summary(counts: dict) -> str:
    if not counts:
        return "no reports"
    return "; ".join(
        f"{kind} {c['created']} created, {c['updated']} updated, {c['unchanged']} unchanged"
        for kind, c in counts.items()
    )
