"""Chaos: 200 jobs through one agent that is `kill -9`ed and restarted at random moments, while
the registry is stopped and restarted and the broker is killed.

Everything is real and separate: the registry (`registry serve`, its data on disk), mosquitto,
and the agent (`istari-agent run`, push and polling, 4 slots) are processes this test kills.
The tool (`tests/tools/chaos.py`) appends its job's id to a ledger before it works for the
0-2 s its model says. At the end every job must be Completed exactly once, with exactly its
two artifacts (the receipt and the job log), every tool must have run exactly once, and no
process may be left behind. The counts are printed (run with `-s` to see them).
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError
from agent.registry.models import Job, Page, Resource
from agent.submit import Submission, submit
from tests.support.agentcli import agent_env
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.registry import RegistryProcess
from tests.tools.shmodule import ShellModule

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

JOBS = 200
SLOTS = 4
CHAOS_SECONDS = 60  # chaos stops after this long (or once 90 % of the jobs are done)
DEADLINE = 420  # seconds for everything to be Completed
_LISTENING = re.compile(r"listening on (http://\S+)")
TOOL = Path(__file__).parents[1] / "tools" / "chaos.py"


@dataclass
class Counts:
    agent_kills: int = 0
    registry_restarts: int = 0
    broker_kills: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class Registry:
    """`registry serve` on one port, stopped (SIGTERM or SIGKILL) and started again."""

    def __init__(self, root: Path, broker: Mosquitto) -> None:
        self.root = root
        self.port = free_port("127.0.0.1")
        self.token = secrets.token_urlsafe(24)
        self.url = f"http://127.0.0.1:{self.port}"
        self.broker = broker
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "ISTARI_LOCAL_REGISTRY_TOKEN": self.token,
            "ISTARI_LOCAL_REGISTRY_MQTT_USERNAME": self.broker.username,
            "ISTARI_LOCAL_REGISTRY_MQTT_PASSWORD": self.broker.password,
        }
        argv = [sys.executable, "-m", "agent", "registry", "serve", "--port", str(self.port)]
        argv += ["--data-dir", str(self.root / "registry"), "--mqtt-url", self.broker.url]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
        )
        assert self.process.stdout is not None
        with self.process.stdout:
            line = self.process.stdout.readline()  # its one line, once it listens
        assert _LISTENING.search(line), line

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
        self.process = None

    def as_fixture(self) -> RegistryProcess:
        assert self.process is not None
        return RegistryProcess(self.url, self.token, self.root / "registry", self.process)


class Agent:
    """`istari-agent run`, its log appended to one file across restarts."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.down = False  # killed on purpose: restarted by the chaos, not by ensure_running
        self.started_at = 0  # where this start's lines begin in the log

    def start(self) -> None:
        # Never two at once: the state path is locked, and a second agent would just exit.
        assert self.process is None or self.process.poll() is not None
        self.started_at = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agent", "run"], env=self.env, stderr=out
            )

    def kill(self) -> None:
        assert self.process is not None
        self.down = True
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        self.down = False
        self.start()

    def ensure_running(self) -> None:
        """Start it again if it exited (a start that outlasted its retry budget)."""
        if not self.down and (self.process is None or self.process.poll() is not None):
            self.start()

    def ready(self) -> bool:
        """Whether this start has logged agent.ready: its signal handlers are in place (before
        that, a SIGTERM may find Python still importing, and kill it)."""
        with self.log.open("rb") as log:
            log.seek(self.started_at)
            return b'"event": "agent.ready"' in log.read()


async def finished(reg: Registry) -> int | None:
    """How many jobs are Completed or Failed; None while the registry is down."""
    total = 0
    try:
        async with RegistryClient(reg.url, reg.token) as client:
            for status in (JobStatus.COMPLETED, JobStatus.FAILED):
                page = 1
                while True:
                    items = (await client.list_jobs(status_name=status, page=page, size=100)).items
                    total += len(items)
                    if len(items) < 100:
                        break
                    page += 1
    except RegistryError:
        return None
    return total


