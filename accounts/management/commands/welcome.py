"""Prints the URL to open and, while nobody can log in yet, how to create the first owner.

`make run` starts it as a Procfile process with `--wait-for`: it waits until the web server
answers, so its lines come last, after the processes' start-up banners, and then stays
(honcho stops every process when one of them exits) until Ctrl-C stops them all.
"""

import signal
import sys
import threading
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from telemetry_site.devserver import answers, forget_running, record_running
from telemetry_site.formatting import FIRST_OWNER_COMMAND


class Command(BaseCommand):
    help = "Print the URL to open and, on a new install, the command that creates the first owner."

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait-for",
            metavar="URL",
            help="Print once URL answers (at most --timeout seconds), then stay until stopped.",
        )
        parser.add_argument("--timeout", type=float, default=120.0)

    def handle(self, *args, **options):
        probe = options["wait_for"]
        if probe and self._wait(probe, options["timeout"]):
            # `make demo` reads it to name the site that runs, whatever port it is on.
            record_running(settings.SITE_URL, probe)
            for stop in (signal.SIGTERM, signal.SIGINT):
                signal.signal(stop, self._stop)
        self._print()
        if probe:
            # Exiting would make honcho stop the web server, the worker and beat.
            threading.Event().wait()

    def _stop(self, signum, frame) -> None:
        forget_running()
        sys.exit(0)

    def _wait(self, url: str, timeout: float) -> bool:
        """Until `url` answers as this site's /healthz (True), or `timeout` seconds passed;
        another program on the port does not count, so nobody is sent to it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if answers(url):
                return True
            time.sleep(0.5)
        self.stderr.write(
            f"{url} did not answer as claude-telemetry within {timeout:.0f} s: is the web "
            "server up, or is another program using its port? (Run with PORT=… to pick another.)"
        )
        return False

    def _print(self) -> None:
        self.stdout.write(
            self.style.SUCCESS(f"claude-telemetry is starting at {settings.SITE_URL}/")
        )
        if not get_user_model().objects.exists():
            self.stdout.write(
                "No user exists yet. In another terminal, create the first owner:\n"
                f"  {FIRST_OWNER_COMMAND}\n"
                "then open the URL above and ask for a login link."
            )
        if settings.EMAIL_BACKEND.endswith("filebased.EmailBackend"):
            self.stdout.write(f"Login emails are written to {settings.EMAIL_FILE_PATH}/.")
        self.stdout.write("Press Ctrl-C to stop the web server, the worker and beat.")
