"""Installed modules: manifests, their functions, and how a function's command is built."""

from __future__ import annotations
