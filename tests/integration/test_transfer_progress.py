"""Long transfers show in the job's status message and in the run record: bytes and rate.

A real agent runs a job on a 64 MiB model whose tool writes a 256 MiB output, against the local
registry, with `progress_report_interval` short enough that both transfers outlast it. The
registry's status history then holds Validating and Uploading messages with the figures, and
the run record an entry per report plus one summing each phase up.
"""

from __future__ import annotations

import re

from agent.protocol.states import JobStatus
from agent.runs.store import RECORDS, RunRecords
from tests.support.agent_harness import AgentHarness, serving, wait_for_status

MiB = 2**20
FIGURES = re.compile(r"of [\d.]+ [KMG]iB \(\d+%\)")


async def test_downloads_and_uploads_tell_their_bytes_and_rate(harness: AgentHarness) -> None:
    model = bytes(range(256)) * (64 * MiB // 256)
    job = await harness.submit("big_output", {"megabytes": 256}, model_name="mesh.txt",
                               content=model)  # fmt: skip
    async with serving(harness, progress_report_interval=0.002):
        await wait_for_status(harness, job.id, JobStatus.COMPLETED)

    history = (await harness.job(job.id)).status_history
    said = [(h.name, h.message or "") for h in history]
    downloading = [m for name, m in said if m.startswith("downloading inputs")]
    uploading = [m for name, m in said if m.startswith("uploading outputs")]
    assert downloading and uploading, said
    assert all(name is JobStatus.VALIDATING for name, m in said if m in downloading)
    assert all(name is JobStatus.UPLOADING for name, m in said if m in uploading)
    assert FIGURES.search(uploading[-1]) and "/s" in uploading[-1], uploading[-1]

    records = RunRecords(harness.root / "state" / RECORDS)
    try:
        run = records.get(job.id)
    finally:
        records.close()
    assert run is not None
    ends = {
        e.message.split(" ")[1]: e
        for e in run.entries
        if e.message.startswith(("downloaded ", "uploaded "))
    }
    assert 64 * MiB <= ends["inputs"].tags["bytes"] < 65 * MiB  # the model and the parameters
    assert ends["outputs"].tags["bytes"] >= 256 * MiB  # the output, with the job's log beside it
    assert ends["outputs"].tags["bytes_per_second"] > 0
