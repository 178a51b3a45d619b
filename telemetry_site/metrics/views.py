"""GET /metrics: the Prometheus exposition of the token's team (and, for the deployment's
operator, of the server), in the text format or OpenMetrics as the scraper asks."""

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.views import APIView

from accounts.access import Viewer
from telemetry_site.api.permissions import TokenHasScope
from telemetry_site.api.throttles import ReadThrottle
from telemetry_site.metrics.server import ServerCollector, process_registry
from telemetry_site.metrics.team import TeamCollector


class JsonErrors(BaseContentNegotiation):
    """Errors (401, 403, 429) are JSON whatever the scraper accepts; the exposition itself
    follows the Accept header through prometheus_client's choose_encoder."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return None


class MetricsView(APIView):
    """A token with the `metrics` scope (or a logged-in session) reads what its owner may see
    of their team; a staff user's scrape adds the server's operational metrics."""

    permission_classes = [TokenHasScope]
    required_scope = "metrics"
    throttle_classes = [ReadThrottle]
    content_negotiation_class = JsonErrors

    @extend_schema(exclude=True)
    def get(self, request):
        now = timezone.now()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(TeamCollector(Viewer.of(request.user), now))
        if request.user.is_staff:
            registry.register(ServerCollector(now))
            registry.register(process_registry())
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return HttpResponse(encoder(registry), content_type=content_type)
