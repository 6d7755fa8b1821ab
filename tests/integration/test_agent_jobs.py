"""The agent against the real local registry, running real tools: the happy path and each bad input.

Every bad job is followed by a good one in the same agent run: the agent must fail the bad job
with a message that says what is wrong, and go on to complete the next.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from agent.daemon import Mode
from agent.jobs.outcome import Reason
from agent.protocol.states import AgentStatus, JobStatus
from agent.registry.models import Job
from agent.registry.transfer import upload_revision
from agent.runs.store import RECORDS, RunRecords
from tests.support.agent_harness import AgentHarness, serving, wait_for_status
from tests.support.logwatch import until
from tests.tools import module

GOOD = {"label": "fine"}


async def run_bad_then_good(harness: AgentHarness, bad: Job, **overrides: Any) -> Job:
    """Run the agent over `bad` and a good job after it; returns `bad` as the registry has it."""
    good = await harness.submit("echo", GOOD)
    outcomes = await harness.run(**overrides)
    assert [o.reason for o in outcomes][-1] is Reason.COMPLETED
    assert (await harness.job(good.id)).status is JobStatus.COMPLETED
    return await harness.job(bad.id)


def last_message(job: Job) -> str:
    return job.status_history[-1].message or ""


async def test_happy_path_uploads_outputs_and_log(harness: AgentHarness) -> None:
    hostile = "$(touch PWNED) `touch PWNED2`; rm -rf ~ && echo 'quoted \" value'"
    job = await harness.submit("echo", {"label": hostile, "count": 2}, content=b"the model")

    outcomes = await harness.run()

    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    done = await harness.job(job.id)
    assert [e.name for e in done.status_history][2:] == [
        JobStatus.CLAIMED, JobStatus.VALIDATING, JobStatus.RUNNING,
        JobStatus.UPLOADING, JobStatus.COMPLETED,
    ]  # fmt: skip
    artifacts = await harness.artifacts(job)
    assert await harness.read(artifacts["copy-part.txt"]) == b"the model"
    record = json.loads(await harness.read(artifacts["record.json"]))
    assert record["inputs"]["label"] == {"type": "parameter", "value": hostile}
    assert record["inputs"]["count"] == {"type": "parameter", "value": 2}
    assert record["inputs"]["part"]["type"] == "user_model"
    assert record["inputs"]["part"]["value"].endswith("/in/part.txt")
    log_name = f"job-{job.id}.log"
    assert b"echo: copied part.txt" in await harness.read(artifacts[log_name])


async def test_parameters_never_reach_a_shell_and_secrets_stay_home(
    harness: AgentHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISTARI_DIGITAL_AGENT_REGISTRY_API_TOKEN", "agent-secret")
    job = await harness.submit("echo", {"label": "x; touch PWNED"})
    await harness.run()
    record = harness.record(job)
    temp = harness.workdir(job) / "tmp"
    assert not list(temp.glob("PWNED*"))
    assert record["argv"][1:] == [
        "@test:echo",
        str(harness.workdir(job) / "input.json"),
        str(harness.workdir(job) / "output.json"),
        str(temp),
    ]
    assert record["cwd"] == str(temp)
    # No agent setting (token, MQTT password) reaches the tool; only where it may report.
    assert [k for k in record["env"] if k.startswith("ISTARI_")] == ["ISTARI_AGENT_UPDATES_FILE"]


async def test_directory_output_is_zipped(harness: AgentHarness) -> None:
    job = await harness.submit("dir_output")
    await harness.run()
    assert (await harness.job(job.id)).status is JobStatus.COMPLETED
    archive = zipfile.ZipFile(
        io.BytesIO(await harness.read((await harness.artifacts(job))["out.zip"]))
    )
    assert sorted(archive.namelist()) == ["a.txt", "sub/", "sub/b.txt"]
    assert archive.read("sub/b.txt") == b"beta"


async def test_agent_reports_its_status_and_keeps_its_id(harness: AgentHarness) -> None:
    job = await harness.submit("report", {"code": 0})  # waits at a gate while Running
    gate = harness.workdir(job) / "tmp" / "go"
    async with serving(harness):
        await wait_for_status(harness, job.id, JobStatus.RUNNING)
        agent_id = json.loads((harness.root / "state" / "agent.json").read_text())["agent_id"]

        async def executing() -> bool:
            agent = await harness.client.get_agent(agent_id)
            return agent.status_history[-1].name is AgentStatus.EXECUTING_JOB

        await until(executing)  # a phase that lasts is always reported
        gate.touch()
        await wait_for_status(harness, job.id, JobStatus.COMPLETED)
    agent = await harness.client.get_agent(agent_id)
    names = [s.name for s in agent.status_history]
    assert names[-1] is AgentStatus.PAUSED  # not accepting jobs: it stopped
    assert AgentStatus.IDLE in names
    saved = json.loads((harness.root / "state" / "agent.json").read_text())

    await harness.run()  # a restart: same agent, no new registration
    again = json.loads((harness.root / "state" / "agent.json").read_text())
    assert again["agent_id"] == saved["agent_id"]
    page = await harness.client._call("GET", "/api/v2/agents")
    assert [a["id"] for a in page["items"]] == [saved["agent_id"]]


async def test_once_runs_one_job_and_until_idle_runs_all(harness: AgentHarness) -> None:
    jobs = [await harness.submit("echo", GOOD) for _ in range(3)]
    assert len(await harness.run(Mode.ONCE)) == 1
    assert len(await harness.run(Mode.UNTIL_IDLE)) == 2
    assert await harness.run(Mode.ONCE) == []
    for job in jobs:
        assert (await harness.job(job.id)).status is JobStatus.COMPLETED


BAD_TOOLS = [
    # behaviour, params, reason, what the message must say
    ("exit", {"code": 3}, Reason.TOOL_FAILED, "exited with code 3; last output:\nabout to fail"),
    ("crash", {}, Reason.TOOL_FAILED, "was killed by SIGSEGV; last output:\ncrashing now"),
    ("no_output", {}, Reason.TOOL_FAILED, "wrote no output file (output.json)"),
    ("bad_output", {}, Reason.TOOL_FAILED, "the output file is not valid JSON"),
    ("missing_output", {}, Reason.TOOL_FAILED, "output out does not exist"),
    ("outside_output", {"target": "/etc/hostname"}, Reason.TOOL_FAILED, "outside the job's work"),
    ("echo", {}, Reason.INVALID_JOB, "missing required parameter(s): label"),
    ("echo", {"label": "x", "colour": 1}, Reason.INVALID_JOB, "unknown parameter(s): colour"),
    ("echo", {"label": 5}, Reason.INVALID_JOB, "parameter label: expected string, got number"),
]


@pytest.mark.parametrize(("behaviour", "params", "reason", "says"), BAD_TOOLS)
async def test_bad_job_fails_clearly_and_the_next_runs(
    harness: AgentHarness, behaviour: str, params: dict[str, Any], reason: Reason, says: str
) -> None:
    bad = await harness.submit(behaviour, params)
    failed = await run_bad_then_good(harness, bad)
    assert failed.status is JobStatus.FAILED
    assert says in last_message(failed)
    if reason is Reason.INVALID_JOB:
        assert "this function accepts: label (@string), count (@number, optional)" in last_message(
            failed
        )


async def test_wrong_model_extension_is_refused(harness: AgentHarness) -> None:
    bad = await harness.submit("echo", GOOD, model_name="part.stl")
    failed = await run_bad_then_good(harness, bad)
    assert "input part: 'part.stl' is not a .txt file (the job's resource)" in last_message(failed)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{not json", "the parameters file is not JSON"),
        (b"[1, 2]", "the parameters file holds a JSON list; it must be an object"),
    ],
)
async def test_unusable_parameters_file(harness: AgentHarness, content: bytes, says: str) -> None:
    template = await harness.submit("echo", GOOD)  # publishes the module and uploads a model
    await harness.client.update_job_status(template.id, JobStatus.CANCELED, None)
    params_file = harness.root / "params.json"
    params_file.write_bytes(content)
    revision = await upload_revision(harness.client, params_file)
    assert template.model_id is not None
    bad = await harness.client.submit_job(template.model_id, module.fn("echo"), revision)
    failed = await run_bad_then_good(harness, bad)
    assert says in last_message(failed)


async def test_model_that_does_not_match_its_sha_is_refused(harness: AgentHarness) -> None:
    bad = await harness.submit("echo", GOOD, content=b"original bytes")
    assert bad.model_id is not None
    model = await harness.client.get_model(bad.model_id)
    blob = harness.registry.registry.blobs.path(model.file.current.content_token.sha)
    blob.write_bytes(b"tampered bytes")
    failed = await run_bad_then_good(harness, bad)
    assert "the model downloaded does not match its sha" in last_message(failed)


async def test_function_missing_from_the_installed_module(harness: AgentHarness) -> None:
    await harness.client.publish_module(module.manifest())  # the registry knows every function
    manifest_path = harness.modules_path / "behaviours" / "module_manifest.json"
    installed = json.loads(manifest_path.read_text())
    del installed["functions"][module.fn("crash")]
    manifest_path.write_text(json.dumps(installed))
    bad = await harness.submit("crash")
    failed = await run_bad_then_good(harness, bad)
    assert "no installed module provides @test:crash" in last_message(failed)
    assert "this agent serves: @test:bad_output" in last_message(failed)


async def test_spamming_tool_is_logged_to_disk_not_memory(harness: AgentHarness) -> None:
    job = await harness.submit("spam", {"megabytes": 8})
    await harness.run()
    assert (await harness.job(job.id)).status is JobStatus.COMPLETED
    log = harness.workdir(job) / "job.log"
    assert log.stat().st_size >= 8 * 1024 * 1024
    uploaded = (await harness.artifacts(job))[f"job-{job.id}.log"]
    assert uploaded.file.current.size == log.stat().st_size


async def test_the_run_record_keeps_what_the_tool_used(harness: AgentHarness) -> None:
    """CPU time and peak RSS come from the supervisor's wait4, so they include the child the
    tool started and waited for (here the one that holds 60 MB and spins for 0.4 s)."""
    job = await harness.submit("burn", {"megabytes": 60, "seconds": 0.4})
    outcomes = await harness.run()
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    records = RunRecords(harness.root / "state" / RECORDS)
    run = records.get(job.id)
    records.close()
    assert run is not None and run.cpu_s is not None and run.peak_rss_kb is not None
    assert run.cpu_s >= 0.4
    assert run.peak_rss_kb >= 60 * 1024
    assert run.wall_s is not None and run.wall_s >= 0.4
