"""Health and metrics over HTTP, scraped from a serving agent during and after a real job.

The agent reaches the registry through a fault proxy, so `/readyz` can be seen to turn 503
while the registry answers only 503s, and back to 200 when it is back. Requests carry the
token the agent made in its state path (tests/security/test_http_listener.py: without it).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent import health
from agent.daemon import Mode
from agent.stopping import Stop
from tests.support.agent_harness import AgentHarness
from tests.support.faultproxy import Fault, FaultProxy
from tests.support.logwatch import until, watch_logs


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus exposition, or None when it is absent."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def bearer(harness: AgentHarness) -> dict[str, str]:
    """The header with the token the agent made on its start."""
    token = harness.settings().http_token_path.read_text().strip()
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def scraper(
    url: str, headers: dict[str, str]
) -> AsyncIterator[Callable[[str], Awaitable[tuple[int, str]]]]:
    async with aiohttp.ClientSession(headers=headers) as session:

        async def get(path: str) -> tuple[int, str]:
            async with session.get(url + path) as resp:
                return resp.status, await resp.text()

        yield get


async def test_metrics_during_and_after_a_job_and_readiness_through_an_outage(
    faulty: AgentHarness, proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Readiness looks back 30 s in production; a test cannot wait that long for it to lapse.
    monkeypatch.setattr(health, "READY_WINDOW", 0.5)
    job = await faulty.submit("gate", {"code": 0})
    gate = faulty.workdir(job) / "tmp"
    stop = Stop()
    with watch_logs() as logs:
        agent = asyncio.create_task(
            faulty.run(Mode.SERVE, stop=stop, http_address="127.0.0.1:0", keep_work_dirs="always")
        )
        url = (await logs.wait_for("http.listening"))["url"]
        async with scraper(url, bearer(faulty)) as get:
            await logs.wait_for("job.tool_started", job_id=job.id)
            status, during = await get("/metrics")
            assert status == 200
            assert sample(during, "istari_agent_running_jobs") == 1
            assert sample(during, "istari_agent_pickup_seconds_count") == 1
            put_status = {"endpoint": "PUT /api/v2/jobs/{id}/status", "status": "200"}
            assert (sample(during, "istari_agent_registry_requests_total", **put_status) or 0) >= 3
            assert sample(during, "istari_agent_mqtt_connected") == 0  # no broker here

            (gate / "go").touch()
            await logs.wait_for("job.finished", job_id=job.id)
            _, after = await get("/metrics")
            assert sample(after, "istari_agent_jobs_total", outcome="completed") == 1
            assert sample(after, "istari_agent_running_jobs") == 0
            assert sample(after, "istari_agent_journal_backlog") == 0
            for phase in ("Validating", "Running", "Uploading"):
                assert sample(after, "istari_agent_phase_seconds_count", phase=phase) == 1
            assert await get("/healthz") == (200, '{"status": "ok"}')
            assert (await get("/readyz"))[0] == 200

            proxy.inject(Fault("*", r".", "status", times=10**6, status=503))

            async def not_ready() -> bool:
                status, body = await get("/readyz")
                return status == 503 and "the registry has not answered" in body

            await until(not_ready)
            _, down = await get("/metrics")
            readiness = {"endpoint": "GET /api/v2/health/readiness"}
            assert (sample(down, "istari_agent_registry_errors_total", **readiness) or 0) >= 1
            proxy.clear()

            async def ready() -> bool:
                return (await get("/readyz"))[0] == 200

            await until(ready)
        stop.request("test")
        await agent


async def test_the_run_records_routes(harness: AgentHarness) -> None:
    job = await harness.submit("echo", {"label": "over http"})
    stop = Stop()
    with watch_logs() as logs:
        agent = asyncio.create_task(
            harness.run(Mode.SERVE, stop=stop, http_address="127.0.0.1:0", keep_work_dirs="never")
        )
        url = (await logs.wait_for("http.listening"))["url"]
        await logs.wait_for("job.finished", job_id=job.id)
        async with scraper(url, bearer(harness)) as get:
            status, body = await get("/runs")
            assert status == 200
            runs = json.loads(body)["items"]
            assert [r["job_id"] for r in runs] == [job.id]
            run_id = runs[0]["id"]
            status, body = await get(f"/runs/{job.id}")  # a job id finds its run too
            assert status == 200 and json.loads(body)["id"] == run_id
            assert [s["phase"] for s in json.loads(body)["steps"]] == [
                "Validating", "Running", "Uploading"
            ]  # fmt: skip
            status, body = await get(f"/runs/{run_id}/log")
            assert status == 200 and "echo: copied part.txt" in body
            status, body = await get(f"/runs/{run_id}/steps.csv")
            rows = list(csv.DictReader(io.StringIO(body)))
            assert [r["phase"] for r in rows] == ["Validating", "Running", "Uploading"]
            status, body = await get(f"/runs/{run_id}/plot")
            phases = json.loads(body)["phases"]
            assert [p["phase"] for p in phases] == [r["phase"] for r in rows]
            assert all(p["seconds"] >= 0 for p in phases)
            assert (await get("/runs?limit=0"))[0] == 422
            assert "limit must be a whole number" in (await get("/runs?limit=x"))[1]
            assert (await get("/runs/no-such-run"))[0] == 404
            async with (
                aiohttp.ClientSession(headers=bearer(harness)) as session,
                session.delete(f"{url}/runs/{run_id}") as resp,
            ):
                assert resp.status == 204
            assert (await get(f"/runs/{run_id}"))[0] == 404
        stop.request("test")
        await agent
