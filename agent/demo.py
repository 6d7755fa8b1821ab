"""`istari-agent demo`: the local registry, end to end, explained as it goes.

It starts a registry on a free port in a temporary directory, publishes a module, uploads a
model (a small STL cube), submits a job, and walks the job through the agent protocol: claim,
validate (download and verify the inputs), run, upload an artifact, complete. It exits 0
when everything round-tripped.
"""

from __future__ import annotations

import json
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from agent import __version__
from agent.jobs.states import AgentStatus, JobStatus
from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import running
from agent.registry.client import RegistryClient
from agent.registry.models import ModuleVersionRef, NewAgent
from agent.registry.transfer import download_revision, upload_revision
from agent.submit import Submission, submit

MODULE = "@example:demo_tools"
FUNCTION = "@example:stl_triangle_count"

MANIFEST: dict[str, Any] = {
    "module_key": MODULE,
    "module_version": "1.0.0",
    "module_type": "function",
    "module_checksum": "",
    "internal": False,
    "tool_key": "python",
    "tool_display_name": "Python",
    "tool_versions": ["3"],
    "operating_systems": ["Ubuntu 22.04", "Ubuntu 24.04", "RHEL 9"],
    "agent_version": ">=0.1.0",
    "authors": [{"name": "istari-agent", "email": "demo@example.com"}],
    "functions": {
        FUNCTION: [
            {
                "entrypoint": "count.py",
                "run_command": "python3 {entrypoint} {input_file} {output_file} {temp_dir}",
                "function_schema": {
                    "inputs": {
                        "part": {"type": "user_model", "validation_types": ["@extension:stl"]},
                        "units": {"type": "parameter", "validation_types": ["@string"]},
                    },
                    "outputs": [{"name": "summary", "type": "file", "required": True}],
                },
            }
        ]
    },
}


def cube_stl(path: Path) -> None:
    """Write a binary STL of a unit cube (12 triangles)."""
    v = [(x, y, z) for x in (0.0, 1.0) for y in (0.0, 1.0) for z in (0.0, 1.0)]
    faces = [
        (0, 2, 3), (0, 3, 1), (4, 5, 7), (4, 7, 6), (0, 1, 5), (0, 5, 4),
        (2, 6, 7), (2, 7, 3), (0, 4, 6), (0, 6, 2), (1, 3, 7), (1, 7, 5),
    ]  # fmt: skip
    with path.open("wb") as f:
        f.write(b"demo cube".ljust(80, b" "))
        f.write(struct.pack("<I", len(faces)))
        for a, b, c in faces:
            f.write(struct.pack("<3f", 0.0, 0.0, 0.0))
            for i in (a, b, c):
                f.write(struct.pack("<3f", *v[i]))
            f.write(b"\0\0")


def step(text: str) -> None:
    """Print one step of the walk-through."""
    click.echo(click.style("==> ", fg="cyan", bold=True) + text)


async def run_demo() -> int:
    """Run the walk-through; returns the process exit code."""
    with tempfile.TemporaryDirectory(prefix="istari-demo-") as tmp:
        root = Path(tmp)
        async with running(RegistrySettings(data_dir=root / "registry")) as reg:
            step(f"local registry listening on {reg.url} (data in {root / 'registry'})")
            async with RegistryClient(reg.url, reg.token) as client:
                return await _walk(client, root)


async def _walk(client: RegistryClient, root: Path) -> int:
    await client.publish_module(MANIFEST)
    step(f"published module {MODULE} 1.0.0, which provides {FUNCTION}")

    agent = await client.register_agent(NewAgent(agent_version=__version__, host_os="Ubuntu 22.04"))
    await client.set_agent_modules(
        agent.id, [ModuleVersionRef(module_name=MODULE, module_version="1.0.0")]
    )
    await client.set_agent_status(agent.id, AgentStatus.IDLE)
    step(f"registered a demo agent {agent.id[:8]} and reported its modules")

    model_file = root / "cube.stl"
    cube_stl(model_file)
    job = await submit(client, Submission(model_file, FUNCTION, {"units": "mm"}))
    step(f"uploaded {model_file.name} as model {job.model_id} and submitted job {job.id[:8]}")

    offered = await client.available_jobs(agent.id)
    step(f"the agent polls available_jobs: {len(offered.items)} job(s) offered")
    started = time.perf_counter()
    await client.update_job_status(job.id, JobStatus.CLAIMED, agent.id)
    step("claimed it (a second claim by anyone would get 409)")

    await client.update_job_status(job.id, JobStatus.VALIDATING, agent.id)
    work = root / "work"
    work.mkdir()
    await download_revision(client, job.file.current, work / "parameters.json")
    assert job.model_id is not None
    model = await client.get_model(job.model_id)
    await download_revision(client, model.file.current, work / "cube.stl")
    params = json.loads((work / "parameters.json").read_text())
    step(f"validating: downloaded parameters {params} and the model, both sha-verified")

    await client.update_job_status(job.id, JobStatus.RUNNING, agent.id)
    data = (work / "cube.stl").read_bytes()
    (triangles,) = struct.unpack_from("<I", data, 80)
    summary = work / "summary.json"
    summary.write_text(json.dumps({"triangles": triangles, "units": params["units"]}))
    step(f"running: the tool counted {triangles} triangles")

    await client.update_job_status(job.id, JobStatus.UPLOADING, agent.id)
    artifact = await client.create_artifact(
        job.model_id, await upload_revision(client, summary), source_job_id=job.id
    )
    done = await client.update_job_status(job.id, JobStatus.COMPLETED, agent.id, "12 triangles")
    await client.set_agent_status(agent.id, AgentStatus.IDLE)
    ms = (time.perf_counter() - started) * 1000
    step(f"uploaded summary.json as artifact {artifact.id[:8]} and completed in {ms:.0f} ms")
    click.echo("\nstatus history: " + " -> ".join(s.name for s in done.status_history))
    ok = done.status is JobStatus.COMPLETED
    click.echo(
        "demo finished: the registry accepted every step."
        if ok
        else "demo failed: the job did not complete."
    )
    return 0 if ok else 1
