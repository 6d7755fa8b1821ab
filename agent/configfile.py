"""The agent's configuration file: where it is, reading it (YAML or TOML), and its keys' names.

The official agent's file is `istari_digital_config.yaml` with `default:`, `agent:` and `cli:`
sections and keys named `istari_digital_agent_<setting>`; ours was a flat TOML file with the
bare names. Both are read here into one flat mapping of our setting names, with the notices
(legacy keys, keys of the official agent we do not know) for the CLI to log once logging is
set up. See docs/configuration.md.
"""

from __future__ import annotations

import difflib
import os
import stat
import tomllib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.errors import AgentError
from agent.secretfiles import foreign_owner, others_may_use

PREFIX = "istari_digital_agent_"  # the official agent's keys (since 8.3 / September 2025)
LEGACY_PREFIX = "istari_agent_"  # older agents' keys (e.g. istari_agent_private_key_path)
SETTINGS_SECTIONS = ("default", "agent")  # read in this order: a key in `agent:` wins
CLI_SECTION = "cli"  # the stari CLI's: never read for settings, kept intact by `init`
FILE_NAMES = (
    "istari_digital_config.yaml",
    "istari_digital_config.yml",
    "istari-digital-config.yaml",
    "istari-digital-config.yml",
)
LEGACY_FILES = (Path("/opt/local/istari_agent/.istari_config"),)  # agents before v8.3.0
SECRET_SETTINGS = frozenset({"registry_api_token", "registry_api_credentials", "mqtt_password"})


class ConfigError(AgentError):
    """The configuration cannot be used."""


@dataclass(frozen=True)
class Notice:
    """Something about the file worth a warning (logged by the CLI as `event`)."""

    event: str
    fields: dict[str, str]


@dataclass(frozen=True)
class ConfigFile:
    """A configuration file read: our settings by name, and what to warn about."""

    path: Path
    values: dict[str, Any]
    notices: list[Notice] = field(default_factory=list)


def config_dir(home: Path, platform: str) -> Path:
    """The directory the official agent keeps its file in, for `platform` (sys.platform)."""
    if platform == "darwin":
        return home / "Library" / "Application Support" / "istari_digital"
    return home / ".config" / "istari_digital"


def official_path(home: Path, platform: str) -> Path:
    """Where the official agent writes its file (and we write the template and `init`)."""
    return config_dir(home, platform) / FILE_NAMES[0]


def discover(
    home: Path, platform: str, legacy: Iterable[Path] = LEGACY_FILES
) -> tuple[Path | None, bool]:
    """The first configuration file found where the official agent looks, and if it is legacy."""
    directory = config_dir(home, platform)
    for name in FILE_NAMES:
        if (directory / name).is_file():
            return directory / name, False
    for path in legacy:
        if path.is_file():
            return path, True
    return None, False


def read(path: Path, known: Collection[str]) -> ConfigFile:
    """Read `path` (TOML when named *.toml, else YAML), keys mapped to our `known` settings."""
    try:
        with path.open("rb") as f:  # checked and read through one descriptor: no swap between
            mode = os.fstat(f.fileno()).st_mode
            shared = others_may_use(f.fileno(), mode)
            owner = foreign_owner(f.fileno())
            raw = f.read()
    except OSError as e:
        msg = f"config error: cannot read {path}: {e.strerror}"
        raise ConfigError(msg) from None
    data = _parse(path, raw)
    values, notices = flatten(path, data, known)
    secrets = sorted(k for k in values if k in SECRET_SETTINGS)
    if secrets and owner is not None:
        msg = (
            f"config error: {path} holds {', '.join(secrets)} and belongs to another user (uid "
            f"{owner}), who could change it: it must be this user's or root's"
        )
        raise ConfigError(msg)
    if secrets and shared:
        msg = (
            f"config error: {path} holds {', '.join(secrets)} and users other than its owner "
            f"may read or change it (mode {stat.S_IMODE(mode):04o}): run `chmod 600 {path}`, "
            "or keep the secret in the environment instead"
        )
        raise ConfigError(msg)
    return ConfigFile(path, values, notices)


