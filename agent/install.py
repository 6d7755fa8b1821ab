"""`istari-agent install-service`: the systemd unit, the service user and a config skeleton.

The unit files live in the repository's `systemd/` (packaged into the wheel as
`agent/systemd_units/`). `plan` is pure: it decides every file to write (the unit with this
installation's ExecStart, the sysusers entry, a 0600 config skeleton that is never
overwritten) and the commands left to the operator; `write` carries the plan out under a
root directory (`/`, or a scratch directory in tests).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

UNIT = "istari-agent.service"
USER_UNIT = "istari-agent-user.service"
SYSUSERS = "istari-agent.sysusers"
_HOMES = (Path("/home"), Path("/root"))


class InstallError(Exception):
    """The service cannot be installed as asked."""


def units_dir() -> Path:
    """Where the unit files are: packaged beside the code, or the repository's `systemd/`."""
    here = Path(__file__).parent
    for candidate in (here / "systemd_units", here.parent / "systemd"):
        if (candidate / UNIT).is_file():
            return candidate
    msg = f"the systemd unit files are missing (looked in {here / 'systemd_units'})"
    raise InstallError(msg)


@dataclass(frozen=True)
class File:
    path: Path  # absolute, as on the target machine
    text: str
    mode: int
    keep_existing: bool = False  # a config the operator may have edited


@dataclass(frozen=True)
class Plan:
    files: list[File]
    notes: list[str]  # said to the operator before the next steps
    next_steps: list[str]  # commands to run


def _exec_start(unit: str, executable: Path, config: str) -> str:
    line = f"ExecStart={executable} run --config {config}"
    return re.sub(r"^ExecStart=.*$", line, unit, count=1, flags=re.MULTILINE)


def _config(url: str | None, token: str | None, paths: dict[str, Path]) -> str:
    lines = [
        "# The agent's service config, written by `istari-agent install-service`.",
        "# config.example.toml documents every key. This file holds the registry token: 0600.",
        f'registry_api_url = "{url or "https://registry.example.com"}"',
        f'registry_api_token = "{token or "replace-me"}"',
        *(f'{key} = "{path}"' for key, path in paths.items()),
        "drain_timeout = 3600  # below the unit's TimeoutStopSec (3700)",
    ]
    return "\n".join(lines) + "\n"


def plan(
    *,
    user: bool,
    executable: Path,
    interpreter: Path,
    home: Path,
    url: str | None = None,
    token: str | None = None,
) -> Plan:
    """Everything install-service writes and says, for a system or a user service (pure)."""
    source = units_dir()
    notes: list[str] = []
    if user:
        config = home / ".config" / "istari-agent" / "agent.toml"
        unit_path = home / ".config" / "systemd" / "user" / "istari-agent.service"
        unit = _exec_start((source / USER_UNIT).read_text(), executable, str(config))
        paths = {
            "state_path": home / ".local" / "state" / "istari-agent",
            "output_path": home / ".cache" / "istari-agent" / "work",
            "modules_path": home / ".local" / "state" / "istari-agent" / "modules",
        }
        files = [
            File(unit_path, unit, 0o644),
            File(config, _config(url, token, paths), 0o600, True),
        ]
        steps = ["systemctl --user daemon-reload", "systemctl --user enable --now istari-agent"]
        return Plan(files, notes, steps)
    config = Path("/etc/istari-agent/agent.toml")
    unit = _exec_start((source / UNIT).read_text(), executable, "%d/agent.toml")
    if any(p.is_relative_to(h) for p in (executable, interpreter) for h in _HOMES):
        unit = unit.replace("ProtectHome=yes", "ProtectHome=read-only")
        notes.append(
            f"{executable} (or its Python, {interpreter}) lies under /home or /root, so the "
            "unit can only make homes read-only; install under /opt for ProtectHome=yes"
        )
    paths = {
        "state_path": Path("/var/lib/istari-agent"),
        "output_path": Path("/var/cache/istari-agent/work"),
        "modules_path": Path("/var/lib/istari-agent/modules"),
    }
    files = [
        File(Path("/etc/systemd/system/istari-agent.service"), unit, 0o644),
        File(Path("/etc/sysusers.d/istari-agent.conf"), (source / SYSUSERS).read_text(), 0o644),
        File(config, _config(url, token, paths), 0o600, keep_existing=True),
    ]
    steps = ["systemd-sysusers", "systemctl daemon-reload", "systemctl enable --now istari-agent"]
    return Plan(files, notes, steps)


def write(p: Plan, root: Path) -> list[Path]:
    """Write the plan's files under `root`; the paths written (an existing config is kept)."""
    written = []
    for f in p.files:
        target = root / f.path.relative_to("/")
        if f.keep_existing and target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if f.mode == 0o600 else 0o755)
        tmp = target.with_name(f".{target.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, f.mode)  # 0600 from the start
        with os.fdopen(fd, "w") as out:
            out.write(f.text)
        tmp.replace(target)
        written.append(target)
    return written


def activate(steps: list[str]) -> list[str]:
    """Run the steps that only reload what was written; the rest (starting it) are returned."""
    left = []
    for step in steps:
        argv = step.split()
        if "enable" in argv or shutil.which(argv[0]) is None:
            left.append(step)
            continue
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            left.append(step)
    return left
