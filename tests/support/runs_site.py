"""Run records of real-looking runs, served by the agent's own HTTP listener on loopback.

`populate` writes three runs through `RunRecords` as the runner would (a finished one with
steps, log entries, resource samples, inputs, outputs and a kept log; a failed one; one still
running), on a clock the test sets so that phases last seconds rather than microseconds.
`serving` runs a real `HealthServer` over those records on a free port, with a token made
as the agent makes its own (`Site.token`; requests send it as `Authorization: Bearer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import types
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agent.health import HealthServer
from agent.httpaccess import Access, read_token
from agent.metrics import Metrics
from agent.registry.client import RegistryClient
from agent.runs import store as records_module
from agent.runs.model import Entry, Sample
from agent.runs.store import RunRecords
from agent.secretfiles import write_secret
from tests.support.logwatch import watch_logs

HOSTILE = "<script>alert('x')</script>"  # a tool may say anything


@dataclass
class Clock:
    now: float

    def time(self) -> float:
        return self.now


@dataclass(frozen=True)
class Runs:
    t0: float  # when the first began (150 s before the test; the last is still running)
    done: str  # completed, with everything recorded
    failed: str
    running: str
    done_job: str


@dataclass(frozen=True)
class Site:
    url: str
    app: web.Application
    records: RunRecords
    runs: Runs
    token: str  # the listener's

    @property
    def auth(self) -> dict[str, str]:
        """The header that authenticates a request."""
        return {"Authorization": f"Bearer {self.token}"}


def populate(records: RunRecords, monkeypatch: pytest.MonkeyPatch, tmp: Path) -> Runs:
    """Three runs as the runner writes them, on a set clock."""
    t0 = float(int(time.time()) - 150)
    clock = Clock(t0)
    with monkeypatch.context() as m:
        m.setattr(records_module, "time", types.SimpleNamespace(time=clock.time))
        done = _completed(records, clock, tmp)
        clock.now = t0 + 60
        failed = records.begin("job-failed-2", "agent-a", "@istari:mesh", "@istari", "1.4.0")
        for phase, took in (("Validating", 0.3), ("Running", 2.1)):
            records.step(failed, phase)
            clock.now += took
        records.end(failed, "Failed", "tool_failed", "the tool exited with code 3", 3)
        clock.now = t0 + 120
        running = records.begin("job-running-3", "agent-a", "@istari:render", "@istari", "1.4.0")
        records.step(running, "Validating")
        clock.now += 0.5
        records.step(running, "Running")
    records.entry(running, Entry(t0 + 121, "INFO", "rendering frame 4 of 10", {}, 40.0))
    return Runs(t0, done, failed, running, "job-done-1")


def _completed(records: RunRecords, clock: Clock, tmp: Path) -> str:
    run = records.begin("job-done-1", "agent-a", "@istari:extract", "@istari", "1.4.0")
    records.inputs(run, [
        {"name": "part", "type": "user_model", "file": "bracket.stp", "size": 48213,
         "sha256": "ab" * 32},
        {"name": "tolerance", "type": "parameter", "size": 4},
        {"name": "api", "type": "auth_info"},
    ])  # fmt: skip
    for phase, took in (("Validating", 0.4), ("Running", 7.5), ("Uploading", 1.2)):
        records.step(run, phase)
        if phase == "Running":
            _tool_reports(records, run, clock.now)
        clock.now += took
    records.outputs(run, [
        {"name": "mesh", "kind": "artifact", "resource_id": "art-7d1e", "file_name": "mesh.vtk"},
        {"name": "job log", "kind": "artifact", "resource_id": "art-90c2",
         "file_name": "job.log"},
    ])  # fmt: skip
    records.resources(run, 7.4, 6.9, 181_240)
    records.end(run, "Completed", "completed", "outputs: mesh, job log", 0)
    log = tmp / "tool.log"
    log.write_text(f"extract: reading bracket.stp\nextract: {HOSTILE}\nextract: wrote mesh.vtk\n")
    records.keep_log(run, log)
    return run


def _tool_reports(records: RunRecords, run: str, start: float) -> None:
    """What a tool reports while it runs: entries with progress, and samples of its tree."""
    said: list[tuple[str, str, dict[str, Any], float | None]] = [
        ("INFO", "reading bracket.stp", {"part": "bracket"}, 5.0),
        ("DEBUG", "tessellating 1204 faces", {"faces": 1204}, None),
        ("WARN", f"thin wall near {HOSTILE}", {"face": 17, "mm": 0.4, "<b>": "<i>"}, 60.0),
        ("INFO", "meshing done", {}, 100.0),
    ]
    for n, (level, message, tags, progress) in enumerate(said):
        records.entry(run, Entry(start + 1.5 * n + 0.2, level, message, tags, progress))
    for n in range(15):
        records.sample(run, Sample(start + 0.5 * n, 20.0 + 70.0 * (n % 5) / 4, 60_000 + 8_000 * n))


@contextlib.asynccontextmanager
async def serving(records: RunRecords, client: RegistryClient, runs: Runs) -> AsyncIterator[Site]:
    """The agent's HTTP listener over `records`, on a free loopback port."""
    token_path = records.logs.parent / "http_token"
    write_secret(token_path, secrets.token_urlsafe(32).encode())
    access = Access(read_token(token_path), token_path)
    server = HealthServer("127.0.0.1:0", Metrics(), client, records, access=access)
    with watch_logs() as logs:
        task = asyncio.create_task(server.run(), name="http")
        url = (await logs.wait_for("http.listening"))["url"]
    try:
        yield Site(url, server.app, records, runs, access.token)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
