"""Push wake-ups end to end: a real mosquitto, the registry publishing, the agent listening.

Poll intervals are set to an hour wherever a test must show that a wake-up came by push: the
claim's logged `woken_by` is then the proof, not a timing.
"""

from __future__ import annotations

import asyncio

from structlog.typing import EventDict

from agent.protocol import push as protocol
from agent.protocol.states import JobStatus
from tests.support.agent_harness import AgentHarness, serving, wait_for_status
from tests.support.logwatch import LogWatch, watch_logs
from tests.support.mosquitto import Mosquitto
from tests.support.push import DEADLINE, PUSH_ONLY, claimed_by_push, mqtt_settings, settled


async def test_a_submit_wakes_the_idle_agent_over_mqtt(push_harness: AgentHarness) -> None:
    with watch_logs() as logs:
        async with serving(push_harness, **PUSH_ONLY):
            await settled(logs)
            assert await claimed_by_push(push_harness, logs) == "push"
            assert await claimed_by_push(push_harness, logs) == "push"


async def test_the_broker_dies_jobs_complete_by_polling_and_push_resumes_after(
    push_harness: AgentHarness, mosquitto: Mosquitto
) -> None:
    with watch_logs() as logs:
        async with serving(push_harness, **{**PUSH_ONLY, "poll_interval": 0.2}):
            await settled(logs)
            assert await claimed_by_push(push_harness, logs) == "push"

            outage = logs.mark()
            await mosquitto.stop()
            await logs.wait_for("push.unavailable", outage)
            for _ in range(2):
                assert await claimed_by_push(push_harness, logs) in {"poll", "push_lost"}
            await logs.wait_for("push.retry", outage, count=2)  # still trying, quietly

            back = logs.mark()
            await mosquitto.start()
            await logs.wait_for("push.reconnected", back)
            await settled(logs, back)
            assert await claimed_by_push(push_harness, logs) == "push"
    assert len(logs.find("push.unavailable", outage)) == 1  # logged once per outage


async def test_garbage_notices_are_ignored_and_a_stray_one_costs_one_request(
    push_harness: AgentHarness, mosquitto: Mosquitto
) -> None:
    with watch_logs() as logs:
        async with serving(push_harness, **PUSH_ONLY):
            await settled(logs)
            agent_id = str((await logs.wait_for("agent.ready"))["agent_id"])
            before = logs.mark()
            async with mosquitto.broker.client("test-publisher") as mqtt:
                topic = protocol.agent_topic(agent_id)
                for garbage in (
                    b"\xff\xfe not json",
                    b"[1, 2]",
                    b'{"v": 99, "event": "job.available"}',
                    b'{"v": 1, "event": "job.available", "pad": "' + b"x" * 5000 + b'"}',
                ):
                    await mqtt.publish(topic, garbage, qos=1)
                stray = protocol.encode(protocol.Event.JOB_AVAILABLE, job_id="not-a-job-of-ours")
                await mqtt.publish(protocol.BROADCAST, stray, qos=1)
            woken = await logs.wait_for("dispatch.woken", before, reason="push")
            idle = await logs.wait_for("dispatch.idle", logs.position(woken))
            look = logs.entries[logs.position(woken) : logs.position(idle)]
            assert await claimed_by_push(push_harness, logs) == "push"  # still listening
    bad = logs.find("push.bad_notice", before)
    assert len(bad) == 1  # the first is logged; the flood after it is counted, not logged
    assert "not JSON" in bad[0]["reason"]
    assert len(logs.find("dispatch.woken", before, reason="push")) == 2  # stray + real
    requests = [e["path"] for e in look if e["event"] == "registry.request"]
    assert requests == [f"/api/v2/agents/{agent_id}/available_jobs"]  # one look, nothing more


async def test_refused_broker_credentials_are_one_clear_error_and_polling_goes_on(
    push_harness: AgentHarness, mosquitto: Mosquitto
) -> None:
    wrong = mqtt_settings(mosquitto, mqtt_password="not-the-password")
    with watch_logs() as logs:
        async with serving(push_harness, **wrong):
            refused = await logs.wait_for("push.refused")
            assert "mqtt_password" in refused["hint"]
            assert await claimed_by_push(push_harness, logs) in {"poll", "start"}
            await logs.wait_for("push.retry", count=2)
    assert len(logs.find("push.refused")) == 1
    assert all("not-the-password" not in repr(e) for e in logs.entries)


async def test_presence_is_retained_online_while_serving_and_offline_after(
    push_harness: AgentHarness, mosquitto: Mosquitto
) -> None:
    async def presence_of(agent_id: str) -> str:
        async with mosquitto.broker.client("test-presence") as mqtt:
            await mqtt.subscribe(protocol.agent_presence_topic(agent_id), qos=1)
            async with asyncio.timeout(DEADLINE):
                message = await anext(aiter(mqtt.messages))
        assert message.retain
        assert isinstance(message.payload, bytes)
        return str(protocol.decode(message.payload).state)

    with watch_logs() as logs:
        async with serving(push_harness, **PUSH_ONLY):
            await settled(logs)
            agent_id = str((await logs.wait_for("agent.ready"))["agent_id"])
            assert await presence_of(agent_id) == "online"
    assert await presence_of(agent_id) == "offline"


def requests_between(logs: LogWatch, start: EventDict, end: EventDict) -> list[str]:
    """`METHOD path` of each registry request the agent logged between two of its events."""
    entries = logs.entries[logs.position(start) : logs.position(end)]
    return [f"{e['method']} {e['path']}" for e in entries if e["event"] == "registry.request"]


async def test_an_offered_job_is_claimed_at_once_without_listing(
    push_harness: AgentHarness, mosquitto: Mosquitto
) -> None:
    """The notice names the job's function: an idle agent serving it claims it straight away.
    A notice offering a function this agent does not serve, or a job that does not exist,
    is a plain "look again"."""
    with watch_logs() as logs:
        async with serving(push_harness, **PUSH_ONLY):
            await settled(logs)
            agent_id = str((await logs.wait_for("agent.ready"))["agent_id"])
            before = logs.mark()
            job = await push_harness.submit("echo", {"label": "offered"})
            await wait_for_status(push_harness, job.id, JobStatus.COMPLETED, DEADLINE)
            woken = await logs.wait_for("dispatch.woken", before, reason="push")
            claimed = await logs.wait_for("job.claimed", before, job_id=job.id)
            assert claimed["woken_by"] == "push"
            assert requests_between(logs, woken, claimed) == [
                f"PUT /api/v2/jobs/{job.id}/status"
            ]  # the claim itself, no listing before it
            await logs.wait_for("dispatch.idle", logs.position(claimed))

            async with mosquitto.broker.client("test-publisher") as mqtt:
                for module, function, job_id in (
                    ("@other:module", "@other:tool", job.id),  # a function not served here
                    (job.function.module_name, job.function.name, "no-such-job"),
                ):
                    mark = logs.mark()
                    offer = protocol.encode(
                        protocol.Event.JOB_AVAILABLE, job_id=job_id, module=module,
                        function=function,
                    )  # fmt: skip
                    await mqtt.publish(protocol.agent_topic(agent_id), offer, qos=1)
                    woken = await logs.wait_for("dispatch.woken", mark, reason="push")
                    idle = await logs.wait_for("dispatch.idle", logs.position(woken))
                    looked = requests_between(logs, woken, idle)
                    assert looked[-1] == f"GET /api/v2/agents/{agent_id}/available_jobs"
            assert logs.find("job.offer_refused", before, job_id="no-such-job")
            assert await claimed_by_push(push_harness, logs) == "push"  # still serving
