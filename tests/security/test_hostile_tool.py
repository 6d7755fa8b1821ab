"""A hostile tool, run by the real agent: what it tries, and what it gets.

Each test submits a job to a tool of `tests/tools/hostile.py` and checks the agent neither
uploads, keeps running nor crashes on what the tool left.
"""

from __future__ import annotations

import contextlib
import io
import stat
import zipfile

import psutil

from agent.jobs.outcome import Reason
from agent.protocol.states import JobStatus
from agent.runs.store import RECORDS, RunRecords
from tests.support.agent_harness import AgentHarness


async def test_links_in_a_directory_output_are_stored_as_links_never_followed(
    harness: AgentHarness,
) -> None:
    secret = harness.root / "agent_key.pem"
    secret.write_text("-----BEGIN PRIVATE KEY----- the agent's own")
    job = await harness.submit("link_farm", {"target": str(secret)})

    outcomes = await harness.run()

    assert [o.reason for o in outcomes] == [Reason.COMPLETED], outcomes
    archive = zipfile.ZipFile(
        io.BytesIO(await harness.read((await harness.artifacts(job))["out.zip"]))
    )
    # The FIFO is left out (reading it would block); each link is a link: its target's path,
    # never the content it points at.
    assert sorted(archive.namelist()) == ["config.json", "etc", "inner.txt", "key.pem", "real.txt"]
    links = {
        i.filename: archive.read(i).decode()
        for i in archive.infolist()
        if stat.S_ISLNK(i.external_attr >> 16)
    }
    assert links == {
        "config.json": "../../module_config.json",
        "etc": "/etc",
        "inner.txt": "real.txt",
        "key.pem": str(secret),
    }
    assert archive.read("real.txt") == b"mine"
    everything = b"".join(archive.read(n) for n in archive.namelist())
    assert b"PRIVATE KEY" not in everything
    assert b"root:" not in everything  # nothing of /etc


async def test_a_fifo_as_a_file_output_fails_the_job_instead_of_hanging_it(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("fifo_output")
    outcomes = await harness.run()
    assert [o.reason for o in outcomes] == [Reason.TOOL_FAILED]
    message = (await harness.job(job.id)).status_history[-1].message or ""
    assert "output out is not a regular file" in message


async def test_a_daemon_that_left_the_tools_session_is_killed_when_the_job_ends(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("daemon")
    outcomes = await harness.run()

    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    pid = int((harness.workdir(job) / "tmp" / "daemon.pid").read_text())
    # The supervisor reaped it before recording the exit status the agent waited for.
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    try:
        daemon = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    daemon.kill()  # the test must not leave it behind either, whatever happened
    msg = f"the daemon {pid} outlived its job"
    raise AssertionError(msg)


async def test_a_daemon_whose_tool_killed_its_supervisor_is_still_found_and_killed(
    harness: AgentHarness,
) -> None:
    """The supervisor is the tool's user's process: the tool can kill it before it sweeps.
    The agent then finds what is left by the job's marker in their environment."""
    job = await harness.submit("kill_supervisor")
    outcomes = await harness.run()

    assert [o.reason for o in outcomes] == [Reason.TOOL_FAILED]
    pid = int((harness.workdir(job) / "tmp" / "daemon.pid").read_text())
    try:
        daemon = psutil.Process(pid)
        assert daemon.status() == psutil.STATUS_ZOMBIE, "the daemon outlived its job"
    except psutil.NoSuchProcess:
        pass
    finally:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()  # never leave it behind, whatever happened


async def test_json_nested_deeper_than_a_parser_recurses_is_the_tools_bad_output(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("deep_output")
    outcomes = await harness.run()

    assert [o.reason for o in outcomes] == [Reason.TOOL_FAILED]
    message = (await harness.job(job.id)).status_history[-1].message or ""
    assert "the output file is not valid JSON" in message
    assert "internal error" not in message
    records = RunRecords(harness.root / "state" / RECORDS)
    try:
        run = records.get(job.id)
    finally:
        records.close()
    assert run is not None
    entries = [(e.level, e.message) for e in run.entries]
    # The deep updates line is ignored with a warning; the good one after it is kept.
    assert ("INFO", "still here") in entries
    assert any(level == "WARN" and "line 1" in m for level, m in entries), entries


async def test_the_uploaded_log_keeps_its_head_and_tail_within_the_cap(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("spam", {"megabytes": 3})
    outcomes = await harness.run(max_log_upload_mb=1)

    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    log = harness.workdir(job) / "job.log"
    assert log.stat().st_size > 3 * 2**20
    uploaded = await harness.read((await harness.artifacts(job))[f"job-{job.id}.log"])
    assert len(uploaded) <= 2**20
    head, tail = log.read_bytes()[:1000], log.read_bytes()[-1000:]
    assert uploaded.startswith(head)
    assert uploaded.endswith(tail)
    assert b"bytes of the log were cut here" in uploaded
    assert uploaded.endswith(b"spam: done\n")


async def test_a_tool_filling_its_work_directory_is_stopped_at_the_limit(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("fill", {"megabytes": 20, "seconds": 120})
    outcomes = await harness.run(max_work_dir_mb=5, process_timeout=60)

    assert [o.reason for o in outcomes] == [Reason.TOOL_FAILED], outcomes
    message = (await harness.job(job.id)).status_history[-1].message or ""
    assert "work directory grew past max_work_dir_mb (5 MB)" in message
    assert "time limit" not in message  # stopped at the size limit, not by the time limit


async def test_a_log_replaced_by_a_link_is_never_read_through(harness: AgentHarness) -> None:
    """Under Slurm the tool cannot read the login node's files, but the agent there can."""
    secret = harness.root / "agent_key.pem"
    secret.write_text("-----BEGIN PRIVATE KEY----- the agent's own")
    job = await harness.submit("log_link", {"target": str(secret)})

    outcomes = await harness.run()

    assert [o.reason for o in outcomes] == [Reason.TOOL_FAILED]
    message = (await harness.job(job.id)).status_history[-1].message or ""
    assert "exited with code 3" in message
    assert "PRIVATE KEY" not in message
    for artifact in (await harness.artifacts(job)).values():
        assert b"PRIVATE KEY" not in await harness.read(artifact)
    kept = list((harness.root / "state").rglob("*.log"))
    assert all(b"PRIVATE KEY" not in p.read_bytes() for p in kept)


async def test_an_output_document_that_is_a_fifo_fails_the_job_and_the_agent_goes_on(
    harness: AgentHarness,
) -> None:
    job = await harness.submit("fifo_document")
    good = await harness.submit("echo", {"label": "next"})

    outcomes = await harness.run()

    assert [o.reason for o in outcomes] == [Reason.TOOL_FAILED, Reason.COMPLETED]
    message = (await harness.job(job.id)).status_history[-1].message or ""
    assert "the output file cannot be read" in message
    assert (await harness.job(good.id)).status is JobStatus.COMPLETED


async def test_links_planted_where_uploads_are_staged_are_replaced_not_written_through(
    harness: AgentHarness,
) -> None:
    victim = harness.root / "victim.txt"
    victim.write_text("untouched")
    job = await harness.submit("plant", {"target": str(victim)})

    outcomes = await harness.run()

    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    assert victim.read_text() == "untouched"
    artifacts = await harness.artifacts(job)
    assert b"planted" in await harness.read(artifacts[f"job-{job.id}.log"])
    archive = zipfile.ZipFile(io.BytesIO(await harness.read(artifacts["out.zip"])))
    assert archive.read("a.txt") == b"alpha"
