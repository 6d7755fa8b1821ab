"""The job lifecycle: states, outcomes, and the stages that move a job through them."""

from __future__ import annotations
