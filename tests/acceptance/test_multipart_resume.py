"""A multipart upload of a real agent process cut by `kill -9` resumes at the parts the
registry acknowledged: the restarted agent sends only the missing parts, under the same
upload id and salt, and the output arrives intact.

The registry's presigned URLs point through a fault proxy, which counts every part PUT and
holds parts 5 to 8 back, so the agent is killed with parts 1 to 4 acknowledged (journaled)
and 5 to 8 in flight.
"""

from __future__ import annotations

import hashlib
import secrets
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.registry.client import RegistryClient
from agent.submit import Submission, submit
from tests.support.agentcli import agent_env, running_agent
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.logwatch import eventually
from tests.support.registry import RegistryProcess, start_registry_process, stop_registry_process
from tests.tools import module

MiB = 2**20
PARTS = 8
PART = r"/blobs/[0-9a-f]{96}/parts/[0-9a-f]+/"


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[RegistryProcess, FaultProxy]]:
    """A registry process whose presigned URLs (and API) are reached through a fault proxy."""
    async with FaultProxy() as proxy:
        token = secrets.token_urlsafe(24)
        reg = start_registry_process(tmp_path / "registry", token, "--public-url", proxy.url)
        proxy.upstream = reg.url
        try:
            yield reg, proxy
        finally:
            stop_registry_process(reg)


def _part_puts(proxy: FaultProxy) -> list[int]:
    return [proxy.hits("PUT", f"{PART}{n}$") for n in range(1, PARTS + 1)]


async def test_an_upload_cut_by_kill_9_resumes_at_the_acknowledged_parts(
    proxied: tuple[RegistryProcess, FaultProxy], tmp_path: Path
) -> None:
    reg, proxy = proxied
    module.install(tmp_path / "modules")
    env = {
        **agent_env(reg, tmp_path),
        "ISTARI_DIGITAL_AGENT_REGISTRY_API_URL": proxy.url,
        "ISTARI_DIGITAL_AGENT_MULTIPART_THRESHOLD": str(MiB),
        "ISTARI_DIGITAL_AGENT_MULTIPART_CHUNKSIZE": str(MiB),
        "ISTARI_DIGITAL_AGENT_KEEP_WORK_DIRS": "always",  # the output is compared afterwards
    }
    for n in range(5, PARTS + 1):  # held until the agent is gone
        proxy.inject(Fault("PUT", f"{PART}{n}$", "delay", delay_s=90))
    async with RegistryClient(reg.url, reg.token) as client:
        await client.publish_module(module.manifest())
        model = tmp_path / "part.txt"
        model.write_text("model")
        submission = Submission(model, module.fn("big_output"), {"megabytes": PARTS})
        job = await submit(client, submission)

    async with running_agent(env) as run:
        await eventually(lambda: all(_part_puts(proxy)), deadline=60)
        run.process.send_signal(signal.SIGKILL)
        assert await run.process.wait() == -9
    before = _part_puts(proxy)
    assert before == [1] * PARTS  # 1-4 acknowledged, 5-8 held when the agent died

    async with running_agent(env) as run:
        finished = await run.wait_for("job.finished", job_id=job.id)
    assert finished["status"] == "Completed"
    resumed = [a - b for a, b in zip(_part_puts(proxy), before, strict=True)]
    assert resumed == [0, 0, 0, 0, 1, 1, 1, 1]  # only the parts never acknowledged
    assert proxy.hits("POST", "/api/v2/tokens/multipart-upload") == 1  # the same upload id

    [written] = (tmp_path / "work").glob(f"{job.id}*/**/big.bin")
    async with RegistryClient(reg.url, reg.token) as client:
        done = await client.get_job(job.id)
        assert done.model_id is not None
        artifacts = (await client.list_artifacts(done.model_id)).items
        [out] = [a for a in artifacts if a.file.revisions[-1].name == "big.bin"]
        revision = out.file.revisions[-1]
        back = tmp_path / "back.bin"
        url = await client.download_url(revision.content_token.sha)
        await client.get_blob(
            url.url, back, revision.content_token.sha, revision.content_token.salt
        )
    assert (
        hashlib.sha384(back.read_bytes()).digest() == hashlib.sha384(written.read_bytes()).digest()
    )
    assert back.stat().st_size == PARTS * MiB
