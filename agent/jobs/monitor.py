"""While a tool runs: follow what it reports, sample what it uses, keep the registry told.

`ToolMonitor` wraps the Running phase. It reads the tool's updates file (agent/runs/updates.py)
as lines arrive and writes each entry to the run record at once; a line that is not an update
is ignored with a warning (logged, and kept in the record, at most `MAX_WARNINGS` times). The
latest progress and message go into the job's status message in the registry (a Running
status with a message), at most every `progress_report_interval` seconds, only when they
changed, and only once the registry has taken the Running phase; a report that fails is
dropped (the next carries newer news). For a local tool it samples the CPU and memory of the
process tree every `resource_sample_interval` seconds. With `max_work_dir_mb` set it measures
the job's work directory every `DISK_CHECK` seconds and, past the limit, has the tool stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

import psutil
import structlog

from agent.concurrently import stop_beside
from agent.jobs.context import JobContext
from agent.jobs.workdir import WorkDir
from agent.protocol.states import JobStatus
from agent.registry.errors import RegistryError
from agent.runs.model import Entry, Sample
from agent.runs.recorder import RunRecorder
from agent.runs.updates import MAX_LINE, BadUpdate, parse_update, status_message
from agent.safeopen import open_regular

log = structlog.get_logger(__name__)

POLL = 0.25  # seconds between looks at the updates file
DISK_CHECK = 1.0  # seconds between measures of the work directory, with max_work_dir_mb set
MAX_WARNINGS = 5  # ignored lines warned about, per job (the rest are counted)
MAX_ENTRIES = 10_000  # entries recorded per job (the rest are counted)


class UpdatesFile:
    """The lines a tool appends to its updates file, read as they arrive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self.lines = 0  # lines read so far (a warning names the line)

    def create(self) -> None:
        """Make the (empty) file the tool appends to; an existing one is kept (re-attach)."""
        with contextlib.suppress(OSError):  # one a tool replaced by a link is read as nothing
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
            os.close(fd)

    def read(self, final: bool = False) -> list[bytes]:
        """The complete lines added since the last read (`final`: the unfinished one too)."""
        try:
            with open_regular(self.path) as f:  # not through a link, not a FIFO
                f.seek(self._offset)
                data = f.read(64 * MAX_LINE)
        except OSError:
            return []
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        if len(self._partial) > MAX_LINE:  # a runaway line: keep only enough to refuse it
            self._partial = self._partial[: MAX_LINE + 1]
        if final and self._partial:
            lines.append(self._partial)
            self._partial = b""
        lines = [line for line in lines if line.strip()]
        self.lines += len(lines)
        return lines


