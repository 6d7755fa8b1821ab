"""Joining agent pools: resolve the configured ids or names, add the agent where it is missing.

The configured pools are joined at start (the registry keeps the membership); pools the
agent was added to elsewhere (the web UI) are kept, and all of them are listened to. A name
that matches no pool, or several, stops the start with a message saying what to write instead.
A reload that changes `agent_pools` (agent/reload.py) joins the pools added to the setting and
leaves the ones removed from it (`rejoin`): what the registry offers the agent follows the
setting from the next look on. A pool named only by the old setting that no longer resolves
(renamed, say) is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import structlog

from agent.errors import AgentError
from agent.registry.client import RegistryClient
from agent.registry.errors import NotFound
from agent.registry.models import AgentPool
from agent.registry.retry import with_retries

log = structlog.get_logger(__name__)

PAGE = 100


class PoolError(AgentError):
    """A configured agent pool cannot be joined."""


def resolve(wanted: Sequence[str], pools: Sequence[AgentPool]) -> list[AgentPool]:
    """The pools `wanted` names, by id or by name (pure); PoolError for unknown or ambiguous."""
    by_id = {p.id: p for p in pools}
    found: list[AgentPool] = []
    for key in wanted:
        named = [p for p in pools if p.name == key]
        if key in by_id:
            found.append(by_id[key])
        elif len(named) == 1:
            found.append(named[0])
        elif named:
            ids = ", ".join(p.id for p in named)
            msg = f"agent_pools: {key!r} names {len(named)} pools ({ids}); give the id instead"
            raise PoolError(msg)
        else:
            msg = (
                f"agent_pools: no pool has the id or name {key!r}; create it "
                "(POST /api/v2/agent_pools) or fix the setting"
            )
            raise PoolError(msg)
    return found


async def join(
    client: RegistryClient, agent_id: str, wanted: Sequence[str], budget: float
) -> list[str]:
    """Join the `wanted` pools; the ids of every pool the agent is now a member of."""
    agent = await with_retries(lambda: client.get_agent(agent_id), budget=budget, what="read agent")
    member_of = list(agent.agent_pools)
    if not wanted:
        return member_of
    for pool in resolve(wanted, await _all_pools(client, budget)):
        if (pool.archive_status or "active").lower() != "active":
            log.warning("pool.archived", pool_id=pool.id, name=pool.name)
        if pool.id not in member_of:
            await with_retries(
                partial(client.add_pool_agent, pool.id, agent_id), budget=budget, what="join pool"
            )
            member_of.append(pool.id)
            log.info("pool.joined", pool_id=pool.id, name=pool.name)
    return member_of


async def rejoin(
    client: RegistryClient,
    agent_id: str,
    old: Sequence[str],
    new: Sequence[str],
    budget: float,
) -> list[str]:
    """Join the pools `new` names, leave those only `old` named; the member pools' ids.

    PoolError (nothing changed) when a pool of `new` cannot be found; each registry call is
    retried for `budget` seconds.
    """
    found = await _all_pools(client, budget)
    wanted = {p.id for p in resolve(new, found)}  # first: a bad name changes nothing
    dropped = [p for p in _resolvable(old, found) if p.id not in wanted]
    for pool in dropped:
        try:
            await with_retries(
                partial(client.remove_pool_agent, pool.id, agent_id),
                budget=budget,
                what="leave pool",
            )
        except NotFound:
            continue  # not a member (removed elsewhere): nothing to leave
        log.info("pool.left", pool_id=pool.id, name=pool.name)
    return await join(client, agent_id, new, budget)


def _resolvable(keys: Sequence[str], pools: Sequence[AgentPool]) -> list[AgentPool]:
    """The pools among `keys` that still resolve (pure; the others are skipped)."""
    out: list[AgentPool] = []
    for key in keys:
        try:
            out += resolve([key], pools)
        except PoolError:
            continue
    return out


async def _all_pools(client: RegistryClient, budget: float) -> list[AgentPool]:
    pools: list[AgentPool] = []
    page_no = 1
    while True:
        page = await with_retries(
            partial(client.list_pools, page_no, PAGE), budget=budget, what="list pools"
        )
        pools.extend(page.items)
        if len(page.items) < PAGE:
            return pools
        page_no += 1
