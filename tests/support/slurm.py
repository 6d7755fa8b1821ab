"""A real single-node Slurm for the tests: munged, slurmctld and slurmd in one directory.

Everything is generated under the directory: a munge key and socket, `slurm.conf` with free
ports, state, spool and logs. Clients find it through `SLURM_CONF` (`env`). `start` returns
once `sinfo` shows the node idle; `stop` shuts it all down. No cgroups, no accounting
database: `scontrol show job` answers for finished jobs (MinJobAge keeps them for 10 min).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import shutil
import socket
import subprocess
from pathlib import Path

from tests.support.mosquitto import free_port

START_DEADLINE = 60.0
STOP_DEADLINE = 15.0
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "mungekey")


def missing() -> list[str]:
    """The Slurm and munge programs this machine lacks (scripts/system-packages installs them)."""
    paths = [*os.environ.get("PATH", "").split(os.pathsep), "/usr/sbin", "/sbin"]
    return [
        name
        for name in (*DAEMONS, *CLIENTS)
        if shutil.which(name, path=os.pathsep.join(paths)) is None
    ]


def _which(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        msg = f"{name} not found; run scripts/system-packages"
        raise RuntimeError(msg)
    return found


class Slurm:
    """One single-node cluster: partition `debug`, the node `NODE` with this machine's CPUs."""

    partition = "debug"

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.node = socket.gethostname().split(".")[0]
        self.conf = directory / "slurm.conf"
        self.munge_socket = directory / "munge" / "munge.sock"
        self._procs: list[subprocess.Popen[bytes]] = []  # plain processes: any event loop

    @property
    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, the agent) needs to find this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def _write(self) -> None:
        for sub in ("munge", "state", "spool", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "munge").chmod(0o711)
        key = self.dir / "munge" / "munge.key"
        subprocess.run([_which("mungekey"), "-c", "-k", str(key)], check=True, capture_output=True)
        key.chmod(0o400)
        user = getpass.getuser()
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 // 2
        d = self.dir
        self.conf.write_text(
            f"""ClusterName=istaritest
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={free_port("127.0.0.1")}
SlurmdPort={free_port("127.0.0.1")}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={d / "state"}
SlurmdSpoolDir={d / "spool"}
SlurmctldPidFile={d / "slurmctld.pid"}
SlurmdPidFile={d / "slurmd.pid"}
SlurmctldLogFile={d / "log" / "slurmctld.log"}
SlurmdLogFile={d / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
MinJobAge=600
KillWait=2
InactiveLimit=0
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} RealMemory={memory} State=UNKNOWN
PartitionName={self.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
        )

    def stop_controller(self) -> None:
        """Stop slurmctld (squeue and friends fail until `start_controller`)."""
        ctld = self._procs.pop(1)
        ctld.terminate()
        ctld.wait(timeout=STOP_DEADLINE)

    async def start_controller(self) -> None:
        """Start slurmctld again (it reloads its saved state) and wait until it answers."""
        self._spawn(_which("slurmctld"), "-D", "-f", str(self.conf))
        self._procs.insert(1, self._procs.pop())
        await self._until(self._answers, "the controller to answer")

    def _answers(self) -> bool:
        return self.command("sinfo", "-h", "-o", "%t").returncode == 0

    def _spawn(self, *argv: str) -> None:
        with (self.dir / "log" / f"{Path(argv[0]).name}.out").open("ab") as log:
            self._procs.append(
                subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env={**os.environ, **self.env},
                )
            )

    async def start(self) -> None:
        """Start munged, slurmctld and slurmd; return once the node is idle."""
        self._write()
        munge = self.dir / "munge"
        self._spawn(
            _which("munged"), "-F", "-f", f"--socket={self.munge_socket}",
            f"--key-file={munge / 'munge.key'}", f"--pid-file={munge / 'munged.pid'}",
            f"--log-file={munge / 'munged.log'}", f"--seed-file={munge / 'seed'}",
        )  # fmt: skip
        await self._until(self.munge_socket.exists, "munged")
        self._spawn(_which("slurmctld"), "-D", "-f", str(self.conf))
        self._spawn(_which("slurmd"), "-D", "-f", str(self.conf), "-N", self.node)
        await self._until(self._idle, "the node to be idle")

    def _idle(self) -> bool:
        done = subprocess.run(
            [_which("sinfo"), "-h", "-o", "%t"],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip() == "idle"

    async def _until(self, check: object, what: str) -> None:
        assert callable(check)
        try:
            async with asyncio.timeout(START_DEADLINE):
                while not await asyncio.to_thread(check):
                    if any(p.poll() is not None for p in self._procs):
                        break
                    await asyncio.sleep(0.2)  # polling: the daemons announce nothing
        except TimeoutError:
            pass
        if not await asyncio.to_thread(check):
            logs = "\n".join(p.read_text()[-1500:] for p in (self.dir / "log").glob("*"))
            msg = f"single-node Slurm did not start (waiting for {what}):\n{logs}"
            raise RuntimeError(msg)

    def command(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run a Slurm client (squeue, scontrol, ...) against this cluster."""
        return subprocess.run(
            [_which(argv[0]), *argv[1:]],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
        )

    async def stop(self) -> None:
        """Shut everything down (SIGTERM, then SIGKILL after a deadline)."""
        for proc in reversed(self._procs):
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in self._procs:
            try:
                await asyncio.to_thread(proc.wait, STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()
