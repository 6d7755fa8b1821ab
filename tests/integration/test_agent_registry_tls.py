"""The agent against a registry served over HTTPS with a throwaway CA, requiring client certs.

With the CA bundle and a client certificate the job runs end to end (blob transfers too).
Without the CA the start fails at once, saying which setting fixes it; without the client
certificate likewise; `registry_tls_verify = false` works but says so loudly at every start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.jobs.outcome import Reason
from agent.localregistry.app import RegistrySettings
from agent.localregistry.server import running
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError
from agent.tls import client_context, server_context
from tests.support.agent_harness import AgentHarness
from tests.support.certs import Pki, make_pki
from tests.support.logwatch import watch_logs


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
async def tls_harness(pki: Pki, tmp_path: Path) -> AsyncIterator[AgentHarness]:
    tls = server_context(pki.server_cert, pki.server_key, client_ca_file=pki.ca)
    settings = RegistrySettings(data_dir=tmp_path / "registry", tls=tls)
    async with running(settings) as reg:
        assert reg.url.startswith("https://")
        ssl = client_context(pki.ca, pki.client_cert, pki.client_key)
        async with RegistryClient(reg.url, reg.token, ssl=ssl) as client:
            yield AgentHarness(reg, client, tmp_path / "agent")


async def test_with_the_ca_and_a_client_certificate_a_job_runs_end_to_end(
    tls_harness: AgentHarness, pki: Pki
) -> None:
    job = await tls_harness.submit("echo", {"label": "over tls"})
    outcomes = await tls_harness.run(
        registry_ca_file=pki.ca,
        registry_cert_file=pki.client_cert,
        registry_key_file=pki.client_key,
    )
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    assert (await tls_harness.job(job.id)).status.value == "Completed"


async def test_an_untrusted_certificate_stops_the_start_naming_the_setting(
    tls_harness: AgentHarness, pki: Pki
) -> None:
    with pytest.raises(RegistryError, match=r"not trusted .*set registry_ca_file"):
        await tls_harness.run(registry_cert_file=pki.client_cert, registry_key_file=pki.client_key)


async def test_a_missing_client_certificate_stops_the_start_naming_the_settings(
    tls_harness: AgentHarness, pki: Pki
) -> None:
    with pytest.raises(RegistryError, match="set registry_cert_file and registry_key_file"):
        await tls_harness.run(registry_ca_file=pki.ca, retry_budget=0.3)


async def test_verification_off_works_and_is_logged_loudly(
    tls_harness: AgentHarness, pki: Pki
) -> None:
    await tls_harness.submit("echo", {"label": "unverified"})
    with watch_logs() as logs:
        outcomes = await tls_harness.run(
            registry_tls_verify=False,
            registry_cert_file=pki.client_cert,
            registry_key_file=pki.client_key,
        )
    assert [o.reason for o in outcomes] == [Reason.COMPLETED]
    loud = logs.find("registry.tls_unverified")
    assert loud and loud[0]["_level"] == "error"
    assert "anyone on the network path can read the token" in loud[0]["why"]
