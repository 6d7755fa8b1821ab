"""Push notices from the local registry: registry events mapped to MQTT topics, one connection.

A notice only says "look again" (agent/protocol/push.py), so nothing here is load-bearing:
events that happen while the broker is unreachable are dropped, and agents catch up by
polling when they see the registry's retained presence come back online. Broker trouble is
logged once per outage and never stops the registry serving HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiomqtt
import structlog

from agent.protocol import push as protocol
from agent.protocol.push import Event, State
from agent.protocol.states import JobStatus
from agent.push.broker import Backoff, Broker, raise_if_cancelled

log = structlog.get_logger(__name__)

STOP_DEADLINE = 2.0  # seconds to say "offline" when stopping; the will covers a miss
Message = tuple[str, bytes]  # (topic, payload)


def client_identifier(data_dir: Path) -> str:
    """The MQTT client id of the registry serving `data_dir`, stable across restarts.

    A restarted registry reuses it, so the broker takes the old session over and publishes
    its will (offline) before the new connection says online, never after.
    """
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()
    return f"istari-registry-{digest[:12]}"


def _job_available(d: Mapping[str, Any]) -> list[Message]:
    """job.available on the narrowest topic whose subscribers may claim the job, naming the
    job's function so that an idle agent serving it can claim it at once."""
    if d.get("agent_id"):
        topic = protocol.agent_topic(d["agent_id"])
    elif d.get("agent_pool_id"):
        topic = protocol.pool_topic(d["agent_pool_id"])
    else:
        topic = protocol.BROADCAST
    offer = {k: d.get(k) for k in ("module", "function", "tool_version", "operating_system")}
    return [(topic, protocol.encode(Event.JOB_AVAILABLE, job_id=d.get("job_id"), **offer))]


def _job_status(d: Mapping[str, Any]) -> list[Message]:
    payload = protocol.encode(Event.JOB_STATUS, job_id=d.get("job_id"), status=d.get("status"))
    # The holder (agent_id) and the assigned agent, each once, skipping nobody.
    recipients = dict.fromkeys(a for a in (d.get("agent_id"), d.get("assigned_agent_id")) if a)
    messages = [(protocol.agent_topic(a), payload) for a in recipients]
    if d.get("status") == JobStatus.PENDING:
        again = {"job_id": d.get("job_id"), "agent_id": d.get("assigned_agent_id"),
                 "agent_pool_id": d.get("agent_pool_id")}  # fmt: skip
        messages += _job_available(again)  # back in the queue: look again (no offer)
    return messages


def _pool_restored(d: Mapping[str, Any]) -> list[Message]:
    return [(protocol.pool_topic(d["agent_pool_id"]), protocol.encode(Event.JOB_AVAILABLE))]


def _member_added(d: Mapping[str, Any]) -> list[Message]:
    return [(protocol.agent_topic(d["agent_id"]), protocol.encode(Event.JOB_AVAILABLE))]


_MAPPING: dict[str, Callable[[Mapping[str, Any]], list[Message]]] = {
    "job.available": _job_available,
    "job.status": _job_status,
    "pool.restored": _pool_restored,
    "pool.member_added": _member_added,
}


def messages_for(event: str, details: Mapping[str, Any]) -> list[Message]:
    """The MQTT messages a registry event becomes (none for events agents need not hear)."""
    mapper = _MAPPING.get(event)
    return mapper(details) if mapper is not None else []


class Notifier:
    """A `Registry` listener that publishes its events, and `run()`, which owns the broker link."""

    def __init__(self, broker: Broker, data_dir: Path) -> None:
        self.broker = broker
        self.identifier = client_identifier(data_dir)
        self._queue: asyncio.Queue[Message] = asyncio.Queue()
        self._connected = False
        self._ever_connected = False
        self._outage = False
        self._fields = {"broker": broker.url}

    def __call__(self, event: str, details: dict[str, Any]) -> None:
        """Queue the event's messages while connected; drop them otherwise."""
        if not self._connected:
            return  # agents catch up by polling once they see the registry online again
        for message in messages_for(event, details):
            self._queue.put_nowait(message)

    async def run(self) -> None:
        """Stay connected until cancelled, reconnecting with backoff; never raises for MQTT."""
        backoff = Backoff()
        while True:
            error = await self._connection(backoff)
            if not self._outage:  # once per outage; reconnect attempts are quiet
                self._outage = True
                log.warning("registry.push_unavailable", **self._fields, error=str(error))
            await asyncio.sleep(backoff.next_delay())

    async def _connection(self, backoff: Backoff) -> aiomqtt.MqttError:
        """Connect and serve until the connection fails; returns why."""
        will = aiomqtt.Will(
            protocol.REGISTRY_PRESENCE,
            protocol.presence(State.OFFLINE),
            qos=protocol.QOS,
            retain=True,
        )
        failure: aiomqtt.MqttError | None = None
        try:
            async with self.broker.client(self.identifier, will=will) as client:
                backoff.reset()
                await self._session(client)
        except* aiomqtt.MqttError as group:
            failure = _first(group)
        raise_if_cancelled()  # a failed disconnect while stopping must not swallow it
        assert failure is not None  # _session only ends by raising
        return failure

    async def _session(self, client: aiomqtt.Client) -> None:
        """Say online, publish queued messages in order, until the connection ends."""
        event = "registry.push_reconnected" if self._ever_connected else "registry.push_connected"
        log.info(event, **self._fields)
        self._ever_connected, self._outage = True, False
        # Queue from before the online message goes out, so whoever sees it online and then
        # changes something is told about that change (the drain starts after "online").
        self._connected = True
        try:
            raise_if_cancelled()  # connected just as we were stopped
            await client.publish(
                protocol.REGISTRY_PRESENCE,
                protocol.presence(State.ONLINE),
                qos=protocol.QOS,
                retain=True,
            )
            raise_if_cancelled()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._drain(client), name="registry-push-drain")
                # Nothing is subscribed: the iterator only raises, when the connection drops.
                async for _ in client.messages:
                    pass
        except asyncio.CancelledError:
            self._connected = False
            await self._say_offline(client)
            raise
        finally:
            self._connected = False
            self._queue = asyncio.Queue()  # what was not sent is dropped with the connection

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            topic, payload = await self._queue.get()
            await client.publish(topic, payload, qos=protocol.QOS)
            raise_if_cancelled()

    async def _say_offline(self, client: aiomqtt.Client) -> None:
        """Publish the retained offline presence, within a deadline (else the will says it)."""
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(STOP_DEADLINE):
                await client.publish(
                    protocol.REGISTRY_PRESENCE,
                    protocol.presence(State.OFFLINE),
                    qos=protocol.QOS,
                    retain=True,
                )


def _first(group: BaseExceptionGroup[aiomqtt.MqttError]) -> aiomqtt.MqttError:
    """The first MQTT error in a (possibly nested) group."""
    error = group.exceptions[0]
    return _first(error) if isinstance(error, BaseExceptionGroup) else error
