"""Who the agent is: the version it reports, and its id kept in the state path.

The registry is told `agent_version` = the official agent's protocol level we implement
(`REPORTED_AGENT_VERSION`, the `agent_version` setting), because manifests' ranges and the
registry's matching are written against the official agent's versions; our own release
(`agent.__version__`) shows in logs, `--version` and the User-Agent header (docs/agent.md).

`<state_path>/agent.json` holds the registry URL and the id it gave; the id is reused only
with that registry. No secret is stored here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "agent.json"
# The newest official agent release the spec saw (11.10.3); real manifests ask for >=9.0.0 or
# >=11.0.0. What we implement is that agent's protocol as SDK 13.3.4 describes it.
REPORTED_AGENT_VERSION = "11.10.3"
AGENT_VERSION_PATTERN = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$"


@dataclass(frozen=True)
class Identity:
    """Who this agent is to one registry."""

    registry_url: str
    agent_id: str


def load(state_path: Path, registry_url: str) -> Identity | None:
    """The saved identity for `registry_url`, or None (none saved, unreadable, other registry)."""
    try:
        doc = json.loads((state_path / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("registry_url") != registry_url:
        return None
    agent_id = doc.get("agent_id")
    return Identity(registry_url, agent_id) if isinstance(agent_id, str) and agent_id else None


def save(state_path: Path, identity: Identity) -> None:
    """Write the identity atomically (a crash never leaves a half-written file)."""
    state_path.mkdir(parents=True, exist_ok=True)
    path = state_path / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(
        json.dumps({"registry_url": identity.registry_url, "agent_id": identity.agent_id})
    )
    tmp.replace(path)
