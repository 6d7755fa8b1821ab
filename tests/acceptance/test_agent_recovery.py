"""`kill -9` of a real agent process mid-job, then a restart: the job ends Failed, saying why,
and the tool the dead agent left running (SIGTERM ignored, a child in its own session) is
stopped. No job stays stuck in Running; no tool runs on unwatched.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import psutil

from agent.jobs.states import JobStatus
from agent.registry.client import RegistryClient
from agent.submit import Submission, submit
from tests.acceptance.test_agent_cli import agent, agent_env
from tests.acceptance.test_agent_push_cli import running_agent
from tests.conftest import RegistryProcess
from tests.integration.test_agent_lifecycle import gone
from tests.logwatch import eventually
from tests.tools import module


async def test_a_restart_after_kill_9_fails_the_held_job_and_stops_its_orphaned_tool(
    registry_process: RegistryProcess, tmp_path: Path
) -> None:
    module.install(tmp_path / "modules")
    async with RegistryClient(registry_process.url, registry_process.token) as client:
        await client.publish_module(module.manifest())
        model = tmp_path / "part.txt"
        model.write_text("model")
        sleeper = Submission(model, module.fn("sleep"), {"seconds": 120, "ignore_term": True})
        job_id = (await submit(client, sleeper)).id
    temp = tmp_path / "work" / job_id / "tmp"
    env = {**agent_env(registry_process, tmp_path), "ISTARI_DIGITAL_AGENT_KILL_GRACE": "0.5"}
    async with running_agent(env) as run:
        await run.wait_for("job.tool_started", job_id=job_id)
        await eventually((temp / "tool.pid").exists)  # past the point where it ignores SIGTERM
        run.process.send_signal(signal.SIGKILL)
        assert await run.process.wait() == -9
    pids = [int((temp / name).read_text()) for name in ("tool.pid", "child-0.pid", "child-1.pid")]
    assert all(psutil.pid_exists(pid) for pid in pids)  # orphaned, still running

    restarted = agent(env, "run", "--until-idle")
    assert restarted.returncode == 0, restarted.stderr
    events = [json.loads(line) for line in restarted.stderr.splitlines() if line.startswith("{")]
    assert [e["job_id"] for e in events if e["event"] == "job.recovered"] == [job_id]
    assert all(gone(pid) for pid in pids), [p for p in pids if not gone(p)]
    async with RegistryClient(registry_process.url, registry_process.token) as client:
        job = await client.get_job(job_id)
    assert job.status is JobStatus.FAILED
    message = job.status_history[-1].message or ""
    assert message.startswith("the agent stopped unexpectedly while the job was Running")
    assert "its tool was still running and has been stopped" in message
