"""Installed modules: the catalog of what this agent can run (the manifest is the protocol's)."""

from __future__ import annotations
