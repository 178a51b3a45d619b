"""The OTLP set-up page (/settings/otlp/): what to paste so Claude Code sends its own telemetry
to this server, per OS, with a token made on the spot; and a "test connection" that shows the
last OTLP batch this member's Claude Code sent (refreshed by static/js/otlp_setup.js)."""

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.template.defaultfilters import date as date_filter
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.access import Viewer
from accounts.models import ApiToken
from usage.models import IngestBatch, IngestPath, Machine

TOKEN_PLACEHOLDER = "cct_YOUR_TOKEN"
TOKEN_NAME = "Claude Code OTLP"
# Where Claude Code reads managed settings, per its settings documentation.
MANAGED_SETTINGS_PATHS = {
    "macOS": "/Library/Application Support/ClaudeCode/managed-settings.json",
    "Linux and WSL": "/etc/claude-code/managed-settings.json",
    "Windows": r"C:\ProgramData\ClaudeCode\managed-settings.json",
}
OTLP_PATHS = ("otlp-logs", "otlp-metrics")


def environment(endpoint: str, token: str, host: str) -> dict[str, str]:
    """The variables Claude Code needs, in order: telemetry on, both exporters over
    OTLP/HTTP protobuf, this server's base, the token, delta metrics, the machine's name."""
    return {
        "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer {token}",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
        "OTEL_RESOURCE_ATTRIBUTES": f"host.name={host}",
    }


def snippets(endpoint: str, token: str) -> dict[str, str]:
    """What to paste: a POSIX shell profile, PowerShell (kept for the user) and the managed
    settings JSON (one file for every user of the machine)."""
    shell = environment(endpoint, token, "$(hostname)")
    powershell = environment(endpoint, token, "$([System.Net.Dns]::GetHostName())")
    managed = environment(endpoint, token, "HOSTNAME")
    return {
        "shell": "\n".join(f'export {name}="{value}"' for name, value in shell.items()),
        "powershell": "\n".join(
            f'[Environment]::SetEnvironmentVariable("{name}", "{value}", "User")'
            for name, value in powershell.items()
        ),
        "managed": json.dumps({"env": managed}, indent=2),
    }


def last_batch(user) -> dict | None:
    """The newest OTLP batch of this user, as the page shows it: when (ISO and in the viewer's
    timezone), which signal, how many records, outcome and error; None before the first."""
    batch = (
        IngestBatch.objects.filter(user=user, ingest_path__in=OTLP_PATHS)
        .select_related("machine")
        .order_by("-received_at")
        .first()
    )
    if batch is None:
        return None
    counts = batch.counts or {}
    if batch.ingest_path == "otlp-logs":
        logs = counts.get("otlp_logs", {})
        records = int(logs.get("requests", 0)) + int(logs.get("duplicates", 0))
        signal = "logs"
    else:
        records = int(counts.get("otlp_metrics", {}).get("data_points", 0))
        signal = "metrics"
    local = timezone.localtime(batch.received_at)
    return {
        "received_at": batch.received_at.isoformat(),
        "received_local": date_filter(local, "M j, H:i:s T"),
        "signal": signal,
        "records": records,
        "outcome": batch.status,
        "error": batch.error,
        "machine": batch.machine.name if batch.machine else "",
    }


@login_required
@require_http_methods(["GET", "POST"])
def otlp_setup(request):
    """The page; a POST creates an `ingest` token and shows it once, filled into the snippets."""
    viewer = Viewer.of(request.user)
    raw_token = None
    if request.method == "POST" and viewer.team is not None:
        _, raw_token = ApiToken.issue(request.user, TOKEN_NAME, ["ingest"])
    endpoint = settings.SITE_URL.rstrip("/") + "/otlp"
    machines = Machine.objects.filter(owner=request.user, ingest_path=IngestPath.OTLP).order_by(
        "name"
    )
    context = {
        "viewer": viewer,
        "endpoint": endpoint,
        "raw_token": raw_token,
        "snippets": snippets(endpoint, raw_token or TOKEN_PLACEHOLDER),
        "managed_paths": MANAGED_SETTINGS_PATHS,
        "last": last_batch(request.user),
        "machines": machines,
    }
    return render(request, "dashboards/otlp_setup.html", context, status=201 if raw_token else 200)


@login_required
@require_GET
def otlp_status(request):
    """The "test connection" figures as JSON: {"last_batch": {…} or null} (see last_batch)."""
    return JsonResponse({"last_batch": last_batch(request.user)})
