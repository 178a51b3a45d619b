"""Base pieces of read endpoints: the read scope and throttle, validated query strings, ids
taken from paths."""

import uuid
from collections.abc import Sequence

from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.permissions import BasePermission, OperandHolder, SingleOperandHolder
from rest_framework.throttling import BaseThrottle

from telemetry_site.api.permissions import TokenHasScope
from telemetry_site.api.throttles import ReadThrottle


class ReadView:
    """Mixin of every read endpoint: a token with the `read` scope (or a session), read rate."""

    # Typed as on APIView, which every user of this mixin also derives from.
    permission_classes: Sequence[type[BasePermission] | OperandHolder | SingleOperandHolder] = [
        TokenHasScope
    ]
    required_scope = "read"
    throttle_classes: Sequence[type[BaseThrottle]] = [ReadThrottle]


def not_found(request, path: str = "") -> JsonResponse:
    """Any path under /api/v1/ no route matches: a JSON 404 like every other API error."""
    return JsonResponse({"detail": "No such API endpoint; see /api/docs/."}, status=404)


def path_uuid(value: str) -> uuid.UUID:
    """An id from a URL path; a malformed one is a JSON 404 like any unknown id."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise exceptions.NotFound("Not found.") from None


def validated(serializer_class, request) -> dict:
    """The query string checked by `serializer_class`, empty values left out; 400 when bad."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return {k: v for k, v in serializer.validated_data.items() if v not in (None, "")}
