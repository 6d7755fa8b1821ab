"""Who publishes modules: people by default (as on the platform), the agent when told to.

The agent reaches the local registry through the fault proxy, which counts its publishes and
can answer one the way a hosted registry answers an agent that may not publish (403/405).
"""

from __future__ import annotations

import pytest

from agent.jobs.outcome import Reason
from tests.support.agent_harness import AgentHarness
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.logwatch import watch_logs

PUBLISH = ("POST", r"^/api/v2/modules$")


async def test_by_default_the_agent_reports_its_modules_and_publishes_none(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    await faulty.submit("echo", {"label": "fine"})  # published by a person (the harness)
    outcomes = await faulty.run()
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    assert proxy.hits(*PUBLISH) == 0
    assert proxy.hits("PUT", r"/agents/[^/]+/modules$") >= 1


async def test_with_publish_modules_the_agent_publishes_at_start(
    faulty: AgentHarness, proxy: FaultProxy
) -> None:
    await faulty.run(publish_modules=True)
    assert proxy.hits(*PUBLISH) == 1


@pytest.mark.parametrize("status", [403, 405])
async def test_a_registry_refusing_agent_publishes_is_a_warning_naming_the_setting(
    faulty: AgentHarness, proxy: FaultProxy, status: int
) -> None:
    await faulty.submit("echo", {"label": "fine"})
    refusal = proxy.inject(Fault(*PUBLISH, "status", status=status))
    with watch_logs() as logs:
        outcomes = await faulty.run(publish_modules=True)
    await proxy.wait_used(refusal, timeout=1)
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]  # the start went on
    [warning] = logs.find("module.publish_forbidden", status=status)
    assert warning["setting"] == "publish_modules"
    assert warning["_level"] == "warning"
    assert "istari-agent modules publish" in warning["hint"]
    assert proxy.hits(*PUBLISH) == 1  # not retried
