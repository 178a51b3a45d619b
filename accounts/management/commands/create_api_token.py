"""`create_api_token EMAIL --name NAME [--scopes ingest,read,metrics]`: prints only the token."""

from django.core.management.base import BaseCommand, CommandError

from accounts.login import is_admitted
from accounts.models import ApiToken, Scope, User


class Command(BaseCommand):
    help = "Create a personal API token and print it (only the token, on stdout)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes", default="ingest,read", help="Comma-separated: ingest,read,metrics"
        )

    def handle(self, *args, **opts):
        user = User.objects.filter(email__iexact=opts["email"].strip()).first()
        if user is None:
            raise CommandError(f"No user {opts['email']!r}. Create one with: manage.py adduser")
        if not user.is_active:
            raise CommandError(f"{user.email} is deactivated; their tokens would not work.")
        scopes = [s.strip() for s in opts["scopes"].split(",") if s.strip()]
        unknown = sorted(set(scopes) - set(Scope.values))
        if not scopes or unknown:
            raise CommandError(
                f"--scopes: unknown {', '.join(unknown) or '(none given)'}; "
                f"choose from {', '.join(Scope.values)}."
            )
        name = opts["name"].strip()
        if not name:
            raise CommandError("--name must not be empty.")
        max_name = ApiToken._meta.get_field("name").max_length
        if max_name is not None and len(name) > max_name:
            raise CommandError("--name: use at most 100 characters.")
        if not is_admitted(user):
            # stderr, so scripts that capture stdout still get only the token.
            self.stderr.write(
                f"Warning: {user.email} is not on their team's allow-list; "
                "the token is refused until they are."
            )
        _, raw = ApiToken.issue(user, name, scopes)
        self.stdout.write(raw)
