"""What every handler of the local registry shares: database, blobs, tokens, settings."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from agent.localregistry.auth import Principal, TokenStore
from agent.localregistry.blobs import BlobStore
from agent.localregistry.identity import AccessTokens
from agent.localregistry.multipart import MultipartUploads

# Called after a change that may interest agents was committed: (event, details). The MQTT
# notifier (notify.py) is one; it maps job.available, job.status, pool.restored and
# pool.member_added to push notices. A listener must not block: it runs inside the handler.
Listener = Callable[[str, dict[str, Any]], None]

REGISTRY_KEY: web.AppKey[Registry] = web.AppKey("registry")
PRINCIPAL_KEY: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
MAX_JSON_KEY: web.AppKey[int] = web.AppKey("max_json_body")


@dataclass
class Registry:
    """The registry's shared state, one per application."""

    conn: sqlite3.Connection
    blobs: BlobStore
    multipart: MultipartUploads
    tokens: TokenStore
    identity: AccessTokens  # identity-service mode: agent keys and access tokens
    base_url: str = ""
    identity_only: bool = False  # no PAT can be made (the platform with its identity service on)
    listeners: list[Listener] = field(default_factory=list)

    def emit(self, event: str, details: dict[str, Any]) -> None:
        """Tell listeners about a change (after it was committed)."""
        for listener in self.listeners:
            listener(event, details)


def registry(request: web.Request) -> Registry:
    """The registry behind this request."""
    return request.app[REGISTRY_KEY]


def principal(request: web.Request) -> Principal:
    """Who made this (authenticated) request."""
    return request[PRINCIPAL_KEY]
