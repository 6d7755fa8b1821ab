"""The push protocol's payloads and topics, and broker URLs and backoff (pure, no broker)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.protocol import push as protocol
from agent.protocol.push import BadNotice, Event, Notice, Offer, State
from agent.push.broker import Backoff, Broker, BrokerURLError


def test_a_notice_survives_encode_and_decode() -> None:
    payload = protocol.encode(Event.JOB_STATUS, job_id="j-1", status="Claimed", extra=None)
    doc = json.loads(payload)
    assert doc["v"] == protocol.VERSION
    assert doc["at"].endswith("Z")
    assert "extra" not in doc  # None fields are dropped
    assert protocol.decode(payload) == Notice(Event.JOB_STATUS, job_id="j-1", status="Claimed")


def test_presence_round_trips_with_its_state() -> None:
    notice = protocol.decode(protocol.presence(State.OFFLINE, agent_id="a-1"))
    assert notice == Notice(Event.PRESENCE, state=State.OFFLINE)


def test_topics_live_under_the_version_root() -> None:
    assert protocol.agent_topic("a") == "istari/v1/agents/a"
    assert protocol.pool_topic("p") == "istari/v1/pools/p"
    assert protocol.agent_presence_topic("a") == "istari/v1/presence/agents/a"
    assert protocol.REGISTRY_PRESENCE == "istari/v1/presence/registry"
    assert protocol.BROADCAST == "istari/v1/jobs"


def test_long_text_fields_are_cut_and_non_text_ones_dropped() -> None:
    payload = json.dumps({"v": 1, "event": "job.available", "job_id": "x" * 500, "status": 7})
    notice = protocol.decode(payload.encode())
    assert notice.job_id == "x" * 200
    assert notice.status is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"x" * (protocol.MAX_PAYLOAD + 1), "over the 4096-byte limit"),
        (b"\xff\xfe not json", "not JSON"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"job.available"', "not a JSON object"),
        (b'{"event": "job.available"}', "unknown protocol version None"),
        (b'{"v": 2, "event": "job.available"}', "unknown protocol version 2"),
        (b'{"v": "1", "event": "job.available"}', "unknown protocol version '1'"),
        (b'{"v": 1, "event": "job.exploded"}', "unknown event 'job.exploded'"),
        (b'{"v": 1}', "unknown event None"),
        (b'{"v": 1, "event": "presence", "state": "asleep"}', "unknown state 'asleep'"),
        (b'{"v": 1, "event": "presence"}', "unknown state 'None'"),
    ],
)
def test_anything_but_a_version_1_notice_is_refused(payload: bytes, reason: str) -> None:
    with pytest.raises(BadNotice, match=reason):
        protocol.decode(payload)


def test_a_payload_at_the_limit_is_still_read() -> None:
    head = b'{"v":1,"event":"job.available","pad":"'
    payload = head + b"x" * (protocol.MAX_PAYLOAD - len(head) - 2) + b'"}'
    assert len(payload) == protocol.MAX_PAYLOAD
    assert protocol.decode(payload).event is Event.JOB_AVAILABLE


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker", Broker("broker", 1883)),
        ("mqtt://broker:1884/", Broker("broker", 1884)),
        ("mqtts://broker", Broker("broker", 8883, tls=True)),
        ("mqtts://broker:9999", Broker("broker", 9999, tls=True)),
        ("mqtt://[::1]:1883", Broker("::1", 1883)),
        ("mqtt://istari%40lab@broker", Broker("broker", 1883, username="istari@lab")),
    ],
)
def test_broker_urls_are_parsed(url: str, expected: Broker) -> None:
    assert Broker.from_url(url) == expected


def test_given_credentials_win_and_the_password_stays_out_of_sight() -> None:
    broker = Broker.from_url(
        "mqtts://someone@broker", username="agent", password="s3cret", ca_file=Path("ca.pem")
    )
    assert (broker.username, broker.password, broker.ca_file) == ("agent", "s3cret", Path("ca.pem"))
    assert "s3cret" not in repr(broker)
    assert broker.url == "mqtts://broker:8883"


def test_the_url_property_has_no_credentials() -> None:
    assert Broker("::1", 1883, username="u", password="p").url == "mqtt://[::1]:1883"
    assert Broker.from_url("mqtt://user@broker").url == "mqtt://broker:1883"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://broker", "must start with mqtt:// or mqtts://, not 'http'"),
        ("broker:1883", "must start with mqtt:// or mqtts://"),
        ("mqtt://user:pw@broker", "password in its own setting"),
        ("mqtt://broker:99999", "port is not a number from 1 to 65535"),
        ("mqtt://broker:port", "port is not a number from 1 to 65535"),
        ("mqtt://broker/topic", "with no path"),
        ("mqtt://", "with no path"),
        ("mqtt://:1883", "with no path"),
    ],
)
def test_unusable_broker_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(BrokerURLError, match=reason):
        Broker.from_url(url)


def test_a_refused_url_with_a_password_does_not_repeat_it() -> None:
    with pytest.raises(BrokerURLError) as caught:
        Broker.from_url("mqtt://user:hunter2@broker")
    assert "hunter2" not in str(caught.value)


def test_plain_mqtt_has_no_tls_context() -> None:
    assert Broker("broker", 1883).tls_context() is None
    assert Broker("broker", 8883, tls=True).tls_context() is not None


def test_backoff_delays_are_jittered_within_a_doubling_capped_ceiling() -> None:
    backoff = Backoff(first=0.5, cap=4.0)
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for ceiling in ceilings:
        delay = backoff.next_delay()
        assert ceiling / 2 <= delay <= ceiling
    assert backoff.attempts == len(ceilings)


def test_backoff_jitter_spreads_the_delays() -> None:
    delays = {Backoff(first=1.0).next_delay() for _ in range(50)}
    assert len(delays) > 1
    assert all(0.5 <= d <= 1.0 for d in delays)


def test_backoff_reset_starts_again_from_the_first_delay() -> None:
    backoff = Backoff(first=1.0, cap=30.0)
    for _ in range(6):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempts == 0
    assert 0.5 <= backoff.next_delay() <= 1.0


def test_a_job_available_notice_naming_its_function_is_an_offer() -> None:
    offer = protocol.decode(
        protocol.encode(
            Event.JOB_AVAILABLE, job_id="j-1", module="@acme:cad", function="@acme:mesh",
            tool_version="2.1", operating_system=None,
        )
    ).offer  # fmt: skip
    assert offer == Offer("j-1", "@acme:cad", "@acme:mesh", tool_version="2.1")
    for partial in ({"job_id": "j-1", "module": "@acme:cad"}, {"module": "m", "function": "f"}):
        payload = protocol.encode(Event.JOB_AVAILABLE, **partial)
        assert protocol.decode(payload).offer is None  # "look again", nothing more
    status = protocol.encode(Event.JOB_STATUS, job_id="j-1", module="m", function="f")
    assert protocol.decode(status).offer is None  # only job.available offers a job
