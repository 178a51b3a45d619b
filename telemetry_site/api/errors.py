"""API-wide error shape: every error is JSON with a `detail` and, for bad input, field errors.

Also what the schema says about errors: the error body and the standard responses by status.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """DRF's handler, with field errors under `errors` and a whole-second Retry-After on 429."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict | list):
        response.data = {"detail": "Invalid input.", "errors": response.data}
    if isinstance(exc, exceptions.Throttled):
        # The stubs leave out Throttled.wait (seconds, or None), which DRF always sets.
        wait: float | None = getattr(exc, "wait", None)
        if wait is not None:
            response["Retry-After"] = str(max(1, int(wait + 0.999)))
    return response


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    # DRF's metaclass moves declared fields off the class, so Serializer.errors stays intact.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Reasons by field or JSON path, e.g. `reports.claude_session.sessions[3]"
        ".totalCost`.",
    )


RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before the next request.",
)

ERROR_TEXT = {
    400: "Invalid input: `errors` names each bad field or JSON path.",
    401: "Missing, malformed, unknown, revoked or expired token.",
    403: "The token lacks the scope, or the role does not allow this.",
    404: "Not found, or not yours.",
    409: "The machine UUID belongs to another user.",
    413: "The body (compressed or inflated) is larger than the limit.",
    415: "Unsupported Content-Encoding (use gzip or none).",
    429: "Too many requests for this token; see Retry-After.",
}


def error_responses(*codes: int, error=ErrorSerializer) -> dict:
    """The schema's responses for these error statuses: `{status: OpenApiResponse}`."""
    return {code: OpenApiResponse(error, description=ERROR_TEXT[code]) for code in codes}
