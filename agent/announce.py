"""Announcing the agent: who it is, what it runs, and that it is ready for work.

On start the agent reuses its saved id (or registers and saves a new one), sets its display
name, publishes its installed modules when `publish_modules` is on (off by default, as on the
platform, where people publish them; a registry that refuses one is a warning, never a failed
start), reports the module versions it serves, and says Idle
(or Paused, when a person left the agent paused: it never says Idle then).
It reports the `agent_version` setting (the protocol level, docs/agent.md) with the API
hashes it speaks, and logs the registry's compatibility verdict once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from agent import __version__, identity
from agent.config import Settings
from agent.modules.catalog import Catalog, InstalledModule
from agent.protocol import compat
from agent.protocol.states import AgentStatus
from agent.registry.client import RegistryClient
from agent.registry.errors import NotFound, RegistryError, RegistryRejected
from agent.registry.models import Agent, ModuleVersionRef, NewAgent
from agent.registry.retry import with_retries

T = TypeVar("T")
log = structlog.get_logger(__name__)

INLINE_AUTH = "inline_auth"  # the capability: credentials may be delivered sealed to our key


async def announce(
    settings: Settings,
    client: RegistryClient,
    catalog: Catalog,
    host_os: str,
    public_key: str | None = None,
    status: AgentStatus = AgentStatus.IDLE,
) -> str:
    """Register (or re-register) the agent and report its modules; returns the agent id.

    With `public_key` (PKCS#1 PEM) the agent advertises `inline_auth` and registers the key,
    so that the registry can seal job credentials to it. `status` is the first status it
    reports: Idle, or Paused when the agent starts paused.
    """

    async def retried(call: Callable[[], Awaitable[T]], what: str) -> T:
        return await with_retries(call, budget=settings.retry_budget, what=what)

    capabilities = [INLINE_AUTH] if public_key else []
    info = NewAgent(
        agent_version=settings.agent_version,
        host_os=host_os,
        api_hashes=compat.agent_header(),
        capabilities=capabilities,
    )
    agent = await retried(lambda: _existing(settings, client, info), "update agent")
    if agent is None:
        agent = await retried(lambda: client.register_agent(info), "register agent")
        identity.save(settings.state_path, identity.Identity(settings.registry_url, agent.id))
        log.info("agent.registered", agent_id=agent.id)
    agent_id = agent.id
    if public_key:
        await retried(lambda: client.set_agent_public_key(agent_id, public_key), "register key")
    if settings.display_name:
        name = settings.display_name
        await retried(lambda: client.set_agent_display_name(agent_id, name), "set name")
    for error in catalog.errors:
        log.warning("module.rejected", path=error.path, field=error.field, problem=error.problem)
    if settings.publish_modules:
        for module in catalog.modules:
            if not await _publish(client, module, settings.retry_budget):
                break
    refs = [ModuleVersionRef(module_name=m.key, module_version=m.version) for m in catalog.modules]
    await retried(lambda: client.set_agent_modules(agent_id, refs), "report modules")
    await retried(lambda: client.set_agent_status(agent_id, status), f"report {status.value}")
    _log_verdict(client.compatibility)
    log.info(
        "agent.ready",
        agent_id=agent_id,
        release=__version__,
        agent_version=settings.agent_version,
        host_os=host_os,
        modules=[f"{m.key}@{m.version}" for m in catalog.modules],
    )
    return agent_id


def _log_verdict(verdict: compat.Verdict | None) -> None:
    """The registry's word on our API versions: info when compatible, else a warning."""
    if verdict is None:
        return  # a registry that does not answer the compatibility headers
    fields = {
        "status": verdict.status,
        "registry_version": verdict.server_version,
        "incompatible": list(verdict.incompatible_tags),
        "deprecated": list(verdict.deprecated_tags),
    }
    if verdict.status in (compat.Status.COMPATIBLE, None):
        log.info("registry.compatibility", **fields)
    else:
        log.warning("registry.compatibility", **fields)


async def _existing(settings: Settings, client: RegistryClient, info: NewAgent) -> Agent | None:
    saved = identity.load(settings.state_path, settings.registry_url)
    if saved is None:
        return None
    try:
        agent = await client.update_agent(saved.agent_id, info)
    except NotFound:
        log.warning("agent.unknown_to_registry", agent_id=saved.agent_id)
        return None
    log.info("agent.resumed", agent_id=agent.id)
    return agent


# The registry does not let agents publish (a hosted one: people publish with its CLI).
_NOT_ALLOWED = frozenset({403, 405})


async def _publish(client: RegistryClient, module: InstalledModule, budget: float) -> bool:
    """Publish one module; False when the registry lets no agent publish (stop trying)."""
    try:
        await with_retries(
            lambda: client.publish_module(module.raw), budget=budget, what="publish module"
        )
    except RegistryRejected as e:
        if e.status in _NOT_ALLOWED:
            log.warning(
                "module.publish_forbidden",
                module=module.key,
                status=e.status,
                setting="publish_modules",
                hint="this registry does not take publishes from agents: publish modules with "
                "`istari-agent modules publish PATH` (or the platform's `stari client publish`) "
                "and set publish_modules = false",
            )
            return False
        log.warning("module.publish_refused", module=module.key, error=str(e))
    except RegistryError as e:
        log.warning("module.publish_refused", module=module.key, error=str(e))
    return True
