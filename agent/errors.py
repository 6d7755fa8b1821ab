"""The root of the agent's error hierarchy; each boundary has its own subtree."""

from __future__ import annotations


class AgentError(Exception):
    """Something the agent could not do. The docstring of a subclass is its default message."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (type(self).__doc__ or type(self).__name__).strip())
