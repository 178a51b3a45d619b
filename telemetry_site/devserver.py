"""Where the development site answers: `make run`'s welcome process writes the URL to
`var/site-url` once the web server is up and removes it when stopped, so `make demo` (which
may run with another PORT) can point people to the site that actually runs."""

import json
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings


def run_file() -> Path:
    return Path(settings.VAR_DIR) / "site-url"


HEALTH_STATES = frozenset({"ok", "degraded", "unavailable"})


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether `url`, this site's `/healthz`, answers as this site does: a JSON object whose
    `status` is one of telemetry_site.health's states (503 included: the site is up, its
    database is not). Another program on the same port does not count."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our URL
            body = response.read(65536)
    except urllib.error.HTTPError as error:
        body = error.read(65536)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("status") in HEALTH_STATES


def record_running(site_url: str, probe: str) -> None:
    """Note that the site people open at `site_url` runs, checked through `probe`."""
    path = run_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"site_url": site_url, "probe": probe}), encoding="utf-8")


def forget_running() -> None:
    run_file().unlink(missing_ok=True)


def running_site() -> str | None:
    """The URL of the development site that answers now: the one `make run` recorded, else
    SITE_URL if it answers; None when no site runs."""
    try:
        recorded = json.loads(run_file().read_text(encoding="utf-8"))
        if answers(recorded["probe"]):
            return str(recorded["site_url"]).rstrip("/")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    site = settings.SITE_URL.rstrip("/")
    return site if answers(f"{site}/healthz") else None
