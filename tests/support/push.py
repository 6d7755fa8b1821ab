"""Push in tests: agent settings for a broker, and waits that prove a claim came by push.

Poll intervals are set to an hour (`PUSH_ONLY`) wherever a test must show that a wake-up came
by push: the claim's logged `woken_by` is then the proof, not a timing.
"""

from __future__ import annotations

from typing import Any

from agent.protocol.states import JobStatus
from tests.support.agent_harness import AgentHarness, wait_for_status
from tests.support.logwatch import LogWatch
from tests.support.mosquitto import Mosquitto

HOUR = 3600.0
PUSH_ONLY = {"poll_interval": HOUR, "push_poll_interval": HOUR, "push_poll_max_interval": HOUR}
DEADLINE = 15.0


def mqtt_settings(broker: Mosquitto, **more: Any) -> dict[str, Any]:
    """The agent settings that point it at `broker`."""
    return {
        "mqtt_url": broker.url,
        "mqtt_username": broker.username,
        "mqtt_password": broker.password,
        **more,
    }


async def settled(logs: LogWatch, since: int = 0) -> None:
    """Wait until the agent sees the registry online and has gone idle after catching up.

    The catch-up wakes are all set before the presence is logged; the first look after it
    consumes them, so once that look is over only a new notice (or a timer) can wake it.
    """
    presence = await logs.wait_for("push.registry_presence", since, state="online")
    woken = await logs.wait_for("dispatch.woken", logs.position(presence))
    await logs.wait_for("dispatch.idle", logs.position(woken))


async def claimed_by_push(harness: AgentHarness, logs: LogWatch) -> str:
    """Submit an echo job, wait for it to complete; how the agent came to claim it."""
    job = await harness.submit("echo", {"label": "pushed"})
    await wait_for_status(harness, job.id, JobStatus.COMPLETED, DEADLINE)
    claimed = await logs.wait_for("job.claimed", job_id=job.id)
    return str(claimed["woken_by"])
