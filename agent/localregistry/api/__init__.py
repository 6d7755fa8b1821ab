"""The registry's HTTP routes, one module per resource family."""

from __future__ import annotations