def _parse(path: Path, raw: bytes) -> Mapping[str, Any]:
    if path.suffix == ".toml":
        try:
            return tomllib.loads(raw.decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            msg = f"config error: {path} is not valid TOML: {e}"
            raise ConfigError(msg) from None
    data = parse_yaml(path, raw)
    return {} if data is None else data


def parse_yaml(path: Path, raw: bytes) -> dict[str, Any] | None:
    """The YAML document in `raw` (a mapping, or None when empty); ConfigError naming the line."""
    try:
        data = yaml.safe_load(raw)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" line {mark.line + 1}" if mark is not None else ""
        msg = f"config error: {path}{where} is not valid YAML: {e.problem or e.context}"
        raise ConfigError(msg) from None
    except yaml.YAMLError as e:
        msg = f"config error: {path} is not valid YAML: {e}"
        raise ConfigError(msg) from None
    if data is not None and not isinstance(data, dict):
        msg = (
            f"config error: {path} must hold a mapping (`default:` and `agent:` sections), "
            f"not a {type(data).__name__}"
        )
        raise ConfigError(msg)
    return data


def flatten(
    path: Path, data: Mapping[str, Any], known: Collection[str]
) -> tuple[dict[str, Any], list[Notice]]:
    """The settings in a file's mapping: its sections merged, names mapped; pure."""
    values: dict[str, Any] = {}
    notices: list[Notice] = []
    top = {k: v for k, v in data.items() if k not in (*SETTINGS_SECTIONS, CLI_SECTION)}
    for key in [k for k, v in top.items() if isinstance(v, dict) and _bare(k) not in known]:
        # A section of someone else's (a later official version, a site's own): kept, unread.
        del top[key]
        close = difflib.get_close_matches(str(key), SETTINGS_SECTIONS, n=1)
        fields = {"file": str(path), "section": str(key)}
        notices.append(
            Notice(
                "config.unknown_section", fields | {"did_you_mean": close[0]} if close else fields
            )
        )
    for section in SETTINGS_SECTIONS:
        if section not in data or data[section] is None:
            continue
        if not isinstance(data[section], dict):
            msg = (
                f"config error: {path}: section `{section}:` must be a mapping of "
                f"`{PREFIX}...` keys, not a {type(data[section]).__name__}"
            )
            raise ConfigError(msg)
    # Flat files (our TOML) first, then `default:`, then `agent:`: the later wins.
    for where, keys in (
        ("", top),
        *((f"{s}.", data[s]) for s in SETTINGS_SECTIONS if data.get(s)),
    ):
        for key, value in keys.items():
            name = setting_name(path, f"{where}{key}", str(key), known, notices)
            if name is not None:
                values[name] = value
    return values, notices


def _bare(key: object) -> str:
    return str(key).removeprefix(PREFIX).removeprefix(LEGACY_PREFIX)


def setting_name(
    path: Path, where: str, key: str, known: Collection[str], notices: list[Notice]
) -> str | None:
    """Our setting for a file's `key` (None: ignored, with a notice); ConfigError if unknown."""
    if key.startswith(PREFIX):
        name = key.removeprefix(PREFIX)
        if name in known:
            return name
        notices.append(Notice("config.unknown_official_key", {"file": str(path), "key": where}))
        return None
    if key.startswith(LEGACY_PREFIX):
        name = key.removeprefix(LEGACY_PREFIX)
        new = f"{PREFIX}{name}"
        event = "config.legacy_key" if name in known else "config.unknown_official_key"
        notices.append(Notice(event, {"file": str(path), "key": where, "new_key": new}))
        return name if name in known else None
    if key in known:
        return key
    choices = [*known, *(PREFIX + k for k in known), *SETTINGS_SECTIONS, CLI_SECTION]
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    hint = f"did you mean `{close[0]}`? " if close else ""
    msg = (
        f"config error: {where}: unknown setting in {path} ({hint}check the spelling against "
        "docs/configuration.md or config.example.toml)"
    )
    raise ConfigError(msg)
