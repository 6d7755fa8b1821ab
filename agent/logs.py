"""Logging: structlog configured once, JSON when not on a terminal, secrets redacted.

Events have stable dotted names (`registry.listening`, `job.claimed`, ...). The redaction
processor masks values under secret-looking keys and presigned-URL signatures anywhere in a
string, so a token or signature cannot reach a log line by accident.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(
    r"(token|password|passwd|secret|authorization|signature|credential|private)", re.I
)
_URL_SECRETS = re.compile(
    r"(?i)((?:signature|sig|token|x-amz-signature|x-amz-credential)=)[^&\s\"']+"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
MASK = "***"


def redact_text(text: str) -> str:
    """Mask bearer tokens and signature-like query parameters in free text."""
    return _BEARER.sub(rf"\g<1>{MASK}", _URL_SECRETS.sub(rf"\g<1>{MASK}", text))


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: MASK if _SECRET_KEYS.search(str(k)) else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: mask secrets in every field of an event."""
    for key in list(event):
        if _SECRET_KEYS.search(key) and key != "event":
            event[key] = MASK
        else:
            event[key] = _redact(event[key])
    return event


def configure(level: str = "info", *, json: bool | None = None) -> None:
    """Configure structlog for the process (JSON unless stderr is a terminal)."""
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
