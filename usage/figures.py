"""The figures every usage row carries, named once: ccusage's four token counts, and the ten
decimal places of every cost column (ccusage reports costs as floats; ten places keep its
sums exact to well under a cent)."""

from decimal import Decimal

# ccusage's four token counts, in its order.
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_creation_tokens", "cache_read_tokens")
# Every figure of a fact, block or API row: the counts, their total and the cost in USD.
FIGURE_FIELDS = (*TOKEN_FIELDS, "total_tokens", "cost_usd")
# The cost columns' decimal places (DailyUsage.cost_usd and every other cost_usd).
COST_PLACES = Decimal("0.0000000001")
