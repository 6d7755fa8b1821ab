"""The push protocol, version 1: topic names and JSON payloads, encoded and decoded (no I/O).

A notice says "look again": the agent answers one by listing its available jobs. A
`job.available` notice that names its job's function (module, function, and any tool version
and OS the job asks for) is an offer: an idle agent that serves that function claims the job
at once, without the listing (the registry still decides who wins, and checks the claimer's
assignment). A lost, repeated, forged or stale notice costs at most two requests.
docs/push.md describes the topics and payloads for people writing their own publishers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from agent import jsontext

VERSION = 1
ROOT = f"istari/v{VERSION}"
MAX_PAYLOAD = 4096  # bytes; anything larger is not a notice
QOS = 1

REGISTRY_PRESENCE = f"{ROOT}/presence/registry"
BROADCAST = f"{ROOT}/jobs"  # jobs any agent may take (neither agent nor pool assigned)


def agent_topic(agent_id: str) -> str:
    """Notices for one agent: jobs assigned to it, status changes of jobs it holds."""
    return f"{ROOT}/agents/{agent_id}"


def pool_topic(pool_id: str) -> str:
    """Notices for the members of one agent pool: jobs assigned to the pool."""
    return f"{ROOT}/pools/{pool_id}"


def agent_presence_topic(agent_id: str) -> str:
    """Where an agent's retained online/offline message lives."""
    return f"{ROOT}/presence/agents/{agent_id}"


class Event(StrEnum):
    """What a notice is about."""

    JOB_AVAILABLE = "job.available"  # a job may now be claimable by the recipients
    JOB_STATUS = "job.status"  # a job the recipient holds or is assigned changed status
    PRESENCE = "presence"  # an agent or the registry came online or went offline


class State(StrEnum):
    """A presence state."""

    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Offer:
    """The job a `job.available` notice names, and the function it runs."""

    job_id: str
    module: str
    function: str
    tool_version: str | None = None
    operating_system: str | None = None


@dataclass(frozen=True)
class Notice:
    """One decoded message: its event, and what the agent may act on."""

    event: Event
    job_id: str | None = None
    status: str | None = None
    state: State | None = None
    offer: Offer | None = None  # a job.available naming its job's function


class BadNotice(ValueError):
    """A payload that is not a version-1 notice; the reason says what is wrong with it."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(event: Event, **fields: str | None) -> bytes:
    """A version-1 payload: `{"v": 1, "event": ..., "at": ..., **fields}` (None fields dropped)."""
    doc: dict[str, Any] = {"v": VERSION, "event": event.value, "at": _now()}
    doc.update({k: v for k, v in fields.items() if v is not None})
    return json.dumps(doc, separators=(",", ":")).encode()


def presence(state: State, **fields: str | None) -> bytes:
    """A presence payload (`agent_id` for an agent, nothing more for the registry)."""
    return encode(Event.PRESENCE, state=state.value, **fields)


def decode(payload: bytes) -> Notice:
    """The notice in `payload`; BadNotice when it is oversized, not JSON, or not version 1."""
    if len(payload) > MAX_PAYLOAD:
        msg = f"payload of {len(payload)} bytes is over the {MAX_PAYLOAD}-byte limit"
        raise BadNotice(msg)
    try:
        doc = jsontext.loads(payload)
    except ValueError:  # not UTF-8, not JSON, or nested too deep
        msg = "payload is not JSON"
        raise BadNotice(msg) from None
    if not isinstance(doc, dict):
        msg = "payload is not a JSON object"
        raise BadNotice(msg)
    if doc.get("v") != VERSION:
        msg = f"unknown protocol version {doc.get('v')!r} (this agent speaks {VERSION})"
        raise BadNotice(msg)
    try:
        event = Event(str(doc.get("event")))
    except ValueError:
        msg = f"unknown event {doc.get('event')!r}"
        raise BadNotice(msg) from None
    state = str(doc.get("state"))
    if event is Event.PRESENCE and state not in set(State):
        msg = f"presence with unknown state {state!r}"
        raise BadNotice(msg)
    job_id = _text(doc.get("job_id"))
    return Notice(
        event=event,
        job_id=job_id,
        status=_text(doc.get("status")),
        state=State(state) if event is Event.PRESENCE else None,
        offer=_offer(doc, job_id) if event is Event.JOB_AVAILABLE else None,
    )


def _offer(doc: dict[str, Any], job_id: str | None) -> Offer | None:
    """The offer in a job.available notice: its job id, module and function, all present."""
    module, function = _text(doc.get("module")), _text(doc.get("function"))
    if not (job_id and module and function):
        return None
    return Offer(
        job_id, module, function, _text(doc.get("tool_version")),
        _text(doc.get("operating_system")),
    )  # fmt: skip


def _text(value: object) -> str | None:
    return value[:200] if isinstance(value, str) else None
