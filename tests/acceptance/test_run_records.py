"""Run records of a real agent process, read back with `istari-agent runs ...`."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
from datetime import datetime
from pathlib import Path

from agent.registry.client import RegistryClient
from tests.support.agentcli import agent, agent_env, submit_job
from tests.support.registry import RegistryProcess
from tests.tools import module


def artifact_ids(reg: RegistryProcess, job_id: str) -> set[str]:
    async def go() -> set[str]:
        async with RegistryClient(reg.url, reg.token) as client:
            job = await client.get_job(job_id)
            assert job.model_id is not None
            return {a.id for a in (await client.list_artifacts(job.model_id)).items}

    return asyncio.run(go())


def registry_times(reg: RegistryProcess, job_id: str) -> dict[str, float]:
    """When the registry took each of the job's statuses (epoch seconds)."""

    async def go() -> dict[str, float]:
        async with RegistryClient(reg.url, reg.token) as client:
            job = await client.get_job(job_id)
            return {
                s.name.value: datetime.fromisoformat(s.created or "").timestamp()
                for s in job.status_history
            }

    return asyncio.run(go())


def test_records_say_what_ran_step_by_step_with_inputs_and_outputs(
    registry_process: RegistryProcess, tmp_path: Path
) -> None:
    module.install(tmp_path / "modules")
    env = agent_env(registry_process, tmp_path)
    good = submit_job(registry_process, tmp_path, "echo", {"label": "recorded"})
    bad = submit_job(registry_process, tmp_path, "exit", {"code": 3})
    assert agent(env, "run", "--until-idle").returncode == 1  # one failed on purpose

    listed = json.loads(agent(env, "runs", "list", "--json").stdout)
    assert {r["job_id"] for r in listed} == {good, bad}
    shown = agent(env, "runs", "show", good[:8], "--json")
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    assert (run["status"], run["reason"], run["exit_code"]) == ("Completed", "completed", 0)
    assert [s["phase"] for s in run["steps"]] == ["Validating", "Running", "Uploading"]
    times = [t for s in run["steps"] for t in (s["started"], s["ended"])]
    assert times == sorted(times) and run["started"] <= times[0] and times[-1] <= run["ended"]
    # The registry took each phase while the record says the job was in it (one clock here).
    told = registry_times(registry_process, good)
    slack = 0.01  # the registry's timestamps are rounded to the millisecond
    for step in run["steps"]:
        assert step["started"] - slack <= told[step["phase"]] <= step["ended"] + slack
    assert told["Uploading"] <= told["Completed"] <= run["ended"] + slack  # recorded, then ended
    part = next(i for i in run["inputs"] if i["name"] == "part")
    model = (tmp_path / "part.txt").read_bytes()
    assert part["sha256"] == hashlib.sha256(model).hexdigest()
    assert part["size"] == len(model)
    assert {o["resource_id"] for o in run["outputs"]} <= artifact_ids(registry_process, good)
    assert {o["name"] for o in run["outputs"]} == {"copy", "record"}

    failed = json.loads(agent(env, "runs", "show", bad, "--json").stdout)
    assert (failed["status"], failed["reason"], failed["exit_code"]) == ("Failed", "tool_failed", 3)
    assert failed["message"].startswith("the tool exited with code 3")
    human = agent(env, "runs", "show", bad).stdout
    assert "step Running" in human and "tool_failed, exit code 3" in human
    assert "Completed" in agent(env, "runs", "list").stdout
    only_failed = json.loads(agent(env, "runs", "list", "--status", "Failed", "--json").stdout)
    assert [r["job_id"] for r in only_failed] == [bad]
    by_name = json.loads(agent(env, "runs", "list", "--keyword", "echo", "--json").stdout)
    assert [r["job_id"] for r in by_name] == [good]
    paged = [agent(env, "runs", "list", "--limit", "1", "--page", p, "--json") for p in "123"]
    assert [len(json.loads(p.stdout)) for p in paged] == [1, 1, 0]
    refused = agent(env, "runs", "list", "--since", "last week")
    assert refused.returncode == 2 and "since must be an ISO 8601 time" in refused.stderr

    log = agent(env, "runs", "log", good)
    assert "echo: copied part.txt" in log.stdout  # kept, though the work dir is gone
    rows = list(csv.DictReader(io.StringIO(agent(env, "runs", "steps", good).stdout)))
    assert [r["phase"] for r in rows] == ["Validating", "Running", "Uploading"]
    assert all(float(r["seconds"]) >= 0 and r["started"] <= r["ended"] for r in rows)
    deleted = agent(env, "runs", "delete", bad)
    assert deleted.returncode == 0 and f"deleted run {failed['id']}" in deleted.stdout
    assert bad not in agent(env, "runs", "list").stdout
    assert not (tmp_path / "state" / "run-logs" / f"{failed['id']}.log").exists()

    unknown = agent(env, "runs", "show", "no-such-run")
    assert unknown.returncode == 1
    assert "no run no-such-run; `istari-agent runs list` shows them" in unknown.stderr
