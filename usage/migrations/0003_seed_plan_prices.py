"""Seeds the plan price table with public US list prices (monthly billing, before tax).

Admins edit these rows in the Django admin; this migration never overwrites an edited row.
- Pro $20, Max 5x $100, Max 20x $200: claude.com/pricing and the Max plan help article
  ("5x / 20x more usage than Pro").
- Team: the premium seat ($150 per member per month, Team plan billing help article), the
  seat that includes Claude Code. Its allowance is not published as a multiple of Pro;
  6.25x is an estimate between Pro and Max 20x, to be corrected in the admin.
- Enterprise: no public list price; $60 per seat and Team's allowance are placeholders to
  replace with the contract's figures.
- API: pay as you go, no monthly fee (the plan's cost is the API-equivalent cost itself).
- Custom: the subscription's own monthly price applies; the row exists so every plan has one.
"""

from decimal import Decimal

from django.db import migrations

PRICES = {
    # plan: (monthly USD per seat, usage allowance relative to Pro)
    "pro": (Decimal("20.00"), Decimal("1")),
    "max5x": (Decimal("100.00"), Decimal("5")),
    "max20x": (Decimal("200.00"), Decimal("20")),
    "team": (Decimal("150.00"), Decimal("6.25")),
    "enterprise": (Decimal("60.00"), Decimal("6.25")),
    "api": (Decimal("0.00"), Decimal("0")),
    "custom": (Decimal("0.00"), Decimal("1")),
}


def seed(apps, schema_editor):
    PlanPrice = apps.get_model("usage", "PlanPrice")
    for plan, (monthly, capacity) in PRICES.items():
        PlanPrice.objects.get_or_create(
            plan=plan, defaults={"monthly_usd": monthly, "capacity_vs_pro": capacity}
        )


def unseed(apps, schema_editor):
    # Rows stay: they may have been edited, and the table has no other source of truth.
    pass


class Migration(migrations.Migration):
    dependencies = [("usage", "0002_block_is_active")]

    operations = [migrations.RunPython(seed, unseed)]
