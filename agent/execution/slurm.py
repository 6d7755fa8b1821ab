"""Tools as Slurm batch jobs, submitted from a login node (STYLE §10: the same interface).

`start` writes `<work dir>/supervisor/batch.sh` (cd to the tool's directory, then exec the
tool: no shell sees a parameter, each argument is quoted) and submits it with `sbatch`: the
partition, account, CPUs, memory and GPUs come from the config, the time limit from
`process_timeout` (whole minutes, rounded up), and Slurm writes the tool's output straight
into the job log. `wait` follows the job with `squeue`, with a backoff that starts at 0.2 s
and settles at `POLL_MAX` (no busy loop; a controller that is restarting is waited out), then
reads its end from `scontrol show job`: COMPLETED, FAILED (with the exit code), TIMEOUT,
OUT_OF_MEMORY, CANCELLED, NODE_FAIL, PREEMPTED each become an `ExitInfo` with a clear
`detail`. `interrupt` is `scancel --signal=TERM --full`, the grace period, then `scancel`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from agent.execution.base import ExitInfo, LaunchError, LaunchSpec, StopOnce

log = structlog.get_logger(__name__)

POLL_FIRST = 0.2  # seconds: a short job is seen to end quickly
POLL_MAX = 10.0  # seconds between squeue calls for a long job
COMMAND_TIMEOUT = 30.0
# Pending reasons that never clear by waiting: the request breaks the partition's or the
# account's limits. Such a job is cancelled and fails saying why, instead of waiting forever.
NEVER = {
    "PartitionConfig", "BadConstraints", "PartitionNodeLimit", "PartitionTimeLimit",
    "InvalidAccount", "InvalidQOS", "AccountNotAllowed", "QOSMaxCpuPerJobLimit",
    "QOSMaxMemoryPerJob", "AssocMaxCpuPerJobLimit", "AssocMaxNodePerJobLimit",
}  # fmt: skip
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}
ENDS = {
    "FAILED": "failed in Slurm without an exit code",
    "TIMEOUT": "hit its Slurm time limit",
    "OUT_OF_MEMORY": "was killed by Slurm for using more memory than it asked for (out of memory)",
    "CANCELLED": "was cancelled in Slurm outside the agent (scancel or an administrator)",
    "NODE_FAIL": "was lost when its Slurm node failed",
    "PREEMPTED": "was preempted by Slurm",
    "BOOT_FAIL": "could not start: its Slurm node failed to boot",
    "DEADLINE": "missed its Slurm deadline",
}


@dataclass(frozen=True)
class SlurmOptions:
    """What every batch job asks for (from the config)."""

    partition: str | None = None
    account: str | None = None
    cpus: int | None = None
    memory_mb: int | None = None
    gpus: int | None = None


def batch_script(spec: LaunchSpec) -> str:
    """The script sbatch runs: go to the tool's directory and exec the tool (pure)."""
    return f"#!/bin/sh\ncd {shlex.quote(str(spec.cwd))} || exit 1\nexec {shlex.join(spec.argv)}\n"


def sbatch_argv(spec: LaunchSpec, options: SlurmOptions, name: str) -> list[str]:
    """The sbatch command line for `spec` (pure)."""
    argv = [
        "sbatch",
        "--parsable",
        f"--job-name={name}",
        f"--output={spec.log_path}",
        "--open-mode=append",
        f"--chdir={spec.cwd}",
        f"--time={max(1, math.ceil(spec.timeout / 60))}",
        "--export=ALL",
    ]
    if options.partition:
        argv.append(f"--partition={options.partition}")
    if options.account:
        argv.append(f"--account={options.account}")
    if options.cpus:
        argv.append(f"--cpus-per-task={options.cpus}")
    if options.memory_mb:
        argv.append(f"--mem={options.memory_mb}M")
    if options.gpus:
        argv.append(f"--gpus={options.gpus}")
    return [*argv, str(spec.status_dir / "batch.sh")]


def parse_job(line: str) -> dict[str, str]:
    """`scontrol show job -o` as a mapping (pure; values with spaces are not needed here)."""
    return dict(part.split("=", 1) for part in line.split() if "=" in part)


def exit_info(fields: Mapping[str, str], interrupted: str | None, wall: float) -> ExitInfo:
    """How a finished Slurm job ended, from its `scontrol` fields (pure)."""
    state = fields.get("JobState", "UNKNOWN")
    code_text, _, sig_text = fields.get("ExitCode", "0:0").partition(":")
    code = int(code_text) if code_text.isdigit() else None
    sig = int(sig_text) if sig_text.isdigit() and int(sig_text) else None
    if state == "COMPLETED":
        return ExitInfo(0, None, False, interrupted, wall)
    if state == "TIMEOUT":
        limit = fields.get("TimeLimit", "?")
        return ExitInfo(None, None, True, interrupted, wall, f"its Slurm time limit ({limit})")
    if state == "FAILED" and (sig or code):
        return ExitInfo(None if sig else code, sig, False, interrupted, wall)
    # Any other end is not a success, whatever exit code Slurm shows: the detail says why.
    detail = ENDS.get(state) or f"ended in Slurm state {state}"
    return ExitInfo(None, None, False, interrupted, wall, detail)


