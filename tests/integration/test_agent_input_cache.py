"""The input cache with a real agent: ten jobs on one model download it once, a tool that
writes over its input cannot change what the next job gets, and a disk too small for an
input fails that job alone."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.cache.store import read_index
from agent.protocol.states import JobStatus
from agent.registry.models import Job, Resource
from agent.registry.transfer import upload_revision
from tests.support.agent_harness import AgentHarness
from tests.support.disks import small_tmpfs
from tests.support.faultproxy import FaultProxy
from tests.tools import module

MiB = 1024 * 1024


async def _model(harness: AgentHarness, content: bytes, name: str = "part.txt") -> Resource:
    await harness.client.publish_module(module.manifest())
    path = harness.root / "models" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return await harness.client.create_model(await upload_revision(harness.client, path))


async def _job_on(
    harness: AgentHarness, model: Resource, behaviour: str, params: dict[str, Any]
) -> Job:
    """A job on an existing model (harness.submit uploads a new model each time)."""
    path = harness.root / "params" / f"{len(list(harness.root.glob('params/*')))}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(params))
    revision = await upload_revision(harness.client, path)
    return await harness.client.submit_job(model.id, module.fn(behaviour), revision)


async def test_ten_jobs_on_one_model_download_it_once(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    content = os.urandom(3 * MiB)
    model = await _model(faulty, content)
    sha = model.file.current.content_token.sha
    jobs = [await _job_on(faulty, model, "echo", {"label": f"j{i}"}) for i in range(10)]
    outcomes = await faulty.run(max_concurrent_jobs=10)
    assert len(outcomes) == 10
    assert [(await faulty.job(j.id)).status for j in jobs] == [JobStatus.COMPLETED] * 10
    assert proxy.hits("GET", f"^/blobs/{sha}$") == 1  # ten jobs, one download
    for job in jobs:  # each tool had the model's bytes in its own file
        assert (faulty.workdir(job) / "in" / "part.txt").read_bytes() == content
    inodes = {(faulty.workdir(j) / "in" / "part.txt").stat().st_ino for j in jobs}
    assert len(inodes) == 10  # copies, not links to one file
    entries, _ = read_index(faulty.root / "state" / "cache")
    assert set(entries) == {sha} and entries[sha].name == "part.txt"


async def test_a_tool_writing_over_its_input_cannot_change_the_cache(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    harness = faulty
    content = b"pristine model bytes\n" * 1000
    model = await _model(harness, content)
    scribbler = await _job_on(harness, model, "scribble", {})
    assert len(await harness.run(max_concurrent_jobs=1)) == 1
    assert (await harness.job(scribbler.id)).status is JobStatus.COMPLETED
    written = harness.workdir(scribbler) / "in" / "part.txt"
    assert written.read_bytes().startswith(b"SCRIBBLED")  # the tool did write over its copy
    reader = await _job_on(harness, model, "echo", {"label": "after"})
    assert len(await harness.run()) == 1
    assert (await harness.job(reader.id)).status is JobStatus.COMPLETED
    assert (harness.workdir(reader) / "in" / "part.txt").read_bytes() == content
    assert (harness.workdir(reader) / "tmp" / "copy-part.txt").read_bytes() == content
    sha = model.file.current.content_token.sha
    assert (harness.root / "state" / "cache" / "blobs" / sha).read_bytes() == content
    # Served from the cache, untouched: a changed cached file would have been downloaded again.
    assert proxy.hits("GET", f"^/blobs/{sha}$") == 1


@pytest.fixture
def small_output(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs for work directories (needs root, as this suite runs)."""
    with small_tmpfs(tmp_path / "small-work", "1m") as mount:
        yield mount


async def test_an_input_that_does_not_fit_fails_its_job_and_the_agent_goes_on(
    harness: AgentHarness, small_output: Path
) -> None:
    too_big = await harness.submit("echo", {"label": "big"}, content=os.urandom(2 * MiB))
    small = await harness.submit("echo", {"label": "small"}, content=b"fits")
    outcomes = await harness.run(output_path=small_output, cache_max_gb=0, max_concurrent_jobs=1)
    assert len(outcomes) == 2
    failed = await harness.job(too_big.id)
    assert failed.status is JobStatus.FAILED
    message = failed.status_history[-1].message or ""
    assert "no room on disk for the model (part.txt)" in message, message
    assert "it needs 2.0 MiB" in message and "free" in message
    assert not (small_output / too_big.id / "in" / "part.txt").exists()  # partial removed
    assert (await harness.job(small.id)).status is JobStatus.COMPLETED
