"""`istari-agent check`: is this agent ready to run jobs? Every finding says what to do.

It checks what the daemon needs at start (host OS, modules, writable directories, the
registry and the token) without registering or claiming anything.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent.config import Settings
from agent.hostos import HostOSError, detect
from agent.modules.catalog import scan
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError, Unauthorized


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    ok: bool
    topic: str
    detail: str


async def check(settings: Settings) -> list[Finding]:
    """Every finding, good and bad, in the order the daemon meets them."""
    findings = [_host_os(settings)]
    findings += _modules(settings)
    findings += [_writable("output_path", settings.output_path)]
    findings += [_writable("state_path", settings.state_path)]
    findings += [await _registry(settings)]
    return findings


def _host_os(settings: Settings) -> Finding:
    try:
        host = detect(settings.host_os)
    except HostOSError as e:
        return Finding(False, "host OS", str(e))
    note = "" if host.exact else f" (detected {host.detected}; set host_os to override)"
    return Finding(True, "host OS", f"reported as {host.name}{note}")


def _modules(settings: Settings) -> list[Finding]:
    catalog = scan(settings.modules_path)
    findings = [
        Finding(True, "module", f"{m.key} {m.version}: {', '.join(m.manifest.functions)}")
        for m in catalog.modules
    ]
    findings += [Finding(False, "module", f"{e} (the module is skipped)") for e in catalog.errors]
    if not catalog.modules and not catalog.errors:
        detail = f"no modules in {settings.modules_path}; install one (see examples/modules)"
        findings.append(Finding(False, "module", detail))
    return findings


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
    token = settings.registry_api_token.get_secret_value()
    try:
        async with RegistryClient(url, token) as client:
            await client.list_jobs(page=1, size=1)
    except Unauthorized:
        detail = f"{url} refused the token; set registry_api_token to a valid agent token"
        return Finding(False, "registry", detail)
    except RegistryError as e:
        return Finding(False, "registry", f"{url} cannot be used: {e}")
    return Finding(True, "registry", f"{url} is reachable and accepts the token")
