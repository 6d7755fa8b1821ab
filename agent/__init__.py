"""istari-agent: a job-execution agent daemon for Istari-compatible registries."""

from __future__ import annotations

__version__ = "0.1.0"
