"""Bodies refused for their content: kept to explain and replay them, but never without limit.

A refused body (a 4xx answer after archiving: a report that does not parse, a retired
machine, a sender without a team) is archived once per distinct body: the same body again
reuses its batch (`repeats` counts the extra arrivals) and is tried afresh, since a fix on
the server or in the team may let it through now. A team keeps at most
INGEST_REJECTED_MAX_BYTES_PER_TEAM archived (gzip) bytes of refused bodies; beyond that a
refused batch keeps only its metadata and reason (`body_discarded`). They are deleted
INGEST_REJECTED_RETENTION_DAYS after they last arrived (usage.tasks.expire_rejected_bodies).
Failures that are the server's fault (internal errors) are not "rejected": their bodies are
always kept for `reprocess_batches`.
"""

import gzip
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.models import Membership, Team
from usage.models import BatchStatus, IngestBatch

log = logging.getLogger(__name__)


def receive_again(
    batch: IngestBatch, body: bytes, gzipped: bytes | None, *, claimed: bool
) -> IngestBatch:
    """An identical refused body arrived again: the same batch is tried afresh.

    It is `received` again, as of now (so the newest report still wins if it goes through
    this time), with one more repeat counted. A body that was discarded by the cap is
    archived again first: a batch is only ever answered once its body is stored.
    `claimed` is True when the caller processes it in this request.
    """
    now = timezone.now()
    fields: dict = {
        "status": BatchStatus.RECEIVED,
        "received_at": now,
        "repeats": F("repeats") + 1,
        "error": "",
        "claimed_at": now if claimed else None,
        "attempts": 1 if claimed else 0,
    }
    if batch.body_discarded:
        stored = gzipped if gzipped is not None else gzip.compress(body, compresslevel=6)
        fields.update(body_gzip=stored, compressed_bytes=len(stored), body_discarded=False)
    with transaction.atomic():
        IngestBatch.objects.filter(pk=batch.pk).update(**fields)
    batch.refresh_from_db()
    log.info(
        "refused body received again",
        extra={"batch": str(batch.public_id), "repeats": batch.repeats},
    )
    return batch


def keep_within_cap(batch: IngestBatch) -> bool:
    """Called when `batch` was just refused: keep its body if the sender's team has room
    under INGEST_REJECTED_MAX_BYTES_PER_TEAM, else keep only its metadata and reason.

    Returns True when the body is kept. The team's row is locked while counting, so two
    refusals at once cannot both take the last room.
    """
    limit = settings.INGEST_REJECTED_MAX_BYTES_PER_TEAM
    with transaction.atomic():
        membership = Membership.objects.filter(user_id=batch.user_id).first()
        stored = IngestBatch.objects.filter(rejected=True, body_discarded=False).exclude(
            pk=batch.pk
        )
        if membership is not None:
            # Serialises the count-then-decide of concurrent refusals within one team.
            Team.objects.select_for_update().filter(pk=membership.team_id).first()
            stored = stored.filter(user__membership__team_id=membership.team_id)
        else:
            stored = stored.filter(user_id=batch.user_id)
        used = stored.aggregate(total=Sum("compressed_bytes"))["total"] or 0
        size = (
            IngestBatch.objects.filter(pk=batch.pk)
            .values_list("compressed_bytes", flat=True)
            .first()
            or 0
        )
        if used + size <= limit:
            return True
        IngestBatch.objects.filter(pk=batch.pk).update(body_gzip=b"", body_discarded=True)
    batch.body_discarded = True
    log.warning(
        "refused body not kept: the team's archive of refused reports is full",
        extra={"batch": str(batch.public_id), "bytes": size, "stored": used, "limit": limit},
    )
    return False


def expire(now: datetime | None = None) -> int:
    """Delete refused batches that last arrived INGEST_REJECTED_RETENTION_DAYS ago or more;
    returns how many. They stored no facts, so nothing else refers to them."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.INGEST_REJECTED_RETENTION_DAYS)
    deleted, _ = IngestBatch.objects.filter(
        rejected=True, status=BatchStatus.FAILED, received_at__lt=cutoff
    ).delete()
    return deleted
