"""Behaviours of a hostile tool, for the security tests: each tries to make the agent do harm.

They run inside `behave.py` (same arguments, same module) and are listed in its BEHAVIOURS.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any


def _outputs(output_file: Path, path: Path, kind: str = "file") -> None:
    output_file.write_text(json.dumps([{"name": "out", "type": kind, "path": str(path)}]))


def link_farm(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """A directory output whose links point at a secret file, at /etc, and up out of the
    output into the work directory; a FIFO that would block a reader; one real file."""
    folder = temp / "results"
    folder.mkdir()
    (folder / "real.txt").write_text("mine")
    (folder / "inner.txt").symlink_to("real.txt")
    (folder / "key.pem").symlink_to(inputs["target"]["value"])
    (folder / "etc").symlink_to("/etc")
    (folder / "config.json").symlink_to("../../module_config.json")
    os.mkfifo(folder / "pipe")
    _outputs(output_file, folder, "directory")
    return 0


def fifo_output(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """A file output that is a FIFO: reading it would wait forever for a writer."""
    os.mkfifo(temp / "out.txt")
    _outputs(output_file, temp / "out.txt")
    return 0


def daemon(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Leave a daemon behind: fork, setsid, fork again, and the grandchild sleeps on."""
    (temp / "out.txt").write_text("ok")
    _outputs(output_file, temp / "out.txt")
    ready_r, ready_w = os.pipe()
    if os.fork() == 0:  # the child: a new session, then the daemon, then gone
        os.setsid()
        if os.fork() == 0:
            os.close(ready_r)
            (temp / "daemon.pid").write_text(str(os.getpid()))
            os.write(ready_w, b"x")
            time.sleep(600)
        os._exit(0)
    os.close(ready_w)
    os.read(ready_r, 1)  # the daemon's pid is on disk
    os.wait()
    return 0


def kill_supervisor(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Leave a daemon behind, then kill the supervisor that would have swept it up."""
    daemon(inputs, output_file, temp)
    os.kill(os.getppid(), signal.SIGKILL)
    return 0


def deep_output(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """An output file and an updates line nested 100,000 deep (a JSON parser's recursion)."""
    deep = "[" * 100_000 + "]" * 100_000
    with Path(os.environ["ISTARI_AGENT_UPDATES_FILE"]).open("a") as updates:
        updates.write('{"message": ' + deep + "}\n")
        updates.write('{"message": "still here", "progress": 50}\n')
    output_file.write_text(deep)
    return 0


def fill(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Write `megabytes` MiB into the work directory, 1 MiB at a time, then wait `seconds`."""
    block = b"x" * 2**20
    with (temp / "fill.bin").open("wb") as f:
        for _ in range(int(inputs["megabytes"]["value"])):
            f.write(block)
            f.flush()
    time.sleep(float(inputs["seconds"]["value"]))
    (temp / "out.txt").write_text("ok")
    _outputs(output_file, temp / "out.txt")
    return 0


def log_link(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Replace the job's log with a link to a secret, then fail (so the log is read back)."""
    log = temp.parent / "job.log"
    log.unlink()
    log.symlink_to(inputs["target"]["value"])
    return 3


def fifo_document(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Make the output document a FIFO: a plain read of it would wait forever."""
    os.mkfifo(output_file)
    return 0


def plant(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Plant links where the agent stages its uploads, pointing at a file to overwrite."""
    target = inputs["target"]["value"]
    staging = temp.parent / "upload"
    (staging / f"job-{temp.parent.name}.log").symlink_to(target)
    (staging / "out.zip").symlink_to(target)
    print("planted")
    folder = temp / "results"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha")
    _outputs(output_file, folder, "directory")
    return 0


BEHAVIOURS = {
    "log_link": log_link,
    "fifo_document": fifo_document,
    "plant": plant,
    "link_farm": link_farm,
    "fifo_output": fifo_output,
    "daemon": daemon,
    "kill_supervisor": kill_supervisor,
    "deep_output": deep_output,
    "fill": fill,
}
