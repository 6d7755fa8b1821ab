"""The agent's side of push: stay subscribed to its notices and turn them into wake-ups.

One long-lived task (`run`) keeps a connection to the broker: it subscribes to the agent's
own topic, its pools' topics, the broadcast topic and the registry's presence, announces the
agent online (retained, with a last will saying offline), and sets the dispatch loop's
wake-up for each job notice. It never decides anything: the dispatch loop lists and claims.
A broker that is down, unreachable or refusing the agent is logged once per outage and
retried with jittered backoff while the agent polls; every (re)connect wakes one catch-up poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

import aiomqtt
import structlog

from agent.protocol import push as protocol
from agent.protocol.push import BadNotice, Event, State
from agent.push.broker import RETRY_CAP, Backoff, Broker, raise_if_cancelled
from agent.wakeup import Wake, Wakeup

log = structlog.get_logger(__name__)

AUTH_RETRY_CAP = 300.0  # seconds between attempts while the broker refuses our credentials
BAD_NOTICE_LOG_EVERY = 60.0  # seconds: a flood of garbage logs one line a minute
CLOSE_DEADLINE = 2.0
PRESENCE_WAIT = 2.0  # seconds for a retained presence to arrive after subscribing


class PushListener:
    """Keeps the agent subscribed to its notices; `healthy` says whether push can be trusted."""

    def __init__(
        self, broker: Broker, client_id: str, agent_id: str, pools: Sequence[str], wakeup: Wakeup
    ) -> None:
        self.broker = broker
        self.client_id = client_id
        self.agent_id = agent_id
        self.pools = tuple(pools)
        self.wakeup = wakeup
        self._client: aiomqtt.Client | None = None
        self._closing = False
        # Told of each job.status notice (job id, status): a hint to look at that job now.
        self.on_job_status: Callable[[str, str | None], None] | None = None
        self._registry_online = False
        self._outage_logged = False
        self._bad_logged_at = -BAD_NOTICE_LOG_EVERY
        self._bad_suppressed = 0

    @property
    def healthy(self) -> bool:
        """Connected, and the registry says it publishes: polls can be rare."""
        return self._client is not None and self._registry_online

    @property
    def topics(self) -> list[str]:
        """Everything the agent subscribes to."""
        own = [protocol.agent_topic(self.agent_id), protocol.BROADCAST]
        return [*own, *map(protocol.pool_topic, self.pools), protocol.REGISTRY_PRESENCE]

    async def run(self) -> None:
        """Stay connected until cancelled; broker problems are logged and retried, never raised."""
        backoff = Backoff()
        while True:
            try:
                async with self.broker.client(self.client_id, will=self._will()) as client:
                    raise_if_cancelled()
                    await self._subscribe(client)
                    backoff.reset()
                    async for message in client.messages:
                        self._handle(str(message.topic), message.payload)
            except aiomqtt.MqttError as e:
                self._lost(e, backoff)
            finally:
                self._client = None
                self._registry_online = False
            raise_if_cancelled()  # aiomqtt's wait_for may have swallowed our cancellation
            delay = backoff.next_delay()
            log.debug("push.retry", broker=self.broker.url, delay=round(delay, 3))
            await asyncio.sleep(delay)

    async def set_pools(self, pools: Sequence[str]) -> None:
        """Listen to these pools' notices from now on (a reload changed `agent_pools`).

        A connection lost meanwhile subscribes to the new list when it comes back.
        """
        before = set(map(protocol.pool_topic, self.pools))
        self.pools = tuple(pools)
        after = set(map(protocol.pool_topic, self.pools))
        client = self._client
        if client is None or before == after:
            return
        with contextlib.suppress(aiomqtt.MqttError):
            if after - before:
                await client.subscribe([(t, protocol.QOS) for t in sorted(after - before)])
            if before - after:
                await client.unsubscribe(sorted(before - after))
        log.info("push.pools_changed", topics=len(self.topics))

    async def close(self) -> None:
        """Say offline (retained) while still connected; the will only covers crashes."""
        self._closing = True
        client = self._client
        if client is None:
            return
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(CLOSE_DEADLINE):
                await client.publish(*self._presence(State.OFFLINE), qos=protocol.QOS, retain=True)

    def _will(self) -> aiomqtt.Will:
        topic, payload = self._presence(State.OFFLINE)
        return aiomqtt.Will(topic, payload, qos=protocol.QOS, retain=True)

    def _presence(self, state: State) -> tuple[str, bytes]:
        topic = protocol.agent_presence_topic(self.agent_id)
        return topic, protocol.presence(state, agent_id=self.agent_id)

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        await client.subscribe([(t, protocol.QOS) for t in self.topics])
        raise_if_cancelled()
        # Known as connected before "online" goes out: a stop from here on says "offline"
        # after it, on the same connection, so the retained presence ends offline.
        self._client = client
        if not self._closing:
            await client.publish(*self._presence(State.ONLINE), qos=protocol.QOS, retain=True)
            raise_if_cancelled()
        event = "push.reconnected" if self._outage_logged else "push.connected"
        log.info(event, broker=self.broker.url, topics=len(self.topics))
        self._outage_logged = False
        self.wakeup.set(Wake.PUSH_CONNECTED)  # catch up on anything missed while away

    def _lost(self, error: aiomqtt.MqttError, backoff: Backoff) -> None:
        refused = _is_auth_failure(error)
        backoff.cap = AUTH_RETRY_CAP if refused else RETRY_CAP
        if self._client is not None:
            self.wakeup.set(Wake.PUSH_LOST)  # re-plan: polls are frequent again
        if self._outage_logged:
            return
        self._outage_logged = True
        if refused:
            hint = describe_failure(error) + "; the agent polls meanwhile"
            log.error("push.refused", broker=self.broker.url, error=str(error), hint=hint)
        else:
            log.warning("push.unavailable", broker=self.broker.url, error=str(error))

    def _handle(self, topic: str, payload: object) -> None:
        if not isinstance(payload, bytes):
            payload = str(payload).encode()
        try:
            notice = protocol.decode(payload)
        except BadNotice as e:
            self._bad_notice(topic, str(e))
            return
        if notice.event is Event.PRESENCE:
            if topic == protocol.REGISTRY_PRESENCE:
                self._registry_presence(notice.state)
            return
        if notice.event is Event.JOB_STATUS:
            log.debug("push.job_status", job_id=notice.job_id, status=notice.status)
            if notice.job_id and self.on_job_status is not None:
                self.on_job_status(notice.job_id, notice.status)
            return
        log.debug("push.job_available", topic=topic, job_id=notice.job_id)
        self.wakeup.set(Wake.PUSH, notice.offer)

    def _registry_presence(self, state: State | None) -> None:
        online = state is State.ONLINE
        if online != self._registry_online:
            log.info("push.registry_presence", state=state)
            self._registry_online = online
            self.wakeup.set(Wake.REGISTRY_ONLINE if online else Wake.PUSH_LOST)

    def _bad_notice(self, topic: str, reason: str) -> None:
        now = time.monotonic()
        if now - self._bad_logged_at < BAD_NOTICE_LOG_EVERY:
            self._bad_suppressed += 1
            return
        log.warning("push.bad_notice", topic=topic, reason=reason, suppressed=self._bad_suppressed)
        self._bad_logged_at, self._bad_suppressed = now, 0


async def registry_presence(
    broker: Broker, client_id: str, wait: float = PRESENCE_WAIT
) -> State | None:
    """Connect once and read the registry's retained presence (None if none comes in `wait`).

    Raises aiomqtt.MqttError when the broker cannot be reached or refuses the credentials.
    """
    async with broker.client(client_id) as client:
        await client.subscribe(protocol.REGISTRY_PRESENCE, qos=protocol.QOS)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                async for message in client.messages:
                    payload = message.payload
                    with contextlib.suppress(BadNotice):
                        if isinstance(payload, bytes):
                            return protocol.decode(payload).state
    return None


def describe_failure(error: aiomqtt.MqttError) -> str:
    """What a connection failure means for the operator, in a sentence."""
    if _is_auth_failure(error):
        return "the broker refused the agent's credentials: check mqtt_username and mqtt_password"
    return f"the broker cannot be reached ({error})"


def _is_auth_failure(error: aiomqtt.MqttError) -> bool:
    """A CONNACK refusing our credentials (MQTT 3.1.1 codes 4 and 5, or MQTT 5's wording)."""
    rc = getattr(error, "rc", None)
    return rc in (4, 5) or "authori" in str(error).lower()