async def chaos(reg: Registry, broker: Mosquitto, agent: Agent, counts: Counts) -> None:
    """Random faults, each kind at least once, until cancelled."""
    kinds = ["agent", "registry", "broker"]
    random.shuffle(kinds)
    while True:
        await asyncio.sleep(random.uniform(1.0, 3.0))  # a random moment (not a wait on state)
        kind = kinds.pop() if kinds else random.choice(["agent", "agent", "registry", "broker"])
        if kind == "agent":
            agent.kill()
            counts.agent_kills += 1
            await asyncio.sleep(random.uniform(0, 0.5))
            agent.restart()
        elif kind == "registry":
            reg.stop(random.choice([signal.SIGTERM, signal.SIGKILL]))
            counts.registry_restarts += 1
            await asyncio.sleep(random.uniform(0.5, 3.0))
            reg.start()
        else:
            await broker.kill()
            counts.broker_kills += 1
            await asyncio.sleep(random.uniform(0.5, 2.0))
            await broker.start()
        agent.ensure_running()


def leftovers(root: Path) -> list[psutil.Process]:
    """Processes whose command line names a path under `root` (tools and supervisors name
    their work directories)."""
    found = []
    for p in psutil.process_iter():
        try:
            if any(str(root) in arg for arg in p.cmdline()) and p.status() != "zombie":
                found.append(p)
        except psutil.Error:
            continue
    return found


async def calm(faults: asyncio.Task[None], reg: Registry, broker: Mosquitto, agent: Agent) -> None:
    """End the chaos, and start again whatever it had stopped and not yet started."""
    faults.cancel()
    await asyncio.gather(faults, return_exceptions=True)
    if reg.process is None:
        reg.start()
    if not broker.running:
        await broker.start()
    agent.down = False  # the chaos may have stopped between a kill and its restart
    agent.ensure_running()


async def drive(
    agent: Agent, reg: Registry, broker: Mosquitto, ids: list[str], models: dict[str, str | None]
) -> tuple[Counts, float, list[Job], list[Page[Resource]]]:
    """Run the agent through the chaos until every job has ended; what the registry says."""
    counts = Counts()
    started = time.monotonic()
    agent.start()
    faults = asyncio.create_task(chaos(reg, broker, agent, counts))
    try:
        while time.monotonic() - started < DEADLINE:
            agent.ensure_running()  # as systemd's Restart= would
            count = await finished(reg) if reg.process is not None else None
            if count is not None:
                if not faults.done() and (
                    count >= JOBS * 0.9 or time.monotonic() - started > CHAOS_SECONDS
                ):
                    # The chaos may be between stopping a part and starting it again (even
                    # the registry just counted): what it left down comes back up now.
                    await calm(faults, reg, broker, agent)
                if count == JOBS:
                    break
            await asyncio.sleep(1.0)  # a poll of the registry's state, with a deadline
    finally:
        await calm(faults, reg, broker, agent)
    elapsed = time.monotonic() - started
    async with asyncio.timeout(60):
        while not agent.ready():  # the chaos may have just (re)started it
            agent.ensure_running()
            await asyncio.sleep(0.1)  # a poll of its log, with a deadline
    assert agent.process is not None
    agent.process.send_signal(signal.SIGTERM)
    assert agent.process.wait(timeout=60) == 0

    async with RegistryClient(reg.url, reg.token) as client:
        jobs = await asyncio.gather(*(client.get_job(i) for i in ids))
        artifacts = await asyncio.gather(
            *(client.list_artifacts(models[i]) for i in ids)  # type: ignore[arg-type]
        )
    return counts, elapsed, jobs, artifacts


@contextmanager
def cleaned_up(agent: Agent, reg: Registry, root: Path) -> Iterator[None]:
    """Whatever happens: no agent, registry or tool of this test is left running."""
    try:
        yield
    finally:
        if agent.process is not None and agent.process.poll() is None:
            agent.process.kill()
            agent.process.wait()
        reg.stop(signal.SIGKILL)
        for p in leftovers(root / "work"):
            p.kill()


