"""The pure parts of dispatch: the wake-up latch, the resource check, resolving pools."""

from __future__ import annotations

import asyncio

import pytest

from agent.daemon import push_poll_delay
from agent.pools import PoolError, resolve
from agent.protocol.push import Offer
from agent.registry.models import AgentPool
from agent.resources import Sample, sample, shortage
from agent.wakeup import Wake, Wakeup


async def test_a_wake_up_keeps_its_first_reason_until_it_is_taken() -> None:
    wakeup = Wakeup()
    wakeup.set(Wake.PUSH)
    wakeup.set(Wake.JOB_FINISHED)  # coalesced into the pending wake-up
    assert await wakeup.wait(10) is Wake.PUSH
    wakeup.set(Wake.JOB_FINISHED)
    assert await wakeup.wait(10) is Wake.JOB_FINISHED


async def test_an_offer_stands_only_when_its_notice_alone_woke_the_loop() -> None:
    wakeup = Wakeup()
    offer = Offer("j-1", "@acme:cad", "@acme:mesh")
    wakeup.set(Wake.PUSH, offer)
    assert await wakeup.wait(None) is Wake.PUSH
    assert wakeup.offer == offer
    wakeup.set(Wake.PUSH, offer)
    wakeup.set(Wake.PUSH, Offer("j-2", "@acme:cad", "@acme:mesh"))  # two jobs: list them
    assert await wakeup.wait(None) is Wake.PUSH
    assert wakeup.offer is None
    wakeup.set(Wake.JOB_FINISHED)
    wakeup.set(Wake.PUSH, offer)  # not the first reason: the loop lists anyway
    assert await wakeup.wait(None) is Wake.JOB_FINISHED
    assert wakeup.offer is None
    wakeup.set(Wake.PUSH, offer)
    assert await wakeup.wait(None) is Wake.PUSH
    assert await wakeup.wait(0.01) is Wake.POLL
    assert wakeup.offer is None  # taken by the wait that woke with it, not kept


async def test_a_timer_that_runs_out_is_a_poll_and_none_means_no_timer() -> None:
    wakeup = Wakeup()
    assert await wakeup.wait(0) is Wake.POLL
    waiting = asyncio.create_task(wakeup.wait(None))
    done, _ = await asyncio.wait({waiting}, timeout=0.05)  # without a timer it must not end
    assert not done
    wakeup.set(Wake.PUSH_LOST)
    assert await waiting is Wake.PUSH_LOST


def test_shortage_names_the_limit_it_hit_and_zero_turns_a_check_off() -> None:
    tight = Sample(available_mb=500, load_per_cpu=3.0)
    assert shortage(tight, 0, 0) is None
    memory = shortage(tight, 1000, 0)
    assert memory is not None and "500 MB" in memory and "min_free_memory_mb (1000)" in memory
    load = shortage(tight, 100, 2.0)
    assert load is not None and "load 3.00 per CPU" in load
    assert shortage(Sample(available_mb=5000, load_per_cpu=0.5), 1000, 2.0) is None


def test_a_real_sample_is_plausible() -> None:
    now = sample()
    assert now.available_mb > 0
    assert now.load_per_cpu >= 0


POOLS = [
    AgentPool(id="p-1", name="gpu"),
    AgentPool(id="p-2", name="cpu"),
    AgentPool(id="p-3", name="cpu"),
]


def test_pools_resolve_by_id_or_unique_name_in_the_order_given() -> None:
    assert [p.id for p in resolve(["p-2", "gpu"], POOLS)] == ["p-2", "p-1"]
    assert resolve([], POOLS) == []


@pytest.mark.parametrize(
    ("wanted", "problem"),
    [
        ("tpu", "no pool has the id or name 'tpu'"),
        ("cpu", "'cpu' names 2 pools (p-2, p-3); give the id instead"),
    ],
)
def test_an_unknown_or_ambiguous_pool_says_what_to_write(wanted: str, problem: str) -> None:
    with pytest.raises(PoolError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        resolve([wanted], POOLS)


def test_safety_net_polls_double_from_the_first_to_the_cap_and_never_go_below_the_first() -> None:
    delays = [push_poll_delay(30, 600, quiet) for quiet in range(7)]
    assert delays == [30, 60, 120, 240, 480, 600, 600]
    assert push_poll_delay(3600, 600, 0) == 3600  # a cap below the first is no cap
    assert push_poll_delay(30, 600, 10_000) == 600  # no overflow after days idle
    per_hour_steady = 3600 / push_poll_delay(30, 600, 100)
    assert per_hour_steady == 6  # the idle cost the defaults buy: 6 requests an hour
