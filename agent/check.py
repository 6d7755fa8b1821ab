"""`istari-agent check`: is this agent ready to run jobs? Every finding says what to do.

It checks what the daemon needs at start (host OS, modules, writable directories, the
registry and the token, the registry's API compatibility verdict, the configured pools, the
MQTT broker, Slurm when tools go there) without registering, joining or claiming anything.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from agent.auth.identity import registry_bearer
from agent.config import Settings
from agent.hostos import HostOSError, detect
from agent.modules.catalog import Catalog, InstalledModule, scan
from agent.pools import PoolError, resolve
from agent.protocol import compat
from agent.protocol.manifest import Dependency
from agent.protocol.push import State
from agent.protocol.versions import RangeError, parse_range, parse_version
from agent.push.listener import describe_failure, registry_presence
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError, Unauthorized
from agent.tls import TLSError


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    ok: bool
    topic: str
    detail: str
    warning: bool = False  # ok, but worth a look (a missing runtime dependency)


async def check(settings: Settings) -> list[Finding]:
    """Every finding, good and bad, in the order the daemon meets them."""
    findings = [_host_os(settings)]
    findings += module_findings(settings)
    findings += [_writable("output_path", settings.output_path)]
    findings += [_writable("state_path", settings.state_path)]
    findings += [await _registry(settings)]
    findings += await _compatibility(settings)
    findings += [await _pools(settings)] if settings.agent_pools else []
    findings += [await _push(settings)]
    if settings.executor == "slurm" or "slurm" in settings.module_executors.values():
        findings += [await _slurm(settings)]
    return findings


def _host_os(settings: Settings) -> Finding:
    try:
        host = detect(settings.host_os)
    except HostOSError as e:
        return Finding(False, "host OS", str(e))
    note = "" if host.exact else f" (detected {host.detected}; set host_os to override)"
    return Finding(True, "host OS", f"reported as {host.name}{note}")


def module_findings(settings: Settings) -> list[Finding]:
    """The installed modules, what `check` says of each (type, internal, authors) and of each
    runtime dependency, and the manifests refused."""
    catalog = scan(settings.modules_path, settings.agent_version)
    findings = []
    for m in catalog.modules:
        findings += [Finding(True, "module", _describe(m)), *_dependencies(m, catalog)]
    findings += [Finding(False, "module", f"{e} (the module is skipped)") for e in catalog.errors]
    if not catalog.modules and not catalog.errors:
        detail = f"no modules in {settings.modules_path}; install one (see examples/modules)"
        findings.append(Finding(False, "module", detail))
    return findings


def _describe(m: InstalledModule) -> str:
    """One line: key, version, type, `internal`, authors (names only) and functions."""
    manifest = m.manifest
    notes = [manifest.module_type] + (["internal"] if manifest.internal else [])
    authors = [a.name for a in manifest.authors]
    if authors:
        notes.append("by " + ", ".join(authors[:2]) + (" et al." if len(authors) > 2 else ""))
    return f"{m.key} {m.version} ({'; '.join(notes)}): {', '.join(manifest.functions)}"


def _dependencies(m: InstalledModule, catalog: Catalog) -> list[Finding]:
    """Each runtime dependency, checked as far as is safe: an auxiliary tool is looked up on
    PATH (its `command` is never run), an Istari module in this agent's catalog with its
    version range; `auth` ones are reported. A missing one is a warning, never a failure:
    the module may not need it on every path, and only the tool run can tell."""
    findings = [_dependency(m, d, catalog) for d in m.manifest.dependencies or []]
    dev = m.manifest.dev_dependencies or []
    if dev:
        names = ", ".join(f"{d.name} {d.version}" for d in dev)
        findings.append(Finding(True, "dependency", f"{m.key}: build-time, not checked: {names}"))
    return findings


def _dependency(m: InstalledModule, d: Dependency, catalog: Catalog) -> Finding:
    what = f"{m.key} needs {d.name} {d.version} ({d.tool_type})"
    if d.tool_type == "auxiliary_tool":
        found = shutil.which(d.name)
        if found is None:
            detail = f"{what}: not found on PATH; install it for the agent's user"
            return Finding(True, "dependency", detail, warning=True)
        return Finding(True, "dependency", f"{what}: {found} (its version is not checked)")
    if d.tool_type == "istari_module":
        return _module_dependency(what, d, catalog)
    return Finding(True, "dependency", f"{what}: reported (credentials come with each job)")


def _module_dependency(what: str, d: Dependency, catalog: Catalog) -> Finding:
    installed = next((m for m in catalog.modules if m.key == d.name), None)
    if installed is None:
        detail = f"{what}: not installed here; install it under modules_path"
        return Finding(True, "dependency", detail, warning=True)
    try:
        fits = parse_range(d.version).includes(parse_version(installed.version))
    except RangeError:
        detail = f"{what}: {d.version!r} is not a version range (`istari-agent modules lint`)"
        return Finding(True, "dependency", detail, warning=True)
    if not fits:
        detail = f"{what}: {installed.version} is installed; install a version in range"
        return Finding(True, "dependency", detail, warning=True)
    return Finding(True, "dependency", f"{what}: {installed.version} is installed")


def _writable(topic: str, path: Path) -> Finding:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            pass
    except OSError as e:
        detail = f"{path} is not writable ({e.strerror}); create it for user {_user()}"
        return Finding(False, topic, detail)
    return Finding(True, topic, f"{path} is writable")


def _user() -> str:
    try:
        return os.getlogin()
    except OSError:
        return str(os.getuid())


async def _registry(settings: Settings) -> Finding:
    url = settings.registry_url
    if not settings.registry_tls_verify:
        detail = f"registry_tls_verify = false: {url}'s certificate is not checked; set a CA"
        return Finding(False, "registry", detail + " (registry_ca_file) instead")
    try:
        token = registry_bearer(settings)
        async with RegistryClient(url, token, ssl=settings.registry_ssl) as client:
            await client.list_jobs(page=1, size=1)
    except TLSError as e:
        return Finding(False, "registry", str(e))
    except Unauthorized:
        detail = f"{url} refused the token; set registry_api_token to a valid agent token"
        return Finding(False, "registry", detail)
    except RegistryError as e:
        return Finding(False, "registry", f"{url} cannot be used: {e}")
    return Finding(True, "registry", f"{url} is reachable and accepts the token")


async def _compatibility(settings: Settings) -> list[Finding]:
    """The registry's verdict on the API versions we speak, read as the SDK's
    `check_compatibility` does: from the headers of the (open) readiness endpoint."""
    client = RegistryClient(settings.registry_url, "", ssl=settings.registry_ssl)
    try:
        async with client:
            await client.readiness()
    except (RegistryError, TLSError):
        if client.compatibility is None:  # no answer: the registry finding says what to fix
            return []
    return [verdict_finding(settings.registry_url, client.compatibility)]


def verdict_finding(url: str, verdict: compat.Verdict | None) -> Finding:
    """One line for the registry's compatibility verdict; only `incompatible` fails."""
    if verdict is None:
        return Finding(True, "compatibility", f"{url} gives no API compatibility verdict")
    who = f"registry {verdict.server_version or url}"
    tags = ", ".join(verdict.incompatible_tags or verdict.deprecated_tags)
    if verdict.status == compat.Status.COMPATIBLE:
        return Finding(True, "compatibility", f"{who}: this agent's API versions are compatible")
    if verdict.status == compat.Status.INCOMPATIBLE:
        detail = f"{who} finds this agent's API versions incompatible ({tags}): upgrade the agent"
        return Finding(False, "compatibility", detail)
    if verdict.status == compat.Status.REVISION_MISMATCH:
        detail = f"{who}: a minor API difference ({tags}); newer API features may be missing"
        return Finding(True, "compatibility", detail)
    if verdict.status == compat.Status.DEPRECATION_WARNING:
        detail = f"{who}: this agent uses deprecated APIs ({tags}); upgrade istari-agent soon"
        return Finding(True, "compatibility", detail)
    return Finding(True, "compatibility", f"{who} answered {verdict.status!r} (not known here)")


