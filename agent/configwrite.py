"""Writing the official configuration file: the first-run template, and `istari-agent init`.

Both write 0600, atomically (secretfiles.write_secret). `init` changes two keys (with an
identity key: the URL and the credential file's path, and drops the token) and keeps the rest
of the file (the stari CLI's `cli:` section, sections we do not know, other agent keys);
YAML comments are not kept by a rewrite, which docs/configuration.md says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from agent.configfile import PREFIX, ConfigError, parse_yaml
from agent.secretfiles import write_secret

PLACEHOLDER_TOKEN = "<your agent token>"  # noqa: S105 - the template's placeholder, not a secret
PLACEHOLDER_URL = "https://fileservice.istari.com"

# The official agent's documented example, with its defaults (docs/configuration.md).
TEMPLATE = f"""\
# Istari Digital agent configuration, written because none was found.
# Fill in the registry URL and the agent token (Agents -> Generate Token), then start the
# agent again; or run: istari-agent init REGISTRY_URL TOKEN_FILE
default:
  {PREFIX}registry_api_url: "{PLACEHOLDER_URL}"
agent:
  {PREFIX}registry_api_token: "{PLACEHOLDER_TOKEN}"
  {PREFIX}display_name: "my istari agent"
  {PREFIX}log_level: "info"
  {PREFIX}module_configurations: {{}}
  {PREFIX}process_timeout: 600
  {PREFIX}poll_interval: 5
  {PREFIX}output_path: "/tmp/output/"
  {PREFIX}headless_mode: false
  {PREFIX}status_update_retry_limit: 5
  {PREFIX}download_retry_limit: 5
  {PREFIX}upload_retry_limit: 5
  {PREFIX}upload_pool_size: 4
  {PREFIX}private_key_path: "private_key.pem"
"""


def write_template(path: Path) -> None:
    """Write the template at `path` (0600); never over a file that is there."""
    if path.exists():
        msg = f"config error: {path} exists; not writing a template over it"
        raise ConfigError(msg)
    try:
        write_secret(path, TEMPLATE.encode())
    except OSError as e:
        msg = f"config error: cannot write a template at {path}: {e.strerror}"
        raise ConfigError(msg) from None


CREDENTIALS_NAME = "istari_digital_agent_credentials.json"  # beside the config file
_TOKEN_KEY = f"{PREFIX}registry_api_token"
_CREDENTIAL_KEYS = (f"{PREFIX}registry_api_credentials", f"{PREFIX}registry_api_credentials_file")


def load_sections(path: Path) -> dict[str, Any]:
    """The file's content (empty when it is not there) with `default:` and `agent:` mappings;
    ConfigError when it does not parse or a section is not a mapping."""
    data: dict[str, Any] = {}
    if path.exists():
        try:
            raw = path.read_bytes()
        except OSError as e:
            msg = f"config error: cannot read {path}: {e.strerror}"
            raise ConfigError(msg) from None
        data = parse_yaml(path, raw) or {}
    for section in ("default", "agent"):
        current = data.get(section)
        if current is None:
            data[section] = {}
        elif not isinstance(current, dict):
            msg = (
                f"config error: {path}: section `{section}:` must be a mapping, not a "
                f"{type(current).__name__}; fix it by hand, then run init again"
            )
            raise ConfigError(msg)
    return data


def init(path: Path, registry_url: str, token: str, credentials_file: Path | None = None) -> None:
    """Set the registry URL (`default:`) and the agent token (`agent:`) in `path`, 0600.

    With `credentials_file` (identity-service mode) the `agent:` section points at it
    instead, and loses its token and inline credentials: one way to authenticate.
    Everything else in the file stays: other sections (`cli:` included) and other keys.
    A file that does not parse, or whose sections are not mappings, is left as it is.
    """
    if credentials_file is None and not token.strip():
        msg = "config error: the token file is empty"
        raise ConfigError(msg)
    data = load_sections(path)
    data["default"][f"{PREFIX}registry_api_url"] = registry_url
    agent = data["agent"]
    if credentials_file is None:
        for key in _CREDENTIAL_KEYS:
            agent.pop(key, None)
        agent[_TOKEN_KEY] = token.strip()
    else:
        agent.pop(_TOKEN_KEY, None)
        agent.pop(_CREDENTIAL_KEYS[0], None)
        agent[_CREDENTIAL_KEYS[1]] = str(credentials_file)
    try:
        write_secret(path, yaml.safe_dump(data, sort_keys=False).encode())
    except OSError as e:
        msg = f"config error: cannot write {path}: {e.strerror}"
        raise ConfigError(msg) from None


def write_credentials(path: Path, content: bytes) -> None:
    """Write the identity credential JSON `{clientId, keyId, key}` at `path`, 0600."""
    try:
        write_secret(path, content)
    except OSError as e:
        msg = f"config error: cannot write the credentials {path}: {e.strerror}"
        raise ConfigError(msg) from None
