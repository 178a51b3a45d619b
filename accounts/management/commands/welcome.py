"""Prints the URL to open and, while nobody can log in yet, how to create the first owner."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print the URL to open and, on a new install, the command that creates the first owner."

    def handle(self, *args, **options):
        self.stdout.write(
            self.style.SUCCESS(f"claude-telemetry is starting at {settings.SITE_URL}/")
        )
        if not get_user_model().objects.exists():
            self.stdout.write(
                "No user exists yet. In another terminal, create the first owner:\n"
                "  .venv/bin/python manage.py adduser you@example.com --team my-team --role owner\n"
                "then open the URL above and ask for a login link."
            )
        if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend"):
            self.stdout.write(f"Login emails are written to {settings.EMAIL_FILE_PATH}/.")
        self.stdout.write("Press Ctrl-C to stop the web server, the worker and beat.")
