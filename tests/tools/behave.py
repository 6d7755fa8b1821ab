"""A tool with named behaviours, run by the agent as a real subprocess in tests.

argv: behave.py <function name> <input file> <output file> <temp dir>. The behaviour is the
part of the function name after the colon (`@test:exit` -> `exit`); parameters come from the
input file as the agent wrote it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

try:
    from tests.tools import hostile
except ImportError:  # run by the agent as a script, from the module directory it is in
    import hostile  # type: ignore[import-not-found,no-redef,unused-ignore]


def write_outputs(output_file: Path, entries: list[dict[str, Any]]) -> None:
    output_file.write_text(json.dumps(entries))


def echo(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Copy the model to an output, and record the inputs and argv as a second output."""
    model = Path(inputs["part"]["value"])
    copy = temp / f"copy-{model.name}"
    copy.write_bytes(model.read_bytes())
    record = temp / "record.json"
    record.write_text(json.dumps({"inputs": inputs, "argv": sys.argv, "cwd": str(Path.cwd()),
                                  "env": sorted(os.environ)}))  # fmt: skip
    print(f"echo: copied {model.name}")
    write_outputs(output_file, [
        {"name": "copy", "type": "file", "path": str(copy)},
        {"name": "record", "type": "file", "value": "record.json"},  # relative, `value` key
    ])  # fmt: skip
    return 0


