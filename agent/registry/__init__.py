"""The registry's wire protocol, client side: thin, typed, one method per endpoint."""

from __future__ import annotations
