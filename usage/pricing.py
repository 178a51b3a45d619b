"""Server prices for models ccusage cannot price: applied to daily facts whose cost ccusage
reported as zero, recomputed when a price changes, and the list of usage still unpriced.

ccusage prices tokens from its own snapshot of model prices; a model missing from it costs
$0 in every report. A ModelPrice fills that gap, never overrides ccusage: a fact ccusage
priced keeps ccusage's cost, and a later report that prices the model wins.
"""

from collections.abc import Iterable
from decimal import Decimal
from functools import partial

from django.db import transaction
from django.db.models import Q, QuerySet, Sum

from usage.figures import COST_PLACES, TOKEN_FIELDS
from usage.models import DailyUsage, Machine, ModelPrice
from usage.signals import usage_changed

MILLION = Decimal(1_000_000)
# ModelPrice's field for each token count.
PRICE_FIELDS = {
    "input_tokens": "input_usd_per_mtok",
    "output_tokens": "output_usd_per_mtok",
    "cache_creation_tokens": "cache_creation_usd_per_mtok",
    "cache_read_tokens": "cache_read_usd_per_mtok",
}


def server_cost(price: ModelPrice, tokens: dict) -> Decimal:
    """USD for `tokens` ({token field: count}) at `price` (USD per million tokens of each kind),
    to the cost columns' ten places."""
    total = sum(
        (Decimal(int(tokens.get(field) or 0)) * getattr(price, PRICE_FIELDS[field]))
        for field in TOKEN_FIELDS
    )
    return (Decimal(total) / MILLION).quantize(COST_PLACES)


def price_new_rows(rows: list[dict]) -> None:
    """Price, in place, the daily rows of a report ({fact field: value}, as facts.upsert_daily
    builds them) that ccusage left at zero cost and the server has a price for.

    Sets `priced_by_server` on every row, so a report that prices a model itself clears it.
    One query for the prices.
    """
    unpriced = {
        row["model"] for row in rows if not row["cost_usd"] and row.get("total_tokens", 0) > 0
    }
    prices = ModelPrice.objects.in_bulk(sorted(unpriced), field_name="model") if unpriced else {}
    for row in rows:
        price = prices.get(row["model"])
        if price is not None and not row["cost_usd"] and row.get("total_tokens", 0) > 0:
            row["cost_usd"] = server_cost(price, row)
            row["priced_by_server"] = True
        else:
            row["priced_by_server"] = False


def _repriceable(model: str) -> QuerySet[DailyUsage]:
    """The model's rows whose cost is the server's, or zero from ccusage."""
    return DailyUsage.objects.filter(model=model).filter(
        Q(priced_by_server=True) | Q(cost_usd=0, total_tokens__gt=0)
    )


@transaction.atomic
def reprice(model: str) -> int:
    """Recompute every daily fact of `model` that ccusage did not price, after its ModelPrice
    was saved or deleted: at the new price, or back to $0 without one. Facts ccusage priced are
    never touched; running it twice changes nothing the second time. Returns the rows changed
    and tells budgets (usage_changed) about every team whose figures moved.
    """
    price = ModelPrice.objects.filter(model=model).first()
    changed: list[DailyUsage] = []
    teams: set[int] = set()
    with transaction.atomic():
        # The machines whose facts change are locked first, in one order, as ingest locks
        # its machine: a machine moved to another team or owner meanwhile would otherwise
        # take the old cost along in the rollups (the move's trigger reads the facts as they
        # were before this update commits), and the new cost would stay behind.
        list(
            Machine.objects.filter(pk__in=_repriceable(model).values("machine_id"))
            .order_by("pk")
            .select_for_update()
            .values_list("pk", flat=True)
        )
        rows = (
            _repriceable(model)
            .select_related("machine")
            .only("id", "cost_usd", "priced_by_server", "machine__team_id", *TOKEN_FIELDS)
        )
        for row in rows.iterator(chunk_size=2000):
            tokens = {field: getattr(row, field) for field in TOKEN_FIELDS}
            cost = server_cost(price, tokens) if price else Decimal(0).quantize(COST_PLACES)
            by_server = price is not None
            if abs(Decimal(row.cost_usd) - cost) <= Decimal("0.000000001") and (
                row.priced_by_server == by_server
            ):
                continue
            row.cost_usd, row.priced_by_server = cost, by_server
            changed.append(row)
            teams.add(row.machine.team_id)
        DailyUsage.objects.bulk_update(changed, ["cost_usd", "priced_by_server"], batch_size=500)
        for team_id in sorted(teams):
            transaction.on_commit(partial(usage_changed.send, sender=ModelPrice, team_id=team_id))
    return len(changed)


def models_without_ccusage_price(facts: QuerySet[DailyUsage]) -> list[dict]:
    """Per model, the usage among `facts` that ccusage reported at $0 for a non-zero count of
    tokens: [{"model", <token fields>, "total_tokens", "cost_usd" (the server's, USD),
    "priced_by_server" (a ModelPrice covers it)}], most tokens first."""
    rows = (
        facts.filter(Q(priced_by_server=True) | Q(cost_usd=0, total_tokens__gt=0))
        .order_by()
        .values("model")
        .annotate(
            **{field: Sum(field) for field in (*TOKEN_FIELDS, "total_tokens")},
            cost_usd=Sum("cost_usd"),
        )
    )
    priced = set(
        ModelPrice.objects.filter(model__in=[r["model"] for r in rows]).values_list(
            "model", flat=True
        )
    )
    result = [
        {
            "model": row["model"],
            **{field: int(row[field] or 0) for field in (*TOKEN_FIELDS, "total_tokens")},
            "cost_usd": Decimal(row["cost_usd"] or 0).quantize(COST_PLACES),
            "priced_by_server": row["model"] in priced,
        }
        for row in rows
    ]
    result.sort(key=lambda r: (-r["total_tokens"], r["model"]))
    return result


def unpriced_only(models: Iterable[dict]) -> list[dict]:
    """The entries of models_without_ccusage_price that nobody priced: they count as $0."""
    return [m for m in models if not m["priced_by_server"]]