async def _run(*argv: str, env: Mapping[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 124, "", f"{argv[0]} did not answer within {COMMAND_TIMEOUT:g} s"
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def cancel_slurm_job(job_id: str, env: Mapping[str, str]) -> bool:
    """`scancel` a job an earlier run of the agent left; whether Slurm still had it queued."""
    rc, out, _ = await _run("squeue", "-h", "-j", job_id, "-o", "%T", env=env)
    queued = rc == 0 and out.strip() in ACTIVE
    if queued:
        await _run("scancel", job_id, env=env)
    return queued


class SlurmBackend:
    """Submits tools to Slurm with sbatch."""

    def __init__(self, options: SlurmOptions) -> None:
        self.options = options  # the Slurm commands run with the tool's environment

    async def start(self, spec: LaunchSpec) -> SlurmJob:
        spec.status_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        script = spec.status_dir / "batch.sh"
        script.write_text(batch_script(spec))
        script.chmod(0o700)
        name = f"istari-{spec.cwd.parent.name}"
        try:
            rc, out, err = await _run(*sbatch_argv(spec, self.options, name), env=spec.env)
        except OSError as e:
            msg = f"cannot run sbatch: {e.strerror or e} (is Slurm installed on this login node?)"
            raise LaunchError(msg) from None
        if rc != 0:
            msg = f"sbatch refused the job: {err.strip() or out.strip() or f'exit code {rc}'}"
            raise LaunchError(msg)
        job_id = out.strip().split(";")[0]
        log.info("slurm.submitted", slurm_job_id=job_id)
        return SlurmJob(job_id, spec)

    def adopt(self, pid: int, spec: LaunchSpec) -> SlurmJob:
        return SlurmJob(str(pid), spec)


class SlurmJob(StopOnce):
    """A submitted batch job, followed until it ends."""

    def __init__(self, job_id: str, spec: LaunchSpec) -> None:
        self.job_id = job_id
        self._spec = spec
        self._started = time.monotonic()
        self._interrupted: str | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._detached = False
        self._unreachable = False
        self._never: str | None = None  # why Slurm will never start it, once seen

    @property
    def ident(self) -> str:
        return f"slurm job {self.job_id}"

    @property
    def pid(self) -> int | None:
        return None

    @property
    def handle(self) -> int | None:
        return int(self.job_id) if self.job_id.isdigit() else None

    def detach(self) -> None:
        self._detached = True

    async def wait(self) -> ExitInfo:
        delay = POLL_FIRST
        try:
            while await self._queued():
                if self._never is not None:
                    log.warning("slurm.unrunnable", slurm_job_id=self.job_id, reason=self._never)
                    await self._scancel()
                    break
                await asyncio.sleep(delay)  # the backoff between squeue calls
                delay = min(delay * 1.5, POLL_MAX)
        except asyncio.CancelledError:
            if not self._detached:
                await asyncio.shield(self._scancel())
            raise
        if self._stopping is not None:
            await self._stopping
        return await self._final()

    async def _queued(self) -> bool:
        """Whether the job is still in the queue (a failing squeue counts as yes, logged once)."""
        rc, out, err = await _run(
            "squeue", "-h", "-j", self.job_id, "-o", "%T %r", env=self._spec.env
        )
        if rc != 0 and "Invalid job id" not in err:
            if not self._unreachable:
                log.warning("slurm.unavailable", slurm_job_id=self.job_id, error=err.strip())
                self._unreachable = True
            return True
        if self._unreachable:
            log.info("slurm.available", slurm_job_id=self.job_id)
            self._unreachable = False
        state, _, reason = out.strip().partition(" ")
        if state == "PENDING" and reason in NEVER:
            self._never = reason
        return state in ACTIVE

    async def _final(self) -> ExitInfo:
        wall = time.monotonic() - self._started
        if self._never is not None:
            detail = (
                f"was never started: Slurm keeps it pending for {self._never}, which waiting "
                "does not change (the request exceeds what the partition or account allows: "
                "check slurm_partition, slurm_account, slurm_cpus, slurm_memory_mb, slurm_gpus)"
            )
            return ExitInfo(None, None, False, self._interrupted, wall, detail)
        for _ in range(10):  # the controller may be restarting: a few tries, then say so
            rc, out, _ = await _run(
                "scontrol", "show", "job", "-o", self.job_id, env=self._spec.env
            )
            if rc == 0 and out.strip():
                return exit_info(parse_job(out.strip()), self._interrupted, wall)
            await asyncio.sleep(POLL_MAX / 5)
        detail = "left the Slurm queue, and Slurm no longer knows how it ended"
        return ExitInfo(None, None, False, self._interrupted, wall, detail)

    async def _stop(self) -> None:
        log.info("slurm.cancel", slurm_job_id=self.job_id, reason=self._interrupted)
        env = self._spec.env
        await _run("scancel", "--signal=TERM", "--full", self.job_id, env=env)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._spec.grace):
                while await self._queued():  # noqa: ASYNC110 (only squeue can tell)
                    await asyncio.sleep(POLL_FIRST)
        await self._scancel()

    async def _scancel(self) -> None:
        await _run("scancel", self.job_id, env=self._spec.env)
