"""Starting the agent from its settings: detect the host, load modules, announce, serve.

This is where the daemon's parts are put together once; the CLI, the demo and the tests
call `serve` with a `Settings` and a tool environment they chose.

The start goes in this order, for these reasons:
1. Signal handlers first: registering, joining pools and recovery may each wait out
   `retry_budget` on an unreachable registry, and a stop meanwhile ends the start at once.
   A reload asked for meanwhile (SIGHUP) is recorded and done once the daemon runs.
2. `_check_locally`: host OS, HTTP access, modules. What can refuse the start without the
   registry is checked before it is contacted: a listener that cannot be protected never
   gets as far as registering an agent.
3. `_register`: the agent's key before announcing (the registry gets its public half), the
   announce before the pools (joining needs the agent's id).
4. Journal, run records and the `JobContext` every job shares; recovery needs them and asks
   the registry where each job an earlier run left stands.
5. `_daemon` with push and the HTTP listener (they start in `Daemon.run`, which says how
   they stop), then READY=1: registered and recovered, so its status counts the resumed jobs.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING

import structlog

from agent import pools
from agent.agentstatus import AgentStatusReporter
from agent.announce import announce
from agent.auth import keys
from agent.auth.identity import registry_bearer
from agent.cache.shared import open_cache
from agent.config import Settings
from agent.control import PauseSwitch
from agent.crashsafe.journal import Journal
from agent.crashsafe.lock import StateLock
from agent.crashsafe.owed import OwedUpdates
from agent.daemon import Daemon, Mode
from agent.execution.local import LocalBackend
from agent.execution.slurm import SlurmBackend
from agent.holdback import short_of_room
from agent.hostos import HostOS, detect
from agent.httpaccess import Access, prepare
from agent.jobs.context import JobContext
from agent.jobs.outcome import Outcome
from agent.jobs.recovery import unfinished
from agent.metrics import Metrics
from agent.modules.live import LiveCatalog
from agent.modules.snapshot import PINNED
from agent.modules.watch import warn_shared
from agent.protocol.states import AgentStatus
from agent.push.listener import PushListener
from agent.registry.client import RegistryClient
from agent.reload import Reloader
from agent.runs.store import RECORDS, RunRecords
from agent.stopping import Stop, StoppedEarly
from agent.systemd import Systemd
from agent.wakeup import Wakeup

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from agent.health import HealthServer

log = structlog.get_logger(__name__)


async def serve(
    settings: Settings,
    tool_env: Mapping[str, str],
    mode: Mode = Mode.SERVE,
    *,
    stop: Stop | None = None,
    handle_signals: bool = False,
    systemd: Systemd | None = None,
    reloader: Reloader | None = None,
) -> list[Outcome]:
    """Run the agent until `mode` says it is done or `stop` is requested; its job outcomes.

    `reloader` reloads the configuration when asked (SIGHUP with `handle_signals`, or its
    `request`; agent/reload.py); without one made from a `Source`, a reload is answered with
    an error and changes nothing.

    Raises StateInUse when another agent runs with the same state path, HostOSError when the
    host OS is unknown, HTTPAccessError when the HTTP listener's token or hosts cannot be
    used, PoolError when a configured pool cannot be joined, and RegistryError when the
    registry cannot be used at start (unreachable for the retry budget, or the token refused).
    """
    with StateLock(settings.state_path):
        try:
            systemd = systemd or Systemd()
            reloader = reloader or Reloader(settings.state_path, systemd=systemd)
            return await _serve(
                settings, tool_env, mode, stop or Stop(), handle_signals, systemd, reloader
            )
        except StoppedEarly:
            log.info("agent.stopped_while_starting")
            return []


async def _serve(
    settings: Settings,
    tool_env: Mapping[str, str],
    mode: Mode,
    stop: Stop,
    handle_signals: bool,
    systemd: Systemd,
    reloader: Reloader,
) -> list[Outcome]:
    pause = PauseSwitch(settings.state_path)
    if handle_signals:  # first: a stop while the start waits on the registry ends it at once
        _install_signal_handlers(stop, pause)
        _install_reload_handler(reloader)
    host, access, catalog = _check_locally(settings)
    token = registry_bearer(settings)  # the PAT, or identity-service access tokens
    metrics = Metrics()
    async with RegistryClient(settings.registry_url, token, ssl=settings.registry_ssl) as client:
        client.on_request = metrics.request
        first = AgentStatus.PAUSED if pause.paused or short_of_room(settings) else AgentStatus.IDLE
        agent_key, agent_id, pool_ids = await _register(
            settings, client, catalog, host, stop, first
        )
        reporter = AgentStatusReporter(
            client, agent_id, settings.retry_budget, first, settings.status_update_retry_limit
        )
        journal = Journal(settings.state_path / "journal.sqlite3")
        records = RunRecords(settings.state_path / RECORDS)
        try:
            records.prune(settings.run_retention_days, settings.run_retention_count)
            owed = OwedUpdates(client, journal, settings.status_retry_budget)
            ctx = JobContext(
                settings=settings,
                client=client,
                catalog=catalog,
                host_os=host.name,
                agent_id=agent_id,
                backend=LocalBackend(),
                tool_env=tool_env,
                agent_status=reporter,
                owed=owed,
                journal=journal,
                metrics=metrics,
                agent_key=agent_key,
                slurm=SlurmBackend(settings.slurm_options),
                records=records,
                cache=open_cache(settings.state_path, settings.cache_max_bytes),
            )
            resume = await stop.before(unfinished(ctx))
            if not resume:  # no tool of an earlier run may still read an old pinned copy
                await asyncio.to_thread(catalog.prune)
            daemon = _daemon(ctx, stop, systemd, pool_ids, access, pause, reloader)
            systemd.ready(f"agent {agent_id}: {daemon.describe()}, {len(resume)} jobs resumed")
            return await daemon.run(mode, resume)
        finally:
            journal.close()
            records.close()


def _check_locally(settings: Settings) -> tuple[HostOS, Access | None, LiveCatalog]:
    """What the start needs from this machine alone: its OS, the HTTP access, the modules.

    Raises HostOSError or HTTPAccessError before the registry is contacted.
    """
    host = detect(settings.host_os)
    access = prepare(settings) if settings.http_address else None
    if not host.exact:
        log.info("agent.host_os_mapped", detected=host.detected, reported=host.name)
    pinned = settings.state_path / PINNED
    catalog = LiveCatalog(settings.modules_path, pinned, settings.agent_version)
    catalog.load()
    warn_shared(catalog)
    if not settings.registry_tls_verify:
        log.error(
            "registry.tls_unverified",
            url=settings.registry_url,
            why="registry_tls_verify = false: the registry's certificate is not checked, so "
            "anyone on the network path can read the token; set registry_ca_file instead",
        )
    return host, access, catalog


async def _register(
    settings: Settings,
    client: RegistryClient,
    catalog: LiveCatalog,
    host: HostOS,
    stop: Stop,
    status: AgentStatus,
) -> tuple[rsa.RSAPrivateKey, str, list[str]]:
    """Announce the agent (saying `status`) and join its pools; its key, id and pools' ids.

    Each registry step gives way to a stop (StoppedEarly).
    """
    agent_key = await asyncio.to_thread(keys.load_or_create, settings.agent_key_path)
    public = keys.public_pem(agent_key)
    announcing = announce(settings, client, catalog.current, host.name, public, status)
    agent_id = await stop.before(announcing)
    pool_ids = await stop.before(
        pools.join(client, agent_id, settings.agent_pools, settings.retry_budget)
    )
    return agent_key, agent_id, pool_ids


def _daemon(
    ctx: JobContext,
    stop: Stop,
    systemd: Systemd,
    pool_ids: list[str],
    access: Access | None,
    pause: PauseSwitch,
    reloader: Reloader | None = None,
) -> Daemon:
    """The daemon with its push listener and HTTP listener, its gauges read by the metrics."""
    settings = ctx.settings
    wakeup = Wakeup()
    push = _push_listener(settings, ctx.agent_id, pool_ids, wakeup)
    http = _health_server(settings.http_address, ctx.metrics, ctx.client, ctx.records, access)
    daemon = Daemon(
        ctx, stop, wakeup=wakeup, push=push, systemd=systemd, http=http, pause=pause,
        reloader=reloader,
    )  # fmt: skip
    ctx.metrics.watch(
        running=lambda: daemon.running,
        push_connected=lambda: push is not None and push.healthy,
        owed=lambda: len(ctx.journal.owed()),
    )
    return daemon


def _push_listener(
    settings: Settings, agent_id: str, pool_ids: list[str], wakeup: Wakeup
) -> PushListener | None:
    broker = settings.broker
    if broker is None:
        log.info("push.disabled", polling_every=settings.poll_interval)
        return None
    client_id = settings.mqtt_client_id or f"istari-agent-{agent_id}"
    return PushListener(broker, client_id, agent_id, pool_ids, wakeup)


def _install_signal_handlers(stop: Stop, pause: PauseSwitch) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.request, sig.name)
    # For upgrades: exit at once and leave running tools to the next start (docs/agent.md).
    loop.add_signal_handler(signal.SIGUSR2, stop.detach, signal.SIGUSR2.name)
    # `istari-agent pause`/`resume`: read the pause file in the state path again (agent/control.py).
    loop.add_signal_handler(signal.SIGUSR1, pause.reread)


def _install_reload_handler(reloader: Reloader) -> None:
    """SIGHUP (`istari-agent reload`, `systemctl reload`): read the configuration again."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reloader.request)


def _health_server(
    address: str | None,
    metrics: Metrics,
    client: RegistryClient,
    records: RunRecords | None,
    access: Access | None,
) -> HealthServer | None:
    """The HTTP listener, imported only when one is configured (aiohttp.web, the dashboard)."""
    if address is None or access is None:
        return None
    from agent.health import HealthServer  # here: most agents serve no HTTP

    return HealthServer(address, metrics, client, records, access=access)
