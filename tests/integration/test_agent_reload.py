"""Reloads on a serving daemon against the real local registry: more slots claim at once,
fewer let running jobs finish, a changed pool list is joined and left in the registry, and a
pool that cannot be found keeps the old list while the rest applies."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from agent.protocol.states import JobStatus
from agent.reload import Reloader, Source
from agent.systemd import Systemd, SystemdEnv
from tests.support.agent_harness import AgentHarness, serving, wait_for_status
from tests.support.logwatch import watch_logs
from tests.support.push import DEADLINE, PUSH_ONLY, settled


def reloader_of(harness: AgentHarness, wanted: dict[str, Any]) -> Reloader:
    """A reloader whose configuration is `harness.settings(**wanted)`, read at each reload."""
    source = Source(load=lambda: harness.settings(**wanted), log_level=lambda _: None)
    return Reloader(harness.root / "state", source)


def release(harness: AgentHarness, job_id: str) -> None:
    (harness.output_path / job_id / "tmp" / "go").touch()


async def test_more_slots_claim_at_once_and_fewer_let_running_jobs_finish(
    harness: AgentHarness,
) -> None:
    wanted: dict[str, Any] = {"max_concurrent_jobs": 1}
    reloader = reloader_of(harness, wanted)
    first, second = [await harness.submit("gate", {"code": 0}) for _ in range(2)]
    with watch_logs() as logs:
        async with serving(harness, reloader=reloader, **wanted) as outcomes:
            await wait_for_status(harness, first.id, JobStatus.RUNNING)
            assert (await harness.job(second.id)).status is JobStatus.PENDING

            wanted["max_concurrent_jobs"] = 2
            reloader.request()
            line = await logs.wait_for("config.reloaded")
            assert line["applied"] == ["max_concurrent_jobs"]
            await wait_for_status(harness, second.id, JobStatus.RUNNING)  # claimed at once
            claimed = logs.find("job.claimed", job_id=second.id)
            assert claimed[0]["woken_by"] == "reloaded"

            wanted["max_concurrent_jobs"] = 1
            mark = logs.mark()
            reloader.request()
            await logs.wait_for("config.reloaded", mark)
            third = await harness.submit("gate", {"code": 0})
            release(harness, first.id)
            await wait_for_status(harness, first.id, JobStatus.COMPLETED)
            ended = logs.mark()
            await logs.wait_for("dispatch.woken", ended, reason="job_finished")
            # One of one slot is still busy: the third waits, and nothing was cancelled.
            assert (await harness.job(third.id)).status is JobStatus.PENDING
            assert (await harness.job(second.id)).status is JobStatus.RUNNING
            release(harness, second.id)
            await wait_for_status(harness, third.id, JobStatus.RUNNING)
            release(harness, third.id)
            await wait_for_status(harness, third.id, JobStatus.COMPLETED)
    assert [o.ok for o in outcomes] == [True, True, True]


async def test_a_reloaded_pool_list_is_joined_and_left_in_the_registry(
    harness: AgentHarness,
) -> None:
    old = await harness.client.create_pool("old-pool", None)
    new = await harness.client.create_pool("new-pool", None)
    wanted: dict[str, Any] = {"agent_pools": ("old-pool",)}
    reloader = reloader_of(harness, wanted)
    with watch_logs() as logs:
        async with serving(harness, reloader=reloader, **wanted):
            agent_id = (await logs.wait_for("agent.ready"))["agent_id"]
            await logs.wait_for("pool.joined", pool_id=old.id)
            assert (await harness.client.get_agent(agent_id)).agent_pools == [old.id]

            wanted["agent_pools"] = ("new-pool",)
            reloader.request()
            line = await logs.wait_for("config.reloaded")
            assert line["applied"] == ["agent_pools"]
            assert logs.find("pool.left", pool_id=old.id)
            assert (await harness.client.get_agent(agent_id)).agent_pools == [new.id]
            stays = await harness.submit("echo", {"label": "old"}, pool_id=old.id)
            runs = await harness.submit("echo", {"label": "new"}, pool_id=new.id)
            await wait_for_status(harness, runs.id, JobStatus.COMPLETED)
            assert (await harness.job(stays.id)).status is JobStatus.PENDING

            wanted.update(agent_pools=("no-such-pool",), poll_interval=0.3)
            mark = logs.mark()
            reloader.request()
            line = await logs.wait_for("config.reloaded", mark)
            assert line["applied"] == ["poll_interval"]  # the rest still applies
            (refused,) = line["refused"]
            assert refused["setting"] == "agent_pools"
            assert "no pool has the id or name 'no-such-pool'" in refused["reason"]
            assert (await harness.client.get_agent(agent_id)).agent_pools == [new.id]


async def test_with_push_the_new_pools_notices_wake_the_agent(push_harness: AgentHarness) -> None:
    """Polls are an hour apart: a pool job claimed with `woken_by=push` came over the topic
    of a pool the agent subscribed to at the reload."""
    await push_harness.client.create_pool("first", None)
    later = await push_harness.client.create_pool("later", None)
    wanted: dict[str, Any] = {"agent_pools": ("first",), **PUSH_ONLY}
    reloader = reloader_of(push_harness, wanted)
    with watch_logs() as logs:
        async with serving(push_harness, reloader=reloader, **wanted):
            await settled(logs)
            wanted["agent_pools"] = ("later",)
            mark = logs.mark()
            reloader.request()
            await logs.wait_for("push.pools_changed", mark)
            woken = await logs.wait_for("dispatch.woken", mark, reason="reloaded")
            await logs.wait_for("dispatch.idle", logs.position(woken))
            job = await push_harness.submit("echo", {"label": "pool"}, pool_id=later.id)
            await wait_for_status(push_harness, job.id, JobStatus.COMPLETED, DEADLINE)
            claimed = await logs.wait_for("job.claimed", mark, job_id=job.id)
            assert claimed["woken_by"] == "push"


async def test_systemd_sees_reloading_then_ready(harness: AgentHarness) -> None:
    """`Type=notify`: RELOADING=1 (with the MONOTONIC_USEC `Type=notify-reload` asks for)
    while the reload runs, READY=1 with the status line after it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    with sock, tempfile.TemporaryDirectory(dir="/tmp") as short:  # sun_path: 108 bytes at most
        path = str(Path(short) / "notify")
        sock.bind(path)
        systemd = Systemd(SystemdEnv(path))
        wanted: dict[str, Any] = {"max_concurrent_jobs": 1}
        source = Source(load=lambda: harness.settings(**wanted), log_level=lambda _: None)
        reloader = Reloader(harness.root / "state", source, systemd)

        async def notices() -> AsyncIterator[dict[str, str]]:
            while True:
                data = await asyncio.get_running_loop().sock_recv(sock, 4096)
                yield dict(line.split("=", 1) for line in data.decode().splitlines())

        async with serving(harness, reloader=reloader, systemd=systemd, **wanted):
            seen = notices()
            async with asyncio.timeout(15):
                while "READY" not in await anext(seen):
                    pass  # the start's READY=1
                wanted["max_concurrent_jobs"] = 3
                reloader.request()
                reloading = await anext(seen)
                assert reloading["RELOADING"] == "1"
                assert int(reloading["MONOTONIC_USEC"]) > 0
                ready = await anext(seen)
                assert ready["READY"] == "1"
                assert ready["STATUS"] == "0 of 3 slots busy"


async def test_a_running_job_keeps_the_settings_it_started_with(harness: AgentHarness) -> None:
    """`keep_work_dirs` is read when a job ends: the job running at the reload keeps its work
    directory (it started with `always`), the next one leaves none (`never`)."""
    wanted: dict[str, Any] = {"keep_work_dirs": "always"}
    reloader = reloader_of(harness, wanted)
    running = await harness.submit("gate", {"code": 0})
    with watch_logs() as logs:
        async with serving(harness, reloader=reloader, **wanted):
            await wait_for_status(harness, running.id, JobStatus.RUNNING)
            wanted["keep_work_dirs"] = "never"
            reloader.request()
            assert (await logs.wait_for("config.reloaded"))["applied"] == ["keep_work_dirs"]
            release(harness, running.id)
            await wait_for_status(harness, running.id, JobStatus.COMPLETED)
            after = await harness.submit("echo", {"label": "after"})
            await wait_for_status(harness, after.id, JobStatus.COMPLETED)
            await logs.wait_for("job.finished", job_id=after.id)
    assert harness.workdir(running).is_dir()
    assert not harness.workdir(after).exists()
