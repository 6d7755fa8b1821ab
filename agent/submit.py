"""`istari-agent submit`: upload a model, submit a job on it, and optionally follow it."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.protocol.states import TERMINAL, JobStatus
from agent.registry.client import RegistryClient
from agent.registry.models import Job
from agent.registry.transfer import upload_revision


def parse_param(item: str) -> tuple[str, Any]:
    """`key=value` -> (key, value); the value is JSON when it parses as JSON, else a string."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        msg = f"--param takes key=value, got {item!r}"
        raise ValueError(msg)
    try:
        return key, json.loads(raw)
    except ValueError:
        return key, raw


@dataclass(frozen=True)
class Submission:
    """What to submit."""

    model_file: Path
    function: str
    parameters: dict[str, Any]
    pool_id: str | None = None
    agent_id: str | None = None
    module_name: str | None = None
    credentials: dict[str, str] = field(default_factory=dict)  # auth_info input -> credential id


async def submit(client: RegistryClient, s: Submission) -> Job:
    """Upload the model and the parameters file, then submit the job."""
    model = await client.create_model(await upload_revision(client, s.model_file))
    with tempfile.TemporaryDirectory(prefix="istari-params-") as tmp:
        params_path = Path(tmp) / "parameters.json"
        params_path.write_text(json.dumps(s.parameters, separators=(",", ":")))
        params = await upload_revision(client, params_path)
    return await client.submit_job(
        model.id,
        s.function,
        params,
        s.credentials,
        assigned_agent_pool_id=s.pool_id,
        assigned_agent_id=s.agent_id,
        module_name=s.module_name,
    )


async def follow(
    client: RegistryClient,
    job_id: str,
    on_change: Callable[[JobStatus, str | None], None],
    *,
    interval: float = 0.25,
) -> Job:
    """Poll a job until it is terminal, calling `on_change` on each new status.

    Bound it with `asyncio.timeout` where a deadline matters.
    """
    seen = 0
    while True:
        job = await client.get_job(job_id)
        for entry in job.status_history[seen:]:
            on_change(entry.name, entry.message)
        seen = len(job.status_history)
        if job.status in TERMINAL:
            return job
        await asyncio.sleep(interval)
