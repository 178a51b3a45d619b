"""`rebuild_rollups [--team SLUG ...]`: recompute the usage rollups from the daily facts.

The triggers keep the rollups equal to the facts; this repairs them after anything that
bypassed the triggers (a restore of one table, a manual edit with the triggers disabled), one
team at a time so each team's ingest waits only for its own rebuild (usage.rollups.rebuild).
"""

import time

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Team
from usage import rollups


class Command(BaseCommand):
    help = "Recompute the usage rollups of every team (or of the teams named) from their facts."

    def add_arguments(self, parser):
        parser.add_argument(
            "--team",
            action="append",
            default=[],
            metavar="SLUG",
            help="Only this team (its slug); may be repeated.",
        )

    def handle(self, *args, **opts):
        teams = Team.objects.order_by("slug")
        if opts["team"]:
            teams = teams.filter(slug__in=opts["team"])
            missing = sorted(set(opts["team"]) - set(teams.values_list("slug", flat=True)))
            if missing:
                raise CommandError(f"No team with the slug {', '.join(missing)}.")
        found = list(teams.values_list("pk", "slug"))
        if not found:
            self.stdout.write("No teams.")
            return
        self.stdout.write(f"Rebuilding the rollups of {len(found)} team(s).")
        for number, (pk, slug) in enumerate(found, start=1):
            started = time.monotonic()
            rollups.rebuild([pk])
            self.stdout.write(f"  {number}/{len(found)} {slug}: {time.monotonic() - started:.1f} s")
        self.stdout.write(self.style.SUCCESS("Rollups rebuilt from the facts."))
