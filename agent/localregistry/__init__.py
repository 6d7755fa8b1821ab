"""The embedded Istari-compatible registry: aiohttp over SQLite, content-addressed blobs."""

from __future__ import annotations