async def test_every_job_completes_exactly_once_through_kills_and_outages(tmp_path: Path) -> None:
    rng_seed = int(os.environ.get("CHAOS_SEED", secrets.randbelow(2**32)))
    random.seed(rng_seed)
    tool = ShellModule("chaos", TOOL, shell=sys.executable)
    module_dir = tool.install(tmp_path / "modules")
    (tmp_path / "mqtt").mkdir()
    async with Mosquitto(tmp_path / "mqtt") as broker:
        reg = Registry(tmp_path, broker)
        reg.start()
        env = {
            **agent_env(reg.as_fixture(), tmp_path),
            "ISTARI_DIGITAL_AGENT_MQTT_URL": broker.url,
            "ISTARI_DIGITAL_AGENT_MQTT_USERNAME": broker.username,
            "ISTARI_DIGITAL_AGENT_MQTT_PASSWORD": broker.password,
            "ISTARI_DIGITAL_AGENT_MAX_CONCURRENT_JOBS": str(SLOTS),
            "ISTARI_DIGITAL_AGENT_POLL_INTERVAL": "2",
            # Shorter than most outages: phases are told late, uploads wait, a start during
            # an outage fails (and is restarted, as systemd would).
            "ISTARI_DIGITAL_AGENT_RETRY_BUDGET": "1.5",
            "ISTARI_DIGITAL_AGENT_STATUS_RETRY_BUDGET": "2",
            "ISTARI_DIGITAL_AGENT_KILL_GRACE": "1",
            "ISTARI_DIGITAL_AGENT_KEEP_WORK_DIRS": "never",
        }
        async with RegistryClient(reg.url, reg.token) as client:
            await client.publish_module(tool.manifest())
            ids, models = [], {}
            for n in range(JOBS):
                model = tmp_path / "models" / f"m{n}.txt"
                model.parent.mkdir(exist_ok=True)
                model.write_text(f"{random.choice([0, 0.05, 0.2, 0.5, 1.0, 2.0]):g}")
                job = await submit(client, Submission(model, tool.function, {}))
                ids.append(job.id)
                models[job.id] = job.model_id
        agent = Agent(env, tmp_path / "agent.log")
        with cleaned_up(agent, reg, tmp_path):
            counts, elapsed, jobs, artifacts = await drive(agent, reg, broker, ids, models)
            left = leftovers(tmp_path / "work")  # the agent has stopped; no tool may run on
    ledger = collections.Counter((module_dir / "ledger.txt").read_text().split())

    counts.outcomes = dict(collections.Counter(j.status.value for j in jobs))
    lost = [j.id for j in jobs if j.status is not JobStatus.COMPLETED]
    twice_reported = [
        j.id for j in jobs if [e.name for e in j.status_history].count(JobStatus.COMPLETED) != 1
    ]
    ran_twice = [i for i in ids if ledger[i] > 1]
    never_ran = [i for i in ids if ledger[i] == 0]
    wrong_artifacts = [
        i
        for i, page in zip(ids, artifacts, strict=True)
        if sorted(a.file.current.name or "" for a in page.items)
        != sorted(["receipt.txt", f"job-{i}.log"])
    ]
    print(
        f"\nchaos (seed {rng_seed}): {JOBS} jobs in {elapsed:.0f} s; agent kill -9: "
        f"{counts.agent_kills}, registry restarts: {counts.registry_restarts}, broker kills: "
        f"{counts.broker_kills}; outcomes {counts.outcomes}; lost {len(lost)}, reported twice "
        f"{len(twice_reported)}, tool ran twice {len(ran_twice)}, never ran {len(never_ran)}, "
        f"wrong artifacts {len(wrong_artifacts)}, processes left {len(left)}"
    )
    assert counts.agent_kills and counts.registry_restarts and counts.broker_kills
    assert not lost, [
        (j.id, [(e.name.value, e.message) for e in j.status_history]) for j in jobs if j.id in lost
    ][:3]
    assert not twice_reported
    assert not ran_twice
    assert not never_ran
    assert not wrong_artifacts, wrong_artifacts[:3]
    assert not left, [p.cmdline() for p in left]
