"""Log formats that keep `extra=` fields: one JSON object per line, or text with key=value.
Both take secrets out of every line (redact_secrets): login links carry theirs in the path."""

import json
import logging
import re
from datetime import UTC, datetime

# URL paths whose last part is a secret; the route is accounts/urls.py `login_link`.
SECRET_PATHS = re.compile(r"(/accounts/login/link/)[^/\s\"'<>?#]+")
REDACTED = "[redacted]"


def redact_secrets(text: str) -> str:
    """`text` with the secret part of login-link paths replaced by `[redacted]` (request lines,
    paths and referers in access logs and in the app's own log lines)."""
    return SECRET_PATHS.sub(rf"\1{REDACTED}", text)


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
# Django's own extras on request and server log lines: the request (or the dev server's
# socket) object and a second timestamp say nothing the line does not (status_code stays).
_NOISE = {"request", "server_time"}


def _extras(record: logging.LogRecord) -> dict:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and key not in _NOISE and not key.startswith("_")
    }


class TextFormatter(logging.Formatter):
    """Readable lines for development that still show what was passed through `extra=`."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{key}={value}" for key, value in _extras(record).items())
        if not extras:
            return redact_secrets(line)
        head, sep, tail = line.partition("\n")
        return redact_secrets(f"{head} [{extras}]{sep}{tail}")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Anything passed through `extra=` becomes a field of its own.
        payload.update(_extras(record))
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return redact_secrets(json.dumps(payload, default=str))
