"""The outbox: records of external runs kept on disk until the registry has them.

`<state path>/record-outbox/<record id>/` holds `record.json` and, under `files/`, the files
`record` wrote itself (a command's log, `configuration.json`) and each output's properties
blob. Outputs the user named stay where they are: the record keeps their path and salted
sha. Directories are 0700 and files 0600; `record.json` is replaced atomically, and a
directory without one (a run cut short before it was written) is not a record. Delivering a
record removes its directory. A record being sent is locked (`flock`), so a `--retry`
running meanwhile leaves it alone.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.errors import AgentError
from agent.secretfiles import write_secret
from agent.workflowlog.model import Record

OUTBOX = "record-outbox"
RECORD_FILE = "record.json"


class OutboxError(AgentError):
    """The outbox cannot be used."""


class RecordBusy(OutboxError):
    """Another process is sending this record."""


class Outbox:
    """The records under one state path."""

    def __init__(self, state_path: Path) -> None:
        self.root = state_path / OUTBOX

    def ensure(self) -> None:
        """Create the outbox (0700) if needed; OutboxError with the reason otherwise."""
        try:
            if not self.root.parent.exists():
                self.root.parent.mkdir(parents=True, mode=0o700)
            self.root.mkdir(mode=0o700, exist_ok=True)
            self.root.chmod(0o700)
        except OSError as e:
            msg = f"cannot use the record outbox {self.root}: {e.strerror or e}"
            raise OutboxError(msg) from None

    def directory(self, record_id: str) -> Path:
        """The record's directory (created, 0700, with its `files/`)."""
        path = self.root / record_id
        path.mkdir(mode=0o700, exist_ok=True)
        (path / "files").mkdir(mode=0o700, exist_ok=True)
        return path

    def write_file(self, record_id: str, name: str, data: bytes) -> Path:
        """Write one of the record's own files (0600); returns its path."""
        path = self.directory(record_id) / "files" / name
        write_secret(path, data)
        return path

    def file_path(self, record_id: str, name: str) -> Path:
        """Where one of the record's own files goes (for writers that stream, like a log)."""
        return self.directory(record_id) / "files" / name

    def save(self, record: Record) -> None:
        """Write `record.json` atomically (0600)."""
        path = self.directory(record.id) / RECORD_FILE
        write_secret(path, record.model_dump_json(indent=2).encode("utf-8"))

    def load(self, record_id: str) -> Record:
        """One record by id."""
        path = self.root / record_id / RECORD_FILE
        try:
            return Record.model_validate_json(path.read_bytes())
        except (OSError, ValueError) as e:
            msg = f"no readable record {record_id} in {self.root}: {e}"
            raise OutboxError(msg) from None

    def pending(self) -> list[Record]:
        """Every record still in the outbox, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for d in self.root.iterdir():
            if (d / RECORD_FILE).is_file():
                found.append(self.load(d.name))
        return sorted(found, key=lambda r: (r.created, r.id))

    def find(self, prefix: str) -> Record:
        """The one record whose id starts with `prefix`."""
        matches = [r for r in self.pending() if r.id.startswith(prefix)] if prefix else []
        if len(matches) != 1:
            what = "no record" if not matches else f"{len(matches)} records"
            msg = f"{what} in the outbox with an id starting {prefix!r}"
            raise OutboxError(msg)
        return matches[0]

    def remove(self, record_id: str) -> None:
        """Forget a record: its directory and the files `record` wrote for it."""
        shutil.rmtree(self.root / record_id, ignore_errors=True)

    @contextmanager
    def claim(self, record_id: str) -> Iterator[None]:
        """Hold the record's lock for the block; RecordBusy when another process holds it.

        Load the record again inside the block: another process may have delivered (and
        removed) it between a listing and the claim.
        """
        lock = self.root / record_id / "lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:
            msg = f"record {record_id} is no longer in the outbox"
            raise OutboxError(msg) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                msg = f"record {record_id} is being sent by another process"
                raise RecordBusy(msg) from None
            yield
        finally:
            os.close(fd)