class ToolMonitor:
    """Follows one running tool; `async with` around the Running phase."""

    def __init__(
        self, ctx: JobContext, job_id: str, workdir: WorkDir, record: RunRecorder,
        running_acknowledged: Callable[[], bool],
        work_dir_full: Callable[[], Awaitable[None]],
    ) -> None:  # fmt: skip
        self.ctx = ctx
        self.job_id = job_id
        self.workdir = workdir
        self.updates = UpdatesFile(workdir.updates_file)
        self._work_dir_full = work_dir_full
        self.record = record
        self._acknowledged = running_acknowledged
        self._pid: int | None = None
        self._cpu: dict[tuple[int, float], float] = {}  # (pid, start) -> CPU seconds seen
        self._last_sample = 0.0
        self._started = 0.0
        self._ignored = 0
        self._recorded = 0
        self._news: tuple[float | None, str | None] = (None, None)  # progress, message
        self._told: str | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def watch(self, pid: int | None) -> None:
        """The tool started as `pid` (its supervisor); None when it runs elsewhere (Slurm).

        The first sample comes one interval after the start: a tool done sooner has its CPU
        time and peak RSS from wait4 anyway, and sampling walks all of /proc (psutil finds a
        tree's children from every process's parent).
        """
        self._pid = pid
        self._last_sample = time.time()
        self._started = self._last_sample

    async def __aenter__(self) -> ToolMonitor:
        self.updates.create()
        self._task = asyncio.create_task(self._follow(), name=f"monitor {self.job_id}")
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if (bug := await stop_beside(self._task)) is not None:
            log.error("job.monitor_failed", error=repr(bug))  # the job goes on
        self._take(self.updates.read(final=True))
        if self._ignored > MAX_WARNINGS:
            log.warning("job.updates_ignored", count=self._ignored)
        if self._recorded > MAX_ENTRIES:
            log.warning("job.updates_unrecorded", count=self._recorded - MAX_ENTRIES)

    async def _follow(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._report())
            tg.create_task(self._guard_disk())
            while True:
                self._take(self.updates.read())
                self._sample()
                await asyncio.sleep(POLL)

    def _take(self, lines: list[bytes]) -> None:
        first = self.updates.lines - len(lines) + 1
        for n, line in enumerate(lines, first):
            try:
                entry = parse_update(line, time.time())
            except BadUpdate as e:
                self._ignore(n, str(e))
                continue
            self._keep(entry)

    def _keep(self, entry: Entry) -> None:
        self._recorded += 1
        if self._recorded <= MAX_ENTRIES:
            self.record.entry(entry)
        if entry.level != "DEBUG" or entry.progress is not None:
            progress, message = self._news
            progress = entry.progress if entry.progress is not None else progress
            self._news = (progress, entry.message or message)
            self._changed.set()

    def _ignore(self, line: int, problem: str) -> None:
        self._ignored += 1
        if self._ignored <= MAX_WARNINGS:  # the line itself is not repeated: it may be anything
            log.warning("job.update_ignored", line=line, problem=problem)
            text = f"the agent ignored line {line} of the updates file: it is {problem}"
            self.record.entry(Entry(time.time(), "WARN", text, {"source": "agent"}))

    async def _report(self) -> None:
        """Tell the registry the news, at most every progress_report_interval seconds."""
        every = self.ctx.settings.progress_report_interval
        if every <= 0:
            return
        while True:
            await self._changed.wait()
            self._changed.clear()
            text = status_message(*self._news)
            if not self._acknowledged():
                self._changed.set()  # told once the registry has taken the Running phase
            elif text != self._told:
                await self._tell(text)
            await asyncio.sleep(every)

    async def _guard_disk(self) -> None:
        """Have the tool stopped once its work directory grows past max_work_dir_mb."""
        limit_mb = self.ctx.settings.max_work_dir_mb
        if limit_mb <= 0:
            return
        while True:
            await asyncio.sleep(DISK_CHECK)
            used = await asyncio.to_thread(self.workdir.size)
            if used > limit_mb * 2**20:
                log.warning("job.work_dir_full", used_mb=round(used / 2**20, 1), limit_mb=limit_mb)
                await self._work_dir_full()
                return

    async def _tell(self, text: str) -> None:
        ctx = self.ctx
        try:
            await ctx.client.update_job_status(self.job_id, JobStatus.RUNNING, ctx.agent_id, text)
        except RegistryError as e:
            log.info("job.progress_unreported", error=str(e))
            return
        self._told = text

    def _sample(self) -> None:
        now, every = time.time(), self.ctx.settings.resource_sample_interval
        if self._pid is None or now - self._last_sample < every:
            return
        try:
            leader = psutil.Process(self._pid)
            procs = [leader, *leader.children(recursive=True)]
        except psutil.Error:
            return  # it has ended
        since = self._last_sample if self._cpu else _started(leader, self._started)
        cpu, rss = 0.0, 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                with p.oneshot():
                    key, used = (p.pid, p.create_time()), sum(p.cpu_times()[:2])
                    rss += p.memory_info().rss
                cpu += used - self._cpu.get(key, 0.0)
                self._cpu[key] = used
        self._last_sample = now
        percent = 100 * cpu / (now - since) if now > since else 0.0
        self.record.sample(Sample(now, round(percent, 1), rss // 1024))


def _started(p: psutil.Process, fallback: float) -> float:
    try:
        return p.create_time()
    except psutil.Error:
        return fallback
