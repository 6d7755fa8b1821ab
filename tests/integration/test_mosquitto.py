"""The test mosquitto broker: password auth, QoS 1 delivery, and a stop/start on the same port."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from agent.push.broker import Broker
from tests.support.mosquitto import Mosquitto

DEADLINE = 5.0


def connect(broker: Mosquitto, password: str | None = None) -> aiomqtt.Client:
    """A client for the broker, with its credentials unless another password is given."""
    return aiomqtt.Client(
        broker.host,
        broker.port,
        username=broker.username,
        password=broker.password if password is None else password,
        timeout=DEADLINE,
    )


async def next_message(client: aiomqtt.Client) -> aiomqtt.Message:
    """The next message the client receives, within the deadline."""
    async with asyncio.timeout(DEADLINE):
        return await anext(client.messages)


async def test_subscriber_receives_qos1_publish(mosquitto: Mosquitto) -> None:
    async with connect(mosquitto) as subscriber, connect(mosquitto) as publisher:
        # subscribe() returns after the SUBACK, so the publish below cannot race it.
        await subscriber.subscribe("istari/test/#", qos=1)
        await publisher.publish("istari/test/wake", b"hello", qos=1)
        message = await next_message(subscriber)
    assert message.topic.matches("istari/test/wake")
    assert message.payload == b"hello"
    assert message.qos == 1


def test_broker_settings_round_trip_through_the_url(mosquitto: Mosquitto) -> None:
    parsed = Broker.from_url(
        mosquitto.url, username=mosquitto.username, password=mosquitto.password
    )
    assert parsed == mosquitto.broker
    assert mosquitto.password not in repr(parsed)


async def test_wrong_password_is_refused(mosquitto: Mosquitto) -> None:
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed"):
        async with connect(mosquitto, password="wrong"):
            pass


async def test_anonymous_is_refused(mosquitto: Mosquitto) -> None:
    with pytest.raises(aiomqtt.MqttError, match=r"[Nn]ot authori[sz]ed"):
        async with aiomqtt.Client(mosquitto.host, mosquitto.port, timeout=DEADLINE):
            pass


async def test_stop_ends_message_loop_and_start_reuses_port(mosquitto: Mosquitto) -> None:
    port = mosquitto.port

    async def receive_until_disconnected(client: aiomqtt.Client) -> None:
        async for _ in client.messages:
            pass

    async with connect(mosquitto) as subscriber:
        await subscriber.subscribe("istari/test/#", qos=1)
        loop = asyncio.create_task(receive_until_disconnected(subscriber))
        await mosquitto.stop()
        with pytest.raises(aiomqtt.MqttError, match="Disconnected"):
            async with asyncio.timeout(DEADLINE):
                await loop

    await mosquitto.start()
    assert mosquitto.port == port
    async with connect(mosquitto) as client:
        await client.subscribe("istari/test/#", qos=1)
        await client.publish("istari/test/again", b"back", qos=1)
        assert (await next_message(client)).payload == b"back"
