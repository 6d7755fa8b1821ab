"""A user cancels a running job: the tool's whole tree is stopped and nothing more is reported.

The tool ignores SIGTERM and has a child in its group and one in its own session, so only
the grace period's SIGKILL of the whole tree ends it. The cancel is seen by the job's status
watch (polling) or at once by a push notice; the latency from the cancel request to the
agent acting on it is printed (a figure, not an assertion).
"""

from __future__ import annotations

import time
from typing import Any

from agent.daemon import Mode
from agent.jobs.outcome import Reason
from agent.protocol.states import JobStatus
from tests.support.agent_harness import AgentHarness, serving, wait_for_status
from tests.support.logwatch import eventually, watch_logs
from tests.support.processes import gone, processes_in
from tests.support.push import PUSH_ONLY


async def cancel_a_stubborn_tool(harness: AgentHarness, **settings: Any) -> float:
    """Cancel a running job whose tool ignores SIGTERM; check it all stopped; the latency."""
    job = await harness.submit("sleep", {"seconds": 120, "ignore_term": True})
    temp = harness.workdir(job) / "tmp"
    with watch_logs() as logs:
        async with serving(harness, kill_grace=0.5, **settings):
            await wait_for_status(harness, job.id, JobStatus.RUNNING)
            await eventually((temp / "tool.pid").exists)  # it ignores SIGTERM from here on
            asked, at = logs.mark(), time.monotonic()
            await harness.client.update_job_status(job.id, JobStatus.CANCELED, None)
            acting = await logs.wait_for("job.canceling", asked, job_id=job.id)
            finished = await logs.wait_for("job.finished", asked, job_id=job.id)
            assert finished["reason"] == "canceled_by_user"
            after = await harness.submit("echo", {"label": "the agent goes on"})
            await wait_for_status(harness, after.id, JobStatus.COMPLETED)

    pids = [int((temp / name).read_text()) for name in ("tool.pid", "child-0.pid", "child-1.pid")]
    assert all(gone(pid) for pid in pids), [p for p in pids if not gone(p)]
    assert not processes_in(temp)
    canceled = await harness.job(job.id)
    assert canceled.status is JobStatus.CANCELED
    assert canceled.status_history[-1].name is JobStatus.CANCELED  # nothing reported after it
    assert await harness.artifacts(canceled) == {}  # no outputs, no log: the job is over
    return float(acting["_at"]) - at


async def test_a_cancel_seen_by_the_status_watch_stops_the_whole_tree(
    harness: AgentHarness,
) -> None:
    latency = await cancel_a_stubborn_tool(harness, cancel_check_interval=0.3)
    print(f"\ncancel seen by polling every 0.3 s after {latency * 1000:.0f} ms")


async def test_a_cancel_pushed_over_mqtt_is_acted_on_at_once(push_harness: AgentHarness) -> None:
    latency = await cancel_a_stubborn_tool(
        push_harness, **{**PUSH_ONLY, "cancel_check_interval": 3600}
    )
    print(f"\ncancel seen by push after {latency * 1000:.0f} ms")


async def test_a_cancel_during_uploading_stops_the_upload_and_reports_nothing(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("echo", {"label": "canceled while uploading"})
    harness.cancel_when_uploading(job.id)  # every artifact the agent then creates: 409
    outcomes = await harness.run(Mode.UNTIL_IDLE)

    assert [o.reason for o in outcomes] == [Reason.CANCELED_BY_USER]
    assert "the registry refused its outputs" in outcomes[0].message  # the 409 said so
    canceled = await harness.job(job.id)
    assert canceled.status_history[-1].name is JobStatus.CANCELED
    assert await harness.artifacts(canceled) == {}