async def _pools(settings: Settings) -> Finding:
    try:
        token = registry_bearer(settings)
        async with RegistryClient(
            settings.registry_url, token, ssl=settings.registry_ssl
        ) as client:
            found = resolve(settings.agent_pools, (await client.list_pools(1, 100)).items)
    except (RegistryError, PoolError, TLSError) as e:
        return Finding(False, "pools", str(e))
    return Finding(True, "pools", "will join " + ", ".join(f"{p.name} ({p.id})" for p in found))


async def _push(settings: Settings) -> Finding:
    broker = settings.broker
    polls = f"the agent polls every {settings.poll_interval:g} s"
    if broker is None:
        return Finding(True, "push", f"no mqtt_url: {polls}")
    try:
        state = await registry_presence(broker, f"istari-agent-check-{os.getpid()}")
    except aiomqtt.MqttError as e:
        return Finding(False, "push", f"{broker.url}: {describe_failure(e)}; meanwhile {polls}")
    if state is not State.ONLINE:
        detail = (
            f"{broker.url} accepts the agent, but the registry is not publishing there; {polls}"
        )
        return Finding(False, "push", detail)
    return Finding(True, "push", f"{broker.url} accepts the agent and the registry publishes there")


async def _slurm(settings: Settings) -> Finding:
    """Whether this (login) node can submit to Slurm, and to the configured partition."""
    partition = settings.slurm_partition
    argv = ["sinfo", "-h", "-o", "%P %a"] + ([f"--partition={partition}"] if partition else [])
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
    except OSError:
        return Finding(False, "slurm", "sinfo not found: install Slurm's client commands here")
    except TimeoutError:
        return Finding(False, "slurm", "sinfo did not answer within 30 s (is slurmctld up?)")
    if proc.returncode != 0:
        why = err.decode(errors="replace").strip() or f"exit code {proc.returncode}"
        return Finding(False, "slurm", f"sinfo failed: {why} (check SLURM_CONF)")
    lines = out.decode().split()
    if not lines:
        return Finding(False, "slurm", f"Slurm has no partition {partition}; set slurm_partition")
    return Finding(True, "slurm", f"Slurm answers; partitions: {' '.join(lines[::2])}")