def link(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Copy the user_link's file to an output, and record the inputs as a second output."""
    sheet = Path(inputs["sheet"]["value"])
    (temp / "seen.bin").write_bytes(sheet.read_bytes())
    (temp / "record.json").write_text(json.dumps({"inputs": inputs}))
    write_outputs(output_file, [
        {"name": "seen", "type": "file", "path": str(temp / "seen.bin")},
        {"name": "record", "type": "file", "path": str(temp / "record.json")},
    ])  # fmt: skip
    return 0


def scribble(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Make the input writable and write over it in place (as a careless tool might)."""
    model = Path(inputs["part"]["value"])
    model.chmod(0o600)
    with model.open("r+b") as f:
        f.write(b"SCRIBBLED")
    (temp / "out.bin").write_bytes(model.read_bytes())
    write_outputs(output_file, [{"name": "out", "type": "file", "path": str(temp / "out.bin")}])
    return 0


def exit_with(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    print("about to fail on purpose", file=sys.stderr)
    return int(inputs["code"]["value"])


def crash(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    print("crashing now", flush=True)
    os.kill(os.getpid(), signal.SIGSEGV)
    return 0


def sleep(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Start a grandchild in the same group and one in its own session, then sleep."""
    for new_session in (False, True):
        child = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=new_session
        )
        (temp / f"child-{int(new_session)}.pid").write_text(str(child.pid))
    if inputs.get("ignore_term", {}).get("value"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    (temp / "tool.pid").write_text(str(os.getpid()))
    print("sleeping", flush=True)
    time.sleep(float(inputs["seconds"]["value"]))
    return echo_like(output_file, temp)


def spam(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    line = "x" * 1023 + "\n"
    for _ in range(int(inputs["megabytes"]["value"]) * 1024):
        sys.stdout.write(line)
    sys.stdout.write("spam: done\n")
    return echo_like(output_file, temp)


def echo_like(output_file: Path, temp: Path) -> int:
    (temp / "out.txt").write_text("ok")
    write_outputs(output_file, [{"name": "out", "type": "file", "path": str(temp / "out.txt")}])
    return 0


def gate(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Note each start in `runs.txt`, wait until a test creates `go`, then exit with `code`."""
    with (temp / "runs.txt").open("a") as runs:
        runs.write(f"{os.getpid()}\n")
    print("waiting at the gate", flush=True)
    deadline = time.monotonic() + 300  # a test that failed before releasing it: give up
    while not (temp / "go").exists():
        if time.monotonic() > deadline:
            return 99
        time.sleep(0.02)
    code = int(inputs["code"]["value"])
    return echo_like(output_file, temp) if code == 0 else code


def report(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Report entries and progress through the agent's updates file (one line of garbage
    among them), wait at the gate, then finish."""
    with Path(os.environ["ISTARI_AGENT_UPDATES_FILE"]).open("a") as updates:
        for line in (
            {"level": "INFO", "message": "meshing", "tags": {"cells": 120}, "progress": 40},
            "this is not JSON",
            {"logLevel": "WARN", "log": "coarse mesh"},  # Port's spelling
            {"message": "solving", "progress": 80},
        ):
            updates.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
            updates.flush()
    return gate(inputs, output_file, temp)


def secret(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Read the credential file; write its sha256 and mode (never the secret) as the output."""
    path = Path(inputs["api_auth"]["value"])
    data = path.read_bytes()
    facts = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "mode": oct(path.stat().st_mode & 0o777),
        "path": str(path),
    }
    (temp / "out.txt").write_text(json.dumps(facts))
    write_outputs(output_file, [{"name": "out", "type": "file", "path": str(temp / "out.txt")}])
    return 0


def burn(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Hold `megabytes` of memory and spin the CPU for `seconds`, in a child it waits for."""
    code = (
        "import sys, time\n"
        "block = bytearray(int(sys.argv[1]) * 2**20)\n"
        "block[::4096] = b'x' * len(block[::4096])\n"  # touch every page: resident
        "end = time.process_time() + float(sys.argv[2])\n"
        "while time.process_time() < end: pass\n"
    )
    args = [str(int(inputs["megabytes"]["value"])), str(inputs["seconds"]["value"])]
    subprocess.run([sys.executable, "-c", code, *args], check=True)
    return echo_like(output_file, temp)


def big_output(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Write one `megabytes` MiB file output, quickly: 1 MiB of random bytes, rotated per MiB."""
    block = os.urandom(2**20)
    path = temp / "big.bin"
    with path.open("wb") as f:
        for i in range(int(inputs["megabytes"]["value"])):
            f.write(block[i % 251 :] + block[: i % 251])  # distinct chunks, cheap to make
    write_outputs(output_file, [{"name": "out", "type": "file", "path": str(path)}])
    return 0


def no_output(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    return 0


def bad_output(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    output_file.write_text('[{"name": "out", "type": "file", "path": ')
    return 0


def missing_output(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    write_outputs(output_file, [{"name": "out", "type": "file", "path": str(temp / "nope.txt")}])
    return 0


def outside_output(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    link = temp / "innocent.txt"
    link.symlink_to(inputs["target"]["value"])  # a symlink pointing out of the work dir
    write_outputs(output_file, [{"name": "out", "type": "file", "path": str(link)}])
    return 0


def dir_output(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    folder = temp / "results"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha")
    (folder / "sub" / "b.txt").write_text("beta")
    write_outputs(output_file, [{"name": "out", "type": "directory", "path": str(folder)}])
    return 0


def show_config(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """Copy the module configuration the agent wrote for this job (or `null`) to the output."""
    config = temp.parent / "module_config.json"
    copy = temp / "config-copy.json"
    copy.write_text(config.read_text() if config.exists() else "null")
    write_outputs(output_file, [{"name": "out", "type": "file", "path": str(copy)}])
    return 0


def derive(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """A new model (`derived.txt`) and the next revision of the job's model (`next-<name>`),
    both made from the model's bytes."""
    model = Path(inputs["part"]["value"])
    (temp / "derived.txt").write_bytes(b"derived from " + model.read_bytes())
    (temp / f"next-{model.name}").write_bytes(b"next: " + model.read_bytes())
    write_outputs(output_file, [
        {"name": "derived", "type": "file", "path": "derived.txt"},
        {"name": "next", "type": "file", "path": f"next-{model.name}"},
    ])  # fmt: skip
    return 0


def revise(inputs: dict[str, Any], output_file: Path, temp: Path) -> int:
    """One output, `next.txt` (a new revision of whatever the function says)."""
    (temp / "next.txt").write_text("the next revision")
    write_outputs(output_file, [{"name": "next", "type": "file", "path": "next.txt"}])
    return 0


BEHAVIOURS = {
    **hostile.BEHAVIOURS,
    "echo": echo,
    "exit": exit_with,
    "scribble": scribble,
    "crash": crash,
    "sleep": sleep,
    "spam": spam,
    "gate": gate,
    "secret": secret,
    "link": link,
    "report": report,
    "burn": burn,
    "big_output": big_output,
    "no_output": no_output,
    "bad_output": bad_output,
    "missing_output": missing_output,
    "outside_output": outside_output,
    "dir_output": dir_output,
    "show_config": show_config,
    "derive": derive,
    "revise": revise,
    "revise_label": revise,
    "revise_link": revise,
}


def main() -> int:
    function, input_file, output_file, temp = sys.argv[1:5]
    inputs = json.loads(Path(input_file).read_text())
    behaviour = BEHAVIOURS[function.split(":", 1)[1]]
    return behaviour(inputs, Path(output_file), Path(temp))


if __name__ == "__main__":
    sys.exit(main())
