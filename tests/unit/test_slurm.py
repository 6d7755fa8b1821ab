"""The Slurm backend's pure parts: the batch script, sbatch's arguments, Slurm's end states."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from agent.execution.base import LaunchSpec
from agent.execution.slurm import SlurmOptions, batch_script, exit_info, parse_job, sbatch_argv

SPEC = LaunchSpec(
    argv=["/opt/tool", "--name", "it's; rm -rf /", "$HOME"],
    cwd=Path("/work/job-1/tmp"),
    env={},
    log_path=Path("/work/job-1/job.log"),
    timeout=601,
    grace=5,
    status_dir=Path("/work/job-1/supervisor"),
)


def test_the_batch_script_execs_the_tool_with_every_argument_quoted() -> None:
    script = batch_script(SPEC)
    assert script.startswith("#!/bin/sh\ncd /work/job-1/tmp || exit 1\n")
    last = script.splitlines()[-1]
    assert last.startswith("exec ")
    assert shlex.split(last[5:]) == SPEC.argv  # no shell expands or splits a parameter


def test_sbatch_asks_for_the_configured_resources_and_a_whole_minute_limit() -> None:
    options = SlurmOptions("gpu", "proj-7", cpus=4, memory_mb=8000, gpus=1)
    argv = sbatch_argv(SPEC, options, "istari-job-1")
    assert argv[:2] == ["sbatch", "--parsable"]
    for arg in ("--partition=gpu", "--account=proj-7", "--cpus-per-task=4", "--mem=8000M",
                "--gpus=1", "--time=11", "--output=/work/job-1/job.log", "--open-mode=append",
                "--chdir=/work/job-1/tmp", "--job-name=istari-job-1"):  # fmt: skip
        assert arg in argv
    assert argv[-1] == "/work/job-1/supervisor/batch.sh"
    bare = sbatch_argv(SPEC, SlurmOptions(), "n")
    assert not [a for a in bare if a.startswith(("--partition", "--account", "--gpus", "--mem"))]


@pytest.mark.parametrize(
    ("fields", "code", "signal", "timed_out", "detail"),
    [
        ({"JobState": "COMPLETED", "ExitCode": "0:0"}, 0, None, False, None),
        ({"JobState": "FAILED", "ExitCode": "3:0"}, 3, None, False, None),
        ({"JobState": "FAILED", "ExitCode": "0:9"}, None, 9, False, None),
        ({"JobState": "TIMEOUT", "ExitCode": "0:15", "TimeLimit": "00:01:00"}, None, None, True,
         "its Slurm time limit (00:01:00)"),
        ({"JobState": "FAILED", "ExitCode": "0:0"}, None, None, False,
         "failed in Slurm without an exit code"),
        ({"JobState": "OUT_OF_MEMORY", "ExitCode": "0:125"}, None, None, False,
         "was killed by Slurm for using more memory than it asked for (out of memory)"),
        ({"JobState": "CANCELLED", "ExitCode": "0:15"}, None, None, False,
         "was cancelled in Slurm outside the agent (scancel or an administrator)"),
        ({"JobState": "NODE_FAIL", "ExitCode": "0:0"}, None, None, False,
         "was lost when its Slurm node failed"),
        ({"JobState": "PREEMPTED", "ExitCode": "0:0"}, None, None, False, "was preempted by Slurm"),
        ({"JobState": "WEIRD"}, None, None, False, "ended in Slurm state WEIRD"),
    ],
)  # fmt: skip
def test_slurm_end_states_become_exit_info(
    fields: dict[str, str], code: int | None, signal: int | None, timed_out: bool, detail: str
) -> None:
    info = exit_info(fields, None, 1.0)
    assert (info.exit_code, info.signal, info.timed_out, info.detail) == (
        code, signal, timed_out, detail
    )  # fmt: skip
    assert info.succeeded == (fields["JobState"] == "COMPLETED")


def test_scontrol_lines_parse_into_fields() -> None:
    line = "JobId=7 JobName=istari-x JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15"
    assert parse_job(line)["JobState"] == "TIMEOUT"
    assert parse_job(line)["ExitCode"] == "0:15"
