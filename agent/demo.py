"""`istari-agent demo`: the agent and the local registry, end to end, on this machine.

It starts a registry on a free port in a temporary directory, installs the example modules,
submits three jobs (an STL summary, CSV statistics, and an STL job that fails on purpose),
runs the real agent until it is idle while printing each job's progress, then downloads the
artifacts and says where they are. It exits 0 when every job ended as expected.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

from agent.config import Settings
from agent.daemon import Mode
from agent.execution.local import tool_environment
from agent.hostos import HostOSError, detect
from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import running
from agent.modules.catalog import scan
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.models import Job
from agent.registry.transfer import download_revision
from agent.service import serve
from agent.submit import Submission, follow, submit

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class DemoJob:
    """A job the demo submits, and how it should end."""

    label: str
    model: Path
    function: str
    parameters: dict[str, object]
    expect: JobStatus


def step(text: str) -> None:
    click.echo(click.style("==> ", fg="cyan", bold=True) + text)


def demo_jobs(root: Path) -> list[DemoJob]:
    broken = root / "not-really.stl"
    broken.write_text("solid oops\n  this is not an STL file\n")
    data = EXAMPLES / "data"
    return [
        DemoJob("STL summary", data / "bracket.stl", "@example:stl_summary", {"units": "mm"},
                JobStatus.COMPLETED),
        DemoJob("CSV statistics", data / "sensors.csv", "@example:csv_stats", {},
                JobStatus.COMPLETED),
        DemoJob("broken STL (fails on purpose)", broken, "@example:stl_summary", {},
                JobStatus.FAILED),
    ]  # fmt: skip


async def run_demo(results: Path | None = None) -> int:
    """Run the demo; returns the exit code."""
    if not (EXAMPLES / "modules").is_dir():
        click.echo(f"the demo needs the examples directory ({EXAMPLES}); run it from a checkout")
        return 1
    results = results or Path(tempfile.mkdtemp(prefix="istari-demo-results-"))
    with tempfile.TemporaryDirectory(prefix="istari-demo-") as tmp:
        root = Path(tmp)
        step(f"starting a local registry (data in {root / 'registry'})")
        async with running(RegistrySettings(data_dir=root / "registry")) as reg:
            click.echo(f"    listening on {reg.url}")
            async with RegistryClient(reg.url, reg.token) as client:
                return await _walk(client, reg.url, reg.token, root, results)


async def _walk(client: RegistryClient, url: str, token: str, root: Path, results: Path) -> int:
    settings = _agent_settings(url, token, root)
    step(f"installing the example modules into {settings.modules_path}")
    shutil.copytree(EXAMPLES / "modules", settings.modules_path)
    catalog = scan(settings.modules_path, settings.agent_version)
    for m in catalog.modules:
        click.echo(f"    {m.key} {m.version}: {', '.join(m.manifest.functions)}")
        await client.publish_module(m.raw)  # the agent publishes too; jobs need it first

    step("submitting three jobs")
    jobs: list[tuple[DemoJob, Job]] = []
    for d in demo_jobs(root):
        job = await submit(client, Submission(d.model, d.function, d.parameters))
        jobs.append((d, job))
        click.echo(f"    {job.id[:8]}  {d.label}: {d.function} on {d.model.name}")

    step(f"running the agent until it is idle (host OS reported: {settings.host_os})")
    async with asyncio.TaskGroup() as tg:
        watchers = [tg.create_task(_watch(client, d, job)) for d, job in jobs]
        outcomes = await serve(settings, tool_environment(os.environ), Mode.UNTIL_IDLE)
    finals = [w.result() for w in watchers]
    click.echo(f"    the agent ran {len(outcomes)} job(s)")

    step(f"downloading the artifacts into {results}")
    await _download_all(client, [job for _, job in jobs], results)
    return _verdict([(d, f) for (d, _), f in zip(jobs, finals, strict=True)])


def _agent_settings(url: str, token: str, root: Path) -> Settings:
    try:
        host_os = detect().name
    except HostOSError:
        host_os = "Ubuntu 22.04"  # the examples run anywhere Python does
    return Settings(
        registry_api_url=url,
        registry_api_token=token,
        modules_path=root / "modules",
        output_path=root / "work",
        state_path=root / "state",
        host_os=host_os,
        poll_interval=0.5,
        process_timeout=60,
        display_name="demo agent",
        publish_modules=True,  # a local registry: the agent publishes what it has installed
    )


async def _watch(client: RegistryClient, d: DemoJob, job: Job) -> Job:
    def show(status: JobStatus, message: str | None) -> None:
        if status in (JobStatus.CREATED, JobStatus.PENDING):
            return
        colour = {JobStatus.COMPLETED: "green", JobStatus.FAILED: "red"}.get(status)
        line = f"    {job.id[:8]}  {click.style(status.value, fg=colour)}"
        if message and status is JobStatus.FAILED:
            line += ": " + "\n              ".join(message.splitlines()[:4])
        click.echo(line)

    async with asyncio.timeout(120):
        return await follow(client, job.id, show, interval=0.1)


async def _download_all(client: RegistryClient, jobs: list[Job], results: Path) -> None:
    for job in jobs:
        if job.model_id is None:
            continue
        target = results / job.id[:8]
        target.mkdir(parents=True, exist_ok=True)
        for artifact in (await client.list_artifacts(job.model_id)).items:
            revision = artifact.file.current
            dest = target / (revision.name or artifact.id)
            await download_revision(client, revision, dest)
            click.echo(f"    {dest}  (artifact {artifact.id})")
            if dest.name == "summary.json":
                summary = json.loads(dest.read_text())
                shown = {k: summary[k] for k in ("triangles", "volume") if k in summary}
                click.echo(f"        {shown}")


def _verdict(finals: list[tuple[DemoJob, Job]]) -> int:
    wrong = [(d, j) for d, j in finals if j.status is not d.expect]
    if wrong:
        for d, j in wrong:
            click.echo(f"unexpected: {d.label} ended {j.status.value}, expected {d.expect.value}")
        return 1
    step("done: two jobs completed and the broken one failed with a clear message")
    return 0
