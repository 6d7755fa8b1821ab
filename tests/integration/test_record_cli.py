"""`istari-agent record` as a real process against a real local registry (and a faulty one).

The registry is served in the test's event loop, so the CLI runs as an asyncio subprocess;
faults come from the fault-injection proxy in front of it: v3 routes answering 404 (a
registry without external workflow logs), a 503, an answer lost after the entry was made.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.localregistry.server import RunningRegistry
from agent.registry.client import RegistryClient
from agent.registry.models import FileRevision
from agent.registry.transfer import download_revision
from agent.registry.v3 import WorkflowLogs, WorkflowOutput
from agent.workflowlog.outbox import OUTBOX
from agent.workflowlog.report import KEPT
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.logwatch import eventually


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@dataclass
class Recorder:
    """Runs `istari-agent record` with a state path and registry of its own."""

    url: str
    token: str
    state: Path

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("ISTARI")}
        return {
            **keep,
            "ISTARI_REGISTRY_URL": self.url,
            "ISTARI_REGISTRY_AUTH_TOKEN": self.token,
            "ISTARI_DIGITAL_AGENT_STATE_PATH": str(self.state),
        }

    async def start(self, *args: str, cwd: Path | None = None) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "record", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self.env(), cwd=cwd,
        )  # fmt: skip

    async def __call__(self, *args: str, cwd: Path | None = None) -> Result:
        proc = await self.start(*args, cwd=cwd)
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

    def outbox_files(self) -> list[Path]:
        return [p for p in (self.state / OUTBOX).rglob("*") if p.is_file()]


@pytest.fixture
async def system_id(client: RegistryClient) -> str:
    return (await WorkflowLogs(client).create_system("Bracket", "for record tests")).id


@pytest.fixture
def recorder(local_registry: RunningRegistry, tmp_path: Path) -> Recorder:
    return Recorder(local_registry.url, local_registry.token, tmp_path / "state")


@pytest.fixture
async def via_proxy(proxy: FaultProxy, local_registry: RunningRegistry, tmp_path: Path) -> Recorder:
    proxy.upstream = local_registry.url
    return Recorder(proxy.url, local_registry.token, tmp_path / "state")


def workflow_outputs(reg: RunningRegistry, system_id: str) -> int:
    """How many workflow outputs the registry holds for the system (owned or not)."""
    sql = "SELECT COUNT(*) FROM workflow_outputs WHERE system_id = ?"
    return int(reg.registry.conn.execute(sql, (system_id,)).fetchone()[0])


async def read(client: RegistryClient, output: WorkflowOutput, tmp_path: Path) -> bytes:
    dest = tmp_path / f"read-{output.id}"
    revision = FileRevision(
        id=output.file_revision_id,
        content_token=output.content_token,
        properties_token=output.properties_token,
    )
    await download_revision(client, revision, dest)
    return dest.read_bytes()


def assert_no_token(recorder: Recorder, *results: Result) -> None:
    for r in results:
        assert recorder.token not in r.out + r.err
    for f in recorder.outbox_files():
        assert recorder.token.encode() not in f.read_bytes(), f


# -- recording ---------------------------------------------------------------------------------


async def test_outputs_and_one_entry_are_recorded_and_read_back(
    recorder: Recorder, client: RegistryClient, system_id: str, tmp_path: Path
) -> None:
    (tmp_path / "results.xml").write_text("<testsuite failures='1'/>")
    (tmp_path / "plot.png").write_bytes(os.urandom(70_000))
    done = await recorder(
        "--system", system_id, "--title", "Design verification — iter-1", "--status", "FAILED",
        "--output", str(tmp_path / "results.xml"), "--output", "plot.png",
        "--config", "mesh=fine", "--config", "solver=direct", "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.code == 0, done.err
    answer = json.loads(done.out)
    assert answer["delivered"] and answer["error"] is None

    logs = WorkflowLogs(client)
    entry = await logs.get_entry(system_id, answer["entry_id"])
    assert (entry.title, entry.status, entry.workflow_type) == (
        "Design verification — iter-1", "FAILED", "external")  # fmt: skip
    names = [o.name for o in entry.workflow_outputs]
    assert names == ["results.xml", "plot.png", "configuration.json"]
    assert [o.id for o in entry.workflow_outputs] == answer["output_ids"]
    got = [await read(client, o, tmp_path) for o in entry.workflow_outputs]
    assert got[0] == (tmp_path / "results.xml").read_bytes()
    assert got[1] == (tmp_path / "plot.png").read_bytes()
    assert json.loads(got[2]) == {"mesh": "fine", "solver": "direct"}
    assert entry.file_count == 3 and entry.total_file_size == sum(len(g) for g in got)

    listed = await recorder("--list")
    assert listed.out.strip() == "no records waiting in the outbox"
    assert recorder.outbox_files() == []  # delivered records leave nothing behind
    assert_no_token(recorder, done, listed)


async def test_the_entry_id_is_printed(recorder: Recorder, system_id: str) -> None:
    done = await recorder("--system", system_id, "--title", "smoke", "--status", "SUCCESS")
    assert done.code == 0, done.err
    assert done.out.startswith("recorded workflow log entry ")
    assert f"in system {system_id} (SUCCESS, 0 outputs)" in done.out


async def test_a_missing_output_is_refused_before_anything_is_sent(
    recorder: Recorder, local_registry: RunningRegistry, system_id: str, tmp_path: Path
) -> None:
    (tmp_path / "there.txt").write_text("x")
    blobs_before = local_registry.registry.conn.execute("SELECT COUNT(*) FROM blobs").fetchone()
    refused = await recorder(
        "--system", system_id, "--title", "t", "--status", "SUCCESS",
        "--output", str(tmp_path / "there.txt"), "--output", str(tmp_path / "missing.txt"),
    )  # fmt: skip
    assert refused.code == 2
    assert "missing.txt: No such file or directory" in refused.err
    assert "nothing was recorded" in refused.err
    conn = local_registry.registry.conn
    assert conn.execute("SELECT COUNT(*) FROM blobs").fetchone() == blobs_before
    assert conn.execute("SELECT COUNT(*) FROM workflow_entries").fetchone()[0] == 0
    assert recorder.outbox_files() == []


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--title", "t", "--status", "SUCCESS"], "--system is required"),
        (["--system", "s", "--status", "SUCCESS"], "--title and --status are required"),
        (["--system", "s", "--status", "SUCCESS", "--", "true"], "--status comes from"),
        (["--system", "s", "--title", "t", "--status", "SUCCESS", "--config", "x"], "KEY=VALUE"),
        (["--retry", "--list"], "stand alone"),
        (["--system", "s", "--branchless", "--branch-id", "b", "--", "true"], "--branchless"),
    ],
)
async def test_usage_mistakes_are_refused(
    recorder: Recorder, args: list[str], problem: str
) -> None:
    refused = await recorder(*args)
    assert refused.code == 2
    assert problem in refused.err


# -- wrapping a command -------------------------------------------------------------------------


async def test_a_wrapped_command_that_succeeds_is_recorded_with_its_log(
    recorder: Recorder, client: RegistryClient, system_id: str, tmp_path: Path
) -> None:
    script = "import sys; print('hello from the run'); print('a warning', file=sys.stderr)"
    done = await recorder("--system", system_id, "--json", "--", sys.executable, "-c", script)
    assert done.code == 0, done.err
    assert "hello from the run" in done.out  # teed to the terminal
    assert "a warning" in done.err
    answer = json.loads(done.out.splitlines()[-1])
    entry = await WorkflowLogs(client).get_entry(system_id, answer["entry_id"])
    assert entry.status == "SUCCESS"
    assert entry.title == shlex.join([sys.executable, "-c", script])  # the command line
    [log] = entry.workflow_outputs
    assert log.name == "command.log"
    text = (await read(client, log, tmp_path)).decode()
    assert "hello from the run\n" in text and "a warning\n" in text


async def test_a_wrapped_command_that_fails_is_recorded_and_its_code_kept(
    recorder: Recorder, client: RegistryClient, system_id: str, tmp_path: Path
) -> None:
    script = (
        "import pathlib, sys\n"
        "pathlib.Path('report.txt').write_text('2 of 3 checks passed')\n"
        "print('check 3 failed'); sys.exit(3)\n"
    )
    done = await recorder(
        "--system", system_id, "--title", "checks", "--json",
        "--output", "report.txt", "--output", "never-made.txt",
        "--", sys.executable, "-c", script,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.code == 3, done.err
    assert "warning: output left out" in done.err and "never-made.txt" in done.err
    answer = json.loads(done.out.splitlines()[-1])
    entry = await WorkflowLogs(client).get_entry(system_id, answer["entry_id"])
    assert (entry.title, entry.status) == ("checks", "FAILED")
    report, log = entry.workflow_outputs
    assert (report.name, log.name) == ("report.txt", "command.log")
    assert await read(client, report, tmp_path) == b"2 of 3 checks passed"
    assert await read(client, log, tmp_path) == b"check 3 failed\n"


async def test_sigterm_reaches_the_command_and_the_run_is_still_recorded(
    recorder: Recorder, client: RegistryClient, system_id: str
) -> None:
    script = (
        "import signal, sys, time\n"
        "def stop(*_): print('asked to stop', flush=True); sys.exit(7)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = await recorder.start("--system", system_id, "--", sys.executable, "-c", script)
    assert proc.stdout is not None
    assert await proc.stdout.readline() == b"ready\n"  # the command runs, its handler is set
    proc.send_signal(signal.SIGTERM)
    out, err = await proc.communicate()
    assert proc.returncode == 7, err
    assert b"asked to stop" in out
    entry_id = out.decode().split("recorded workflow log entry ")[1].split()[0]
    entry = await WorkflowLogs(client).get_entry(system_id, entry_id)
    assert entry.status == "FAILED"


# -- when the registry cannot take it -----------------------------------------------------------


async def test_a_registry_without_v3_routes_keeps_the_record_until_retry(
    via_proxy: Recorder,
    proxy: FaultProxy,
    local_registry: RunningRegistry,
    client: RegistryClient,
    system_id: str,
    tmp_path: Path,
) -> None:
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
    proxy.inject(Fault("*", r"^/api/v3/", "status", times=1000, status=404))
    kept = await via_proxy(
        "--system", system_id, "--title", "offline run", "--status", "SUCCESS",
        "--output", "a.txt", "--output", "b.txt",
        cwd=tmp_path,
    )  # fmt: skip
    assert kept.code == KEPT
    assert "does not serve external workflow logs" in kept.err
    assert "istari-agent record --retry" in kept.err
    listed = await via_proxy("--list", "--json")
    [pending] = json.loads(listed.out)
    assert (pending["title"], pending["attempts"]) == ("offline run", 1)
    assert workflow_outputs(local_registry, system_id) == 0

    proxy.clear()  # the feature is switched on
    sent = await via_proxy("--retry")
    assert sent.code == 0, sent.err
    assert "recorded workflow log entry" in sent.out
    again = await via_proxy("--retry")
    assert (again.code, again.out.strip()) == (0, "no records waiting in the outbox")
    assert proxy.hits("POST", r"/workflow_outputs$") == 2
    assert proxy.hits("POST", r"/workflow_log/entries$") == 1
    page = await WorkflowLogs(client).list_entries(system_id)
    assert [e.title for e in page.items] == ["offline run"]
    assert workflow_outputs(local_registry, system_id) == 2
    assert_no_token(via_proxy, kept, listed, sent)


async def test_outputs_made_before_a_failure_are_reused_by_the_retry(
    via_proxy: Recorder,
    proxy: FaultProxy,
    local_registry: RunningRegistry,
    client: RegistryClient,
    system_id: str,
    tmp_path: Path,
) -> None:
    (tmp_path / "a.txt").write_text("a")
    proxy.inject(Fault("POST", r"/workflow_log/entries$", "status", status=503))
    kept = await via_proxy(
        "--system", system_id, "--title", "t", "--status", "SUCCESS", "--output", "a.txt",
        "--config", "k=v", cwd=tmp_path,
    )  # fmt: skip
    assert kept.code == KEPT, kept.err
    assert workflow_outputs(local_registry, system_id) == 2  # a.txt and configuration.json
    sent = await via_proxy("--retry", "--json")
    assert sent.code == 0, sent.err
    [answer] = json.loads(sent.out)
    assert workflow_outputs(local_registry, system_id) == 2
    entry = await WorkflowLogs(client).get_entry(system_id, answer["entry_id"])
    assert [o.name for o in entry.workflow_outputs] == ["a.txt", "configuration.json"]


async def test_an_entry_whose_answer_was_lost_is_found_not_made_twice(
    via_proxy: Recorder, proxy: FaultProxy, client: RegistryClient, system_id: str, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("a")
    proxy.inject(Fault("POST", r"/workflow_log/entries$", "drop_response"))
    kept = await via_proxy(
        "--system", system_id, "--title", "lost answer", "--status", "FAILED", "--output", "a.txt",
        cwd=tmp_path,
    )  # fmt: skip
    assert kept.code == KEPT
    page = await WorkflowLogs(client).list_entries(system_id)
    [made] = page.items  # the registry made it; the recorder never heard
    sent = await via_proxy("--retry", "--json")
    assert sent.code == 0, sent.err
    assert json.loads(sent.out)[0]["entry_id"] == made.id
    assert (await WorkflowLogs(client).list_entries(system_id)).total == 1
    assert proxy.hits("POST", r"/workflow_log/entries$") == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_registry_keeps_the_record_for_the_one_given_later(
    recorder: Recorder, client: RegistryClient, system_id: str
) -> None:
    away = Recorder(f"http://127.0.0.1:{_closed_port()}", recorder.token, recorder.state)
    kept = await away("--system", system_id, "--title", "t", "--status", "SUCCESS")
    assert kept.code == KEPT
    assert "could not be reached" in kept.err
    sent = await recorder("--retry")  # nothing was created there: it may go here
    assert sent.code == 0, sent.err
    assert (await WorkflowLogs(client).list_entries(system_id)).total == 1


async def test_a_record_can_be_dropped(recorder: Recorder, system_id: str) -> None:
    away = Recorder(f"http://127.0.0.1:{_closed_port()}", recorder.token, recorder.state)
    await away("--system", system_id, "--title", "t", "--status", "SUCCESS")
    [pending] = json.loads((await recorder("--list", "--json")).out)
    dropped = await recorder("--drop", pending["id"][:8])
    assert (dropped.code, dropped.out.strip()) == (0, f"dropped record {pending['id']}")
    assert json.loads((await recorder("--list", "--json")).out) == []


async def test_a_record_being_sent_is_left_to_its_sender_and_a_crash_mid_send_is_resumed(
    via_proxy: Recorder,
    proxy: FaultProxy,
    local_registry: RunningRegistry,
    client: RegistryClient,
    system_id: str,
    tmp_path: Path,
) -> None:
    (tmp_path / "a.txt").write_text("a")
    proxy.inject(Fault("*", r"^/api/v3/", "status", status=404))
    args = ("--system", system_id, "--title", "t", "--status", "SUCCESS", "--output", "a.txt")
    assert (await via_proxy(*args, cwd=tmp_path)).code == KEPT
    # The next retry hangs on its first output until it is killed.
    proxy.inject(Fault("POST", r"/workflow_outputs$", "delay", delay_s=120))
    stuck = await via_proxy.start("--retry")
    try:
        await eventually(lambda: proxy.hits("POST", r"/workflow_outputs$") == 2)
        second = await via_proxy("--retry")
        assert second.code == KEPT
        assert "being sent by another process" in second.err
    finally:
        stuck.kill()
        await stuck.communicate()
    proxy.clear()
    third = await via_proxy("--retry")
    assert third.code == 0, third.err
    assert workflow_outputs(local_registry, system_id) == 1
    assert (await WorkflowLogs(client).list_entries(system_id)).total == 1
