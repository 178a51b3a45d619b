"""WSGI entry point for gunicorn."""

import gc
import os
import threading

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "telemetry_site.settings")

# The requests after which a process moves what it has built so far out of the collector's way.
FREEZE_AFTER_REQUESTS = (50, 500)


class FreezeAfterWarmUp:
    """Wraps a WSGI application: after the FREEZE_AFTER_REQUESTS'th responses of the process,
    collect garbage once and gc.freeze() what is left.

    A process builds long-lived objects on its first requests (compiled templates, lazily
    imported modules, caches). Left in the oldest generation, every full collection walks
    them again: 65-80 ms added to whichever request runs then, measured on the 1,000-member
    benchmark team (docs/benchmarks.md). Frozen objects are skipped (see the gc.freeze docs);
    the one collection before each freeze frees what is garbage by then.
    """

    def __init__(self, app, after: tuple[int, ...] = FREEZE_AFTER_REQUESTS):
        self.app = app
        self.after = set(after)
        self.served = 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        try:
            return self.app(environ, start_response)
        finally:
            with self.lock:
                self.served += 1
                freeze = self.served in self.after
            if freeze:
                gc.collect()
                gc.freeze()


application = FreezeAfterWarmUp(get_wsgi_application())

# URL patterns (and the views they import) load on the first request; load them now so they
# join the start-up objects frozen below.
get_resolver().resolve("/")
# Start-up objects live as long as the process: the permanent generation keeps the collector
# from walking them on every full collection.
gc.freeze()
