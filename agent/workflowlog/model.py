"""What a record of an external run holds, and how its delivery moves on: pure, no I/O.

A record is one run to write to a system's workflow log: its outputs (each a file with the
salted sha it will be uploaded under) and the entry that will own them. Delivery is a walk
through `next_step`: create each output not yet created, then the entry. Each step's result
is saved before the next starts, so a retry resumes where the last attempt stopped and never
creates an output or the entry twice. `entry_sent` marks a create-entry request whose answer
may have been lost: a retry first looks for that entry before creating one.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

STATUSES = ("SUCCESS", "FAILED", "UNSPECIFIED")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Blob(Frozen):
    """A blob's address: sha384(bytes ‖ salt), with the salt and the byte count."""

    sha: str
    salt: str
    size: int


class Output(Frozen):
    """One file to create as a workflow output."""

    path: str  # absolute; in the record's own directory when `kept`
    name: str  # the file name it is recorded under
    content: Blob
    properties: Blob  # its bytes are kept in the record's directory
    mtime_ns: int  # when the content was hashed; a change means hash it again before sending
    kept: bool = False  # written by `record` itself (command log, configuration.json)
    output_id: str | None = None


class Record(Frozen):
    """One run waiting to be delivered (or delivered, until its directory is removed)."""

    id: str
    created: float  # seconds since the epoch, local clock
    registry_url: str
    system_id: str
    title: str | None = Field(default=None, max_length=255)
    status: str = "UNSPECIFIED"
    configuration_id: str | None = None
    branch_id: str | None = None
    branchless: bool = False
    outputs: tuple[Output, ...] = ()
    entry_sent: bool = False
    entry_id: str | None = None
    attempts: int = 0
    last_error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.entry_id is not None

    @property
    def started(self) -> bool:
        """Whether any part of it may exist on the registry."""
        return self.entry_sent or any(o.output_id is not None for o in self.outputs)

    def with_output(self, index: int, output_id: str) -> Record:
        """The output at `index` was created with `output_id`."""
        outputs = list(self.outputs)
        outputs[index] = outputs[index].model_copy(update={"output_id": output_id})
        return self.model_copy(update={"outputs": tuple(outputs)})

    def entry_sending(self) -> Record:
        """A create-entry request is about to be sent (its answer may be lost)."""
        if any(o.output_id is None for o in self.outputs):
            msg = "the entry is created only once every output exists"
            raise ValueError(msg)
        return self.model_copy(update={"entry_sent": True})

    def entry_refused(self) -> Record:
        """The create-entry request was refused for certain: no entry exists."""
        return self.model_copy(update={"entry_sent": False})

    def with_entry(self, entry_id: str) -> Record:
        """The entry exists: the record is delivered."""
        return self.model_copy(update={"entry_id": entry_id, "entry_sent": True})

    def failed(self, message: str) -> Record:
        """An attempt ended without delivering; what went wrong, for `--list`."""
        return self.model_copy(update={"attempts": self.attempts + 1, "last_error": message})

    def sendable_to(self, registry_url: str) -> bool:
        """Whether it may go to `registry_url`: where it started, or anywhere if not started.

        Outputs created on one registry cannot be owned by an entry on another.
        """
        return not self.started or _same_url(self.registry_url, registry_url)

    def retargeted(self, registry_url: str) -> Record:
        """The record bound to `registry_url` (only before anything was created)."""
        if not self.sendable_to(registry_url):
            msg = f"record {self.id} was partly delivered to {self.registry_url}"
            raise ValueError(msg)
        return self.model_copy(update={"registry_url": registry_url})


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


@dataclass(frozen=True)
class CreateOutput:
    index: int


@dataclass(frozen=True)
class FindEntry:
    """Look for the entry a lost answer may have created; create it if it is not there."""


@dataclass(frozen=True)
class CreateEntry:
    pass


@dataclass(frozen=True)
class Done:
    pass


Step = CreateOutput | FindEntry | CreateEntry | Done


def next_step(record: Record) -> Step:
    """What delivering `record` does next."""
    if record.delivered:
        return Done()
    for index, output in enumerate(record.outputs):
        if output.output_id is None:
            return CreateOutput(index)
    return FindEntry() if record.entry_sent else CreateEntry()


def parse_config(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`KEY=VALUE` pairs -> {KEY: VALUE}, in order; values are kept as text.

    Raises ValueError for an item without `=`, an empty key, or a key given twice.
    """
    config: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            msg = f"--config takes KEY=VALUE, got {item!r}"
            raise ValueError(msg)
        if key in config:
            msg = f"--config {key} is given twice"
            raise ValueError(msg)
        config[key] = value
    return config
