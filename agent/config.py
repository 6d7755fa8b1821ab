"""The agent's settings: one frozen object, built once by the CLI (file, environment, flags).

Precedence, lowest first: defaults, the configuration file (the official YAML with `default:`
then `agent:` sections, or our flat TOML; configfile.py reads both), environment variables with
the official agent's names (`ISTARI_DIGITAL_AGENT_<KEY>`), then command-line flags. Nothing
else in the package reads the environment; tests build `Settings` directly.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from agent.addresses import is_loopback, parse_address
from agent.configfile import ConfigError as ConfigError  # raised here, caught by the CLI
from agent.configfile import ConfigFile, Notice, read
from agent.configwrite import PLACEHOLDER_TOKEN
from agent.execution.slurm import SlurmOptions
from agent.identity import AGENT_VERSION_PATTERN, REPORTED_AGENT_VERSION
from agent.push.broker import Broker, BrokerURLError
from agent.tls import client_context

ENV_PREFIX = "ISTARI_DIGITAL_AGENT_"
DEFAULT_MODULES_PATH = Path("/opt/local/istari_agent/istari_modules")
DEFAULT_STATE_PATH = Path("/var/lib/istari-agent")


class KeepWorkDirs(StrEnum):
    """Which job work directories stay on disk after the job ends."""

    NEVER = "never"
    FAILED = "failed"
    ALWAYS = "always"


class Settings(BaseSettings):
    """Everything the agent daemon needs to know, validated at start."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="forbid",
        frozen=True,
        env_parse_none_str="",
    )

    # The registry (official keys).
    registry_api_url: AnyHttpUrl
    # Identity-service mode, instead of the token (ours; the SDK's names are in docs/agent.md):
    # the credential JSON {clientId, keyId, key}, inline as base64 or in an owner-only file, and
    # where the identity service is (default: the registry's /identity prefix). These come
    # before the token so that its check sees them.
    registry_api_credentials: SecretStr | None = None
    registry_api_credentials_file: Path | None = None
    registry_identity_url: AnyHttpUrl | None = None
    registry_api_token: Annotated[SecretStr | None, Field(validate_default=True)] = None
    display_name: str | None = Field(default=None, min_length=1, max_length=255)
    log_level: str = Field(default="info", pattern="^(debug|info|warning|error)$")

    # Work (official keys). Times are seconds.
    poll_interval: float = Field(default=5.0, gt=0, le=3600)
    process_timeout: float = Field(default=600.0, gt=0)
    output_path: Path = Path("/tmp/output")  # noqa: S108 - the official agent's default
    module_configurations: dict[str, dict[str, Any]] = Field(default_factory=dict)

    # Ours.
    # The agent version reported to the registry and matched against manifests' ranges: the
    # official agent's protocol level we implement (docs/agent.md), not our release.
    agent_version: str = Field(default=REPORTED_AGENT_VERSION, pattern=AGENT_VERSION_PATTERN)
    modules_path: Path = DEFAULT_MODULES_PATH
    state_path: Path = DEFAULT_STATE_PATH
    host_os: str | None = Field(default=None, min_length=1)
    kill_grace: float = Field(default=10.0, ge=0, le=600)
    drain_timeout: float | None = Field(default=None, gt=0)  # None: a drain waits for the jobs
    cancel_check_interval: float = Field(default=10.0, gt=0)  # push makes it immediate
    keep_work_dirs: KeepWorkDirs = KeepWorkDirs.FAILED
    # Ours (the official agent has none): publish installed manifests at start. Off, as on the
    # platform, where people publish with `stari client publish` (`istari-agent modules publish`).
    publish_modules: bool = False
    # Ours: follow modules_path while running (docs/modules.md, "Modules while the agent runs").
    watch_modules: bool = True
    # Ours: run a job whose function was published with another module version than the one
    # installed (a warning, `job.module_version_differs`); by default such a job is refused.
    allow_module_version_mismatch: bool = False
    retry_budget: float = Field(default=60.0, gt=0)  # per registry call during a job
    status_retry_budget: float = Field(default=300.0, gt=0)  # for the final status report
    # Official keys: attempts after the first, next to the time budgets above (whichever runs
    # out first ends the retrying): job status reports, input downloads, output uploads.
    status_update_retry_limit: int = Field(default=5, ge=0)
    download_retry_limit: int = Field(default=5, ge=0)
    upload_retry_limit: int = Field(default=5, ge=0)
    upload_pool_size: int = Field(default=4, ge=1, le=64)  # outputs (and parts) at once
    # Ours, named and defaulting as the SDK's configuration (ISTARI_CLIENT_MULTIPART_*): an
    # output above the threshold (bytes) is uploaded in parts of chunksize bytes, each part
    # `upload_pool_size` at once (docs/agent.md, "Large outputs: multipart uploads").
    multipart_threshold: int = Field(default=2 * 2**30, ge=0)
    multipart_chunksize: int = Field(default=128 * 2**20, ge=1)
    # Ours: the input cache under <state_path>/cache (docs/agent.md, "The input cache"), in
    # GiB; 0 turns it off (every input downloaded for each job).
    cache_max_gb: float = Field(default=20.0, ge=0)
    headless_mode: bool = False  # official key; accepted, no effect: this agent has no tray

    # Concurrency and pools.
    max_concurrent_jobs: int = Field(default=1, ge=1, le=1024)
    min_free_memory_mb: int = Field(default=0, ge=0)  # 0: no memory check before a claim
    max_load_per_cpu: float = Field(default=0.0, ge=0)  # 0: no load check before a claim
    agent_pools: Annotated[tuple[str, ...], NoDecode] = ()  # ids or names

    # Push wake-ups (MQTT). Without mqtt_url the agent polls every poll_interval.
    mqtt_url: str | None = None
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_client_id: str | None = Field(default=None, min_length=1, max_length=128)
    mqtt_ca_file: Path | None = None
    mqtt_cert_file: Path | None = None
    mqtt_key_file: Path | None = None
    push_poll_interval: float = Field(default=30.0, gt=0)  # first idle poll with push healthy
    push_poll_max_interval: float = Field(default=600.0, gt=0)  # back off to this (or the first)
    # Where tools run: "local" (a supervised process here) or "slurm" (sbatch from this login
    # node), for every module or per module key.
    executor: Literal["local", "slurm"] = "local"
    module_executors: dict[str, Literal["local", "slurm"]] = Field(default_factory=dict)
    slurm_partition: str | None = None
    slurm_account: str | None = None
    slurm_cpus: int | None = Field(default=None, gt=0)
    slurm_memory_mb: int | None = Field(default=None, gt=0)
    slurm_gpus: int | None = Field(default=None, gt=0)
    # Run records (`istari-agent runs`): kept this many days, and at most this many.
    run_retention_days: float = Field(default=30.0, gt=0)
    run_retention_count: int = Field(default=10_000, gt=0)
    # Tools' progress and log entries in the job's status message: at most this often (s);
    # 0 keeps them in the run record only.
    progress_report_interval: float = Field(default=5.0, ge=0)
    # Seconds between samples of a local tool's CPU and memory (run records, dashboard).
    resource_sample_interval: float = Field(default=1.0, gt=0)
    # The RSA key job credentials are sealed to (made 0600 on first start when absent).
    private_key_path: Path | None = None  # default: <state_path>/agent_key.pem
    # TLS to the registry: a CA bundle (default: the system's), a client certificate, and
    # verification, which is only ever off when this says so (logged loudly at every start).
    registry_ca_file: Path | None = None
    registry_cert_file: Path | None = None
    registry_key_file: Path | None = None
    registry_tls_verify: bool = True
    # Health and metrics over HTTP (/healthz, /readyz, /metrics); off unless set.
    http_address: str | None = None  # HOST:PORT, e.g. 127.0.0.1:9464 (port 0: any free one)
    http_public: bool = False  # allow an http_address beyond loopback (needs the token)
    # Everything on the listener but /healthz and /readyz asks for `Authorization: Bearer
    # <token>`; the token is this file's content (default <state_path>/http_token, made 0600
    # on first start; the CLI uses the systemd credential `http-token` when it is given).
    http_token_file: Path | None = None
    # Host headers accepted besides the listening address itself (and localhost), e.g. a
    # reverse proxy's name: anything else is refused (DNS rebinding).
    http_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    http_metrics_open: bool = False  # serve /metrics without the token (for a scraper)
    # Limits a tool cannot blow through. The job log uploaded as an artifact keeps its head
    # and tail within this size (the run record keeps the last 10 MiB regardless); the job's
    # work directory is measured while the tool runs and the job fails past max_work_dir_mb
    # (0: no limit).
    max_log_upload_mb: float = Field(default=64.0, gt=0)
    max_work_dir_mb: float = Field(default=0.0, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Built directly (tests, library use), settings come only from the arguments;
        # `load_settings` adds the environment and the file.
        return (init_settings,)

    @field_validator("registry_api_token")
    @classmethod
    def _token_not_blank(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # Exactly one way to authenticate: the token, or identity credentials (one of two).
        identity = [
            k
            for k in ("registry_api_credentials", "registry_api_credentials_file")
            if info.data.get(k) is not None
        ]
        if v is None and not identity:
            kind, text = "missing", "Field required"  # read as "required but not set"
            raise PydanticCustomError(kind, text)
        if v is not None and identity:
            msg = f"set either registry_api_token or {identity[0]}, not both"
            raise ValueError(msg)
        if len(identity) > 1:
            msg = "set registry_api_credentials or registry_api_credentials_file, not both"
            raise ValueError(msg)
        if v is not None and not v.get_secret_value().strip():
            msg = "must not be empty"
            raise ValueError(msg)
        return v

    @field_validator("agent_pools", "http_allowed_hosts", mode="before")
    @classmethod
    def _split_lists(cls, v: object) -> object:
        # The environment gives "a, b"; TOML gives a list.
        if isinstance(v, str):
            return tuple(p.strip() for p in v.split(",") if p.strip())
        return v

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_usable(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                Broker.from_url(v)
            except BrokerURLError as e:
                raise ValueError(str(e)) from None
        return v

    @model_validator(mode="after")
    def _http_on_loopback(self) -> Settings:
        if self.http_address is not None:
            try:
                host, _ = parse_address(self.http_address)
            except ValueError as e:
                msg = f"http_address: {e}"
                raise ValueError(msg) from None
            if not self.http_public and not is_loopback(host):
                msg = (
                    f"http_address {self.http_address} is reachable beyond this machine; "
                    "set http_public = true if that is what you want"
                )
                raise ValueError(msg)
        return self

    @property
    def broker(self) -> Broker | None:
        """The MQTT broker to take wake-ups from, or None to poll only."""
        if self.mqtt_url is None:
            return None
        return Broker.from_url(
            self.mqtt_url,
            username=self.mqtt_username,
            password=self.mqtt_password.get_secret_value() if self.mqtt_password else None,
            ca_file=self.mqtt_ca_file,
            cert_file=self.mqtt_cert_file,
            key_file=self.mqtt_key_file,
        )

    @property
    def registry_ssl(self) -> ssl.SSLContext | None:
        """The TLS context for the registry; None for aiohttp's default (the system's CAs)."""
        if not (self.registry_ca_file or self.registry_cert_file or not self.registry_tls_verify):
            return None
        return client_context(
            self.registry_ca_file,
            self.registry_cert_file,
            self.registry_key_file,
            verify=self.registry_tls_verify,
        )

    @property
    def slurm_options(self) -> SlurmOptions:
        """What every batch job asks Slurm for."""
        return SlurmOptions(
            self.slurm_partition,
            self.slurm_account,
            self.slurm_cpus,
            self.slurm_memory_mb,
            self.slurm_gpus,
        )

    @property
    def cache_max_bytes(self) -> int:
        """The input cache's bound in bytes (0: no cache)."""
        return int(self.cache_max_gb * 1024**3)

    @property
    def http_token_path(self) -> Path:
        """The file holding the HTTP listener's token (made 0600 on first start when absent)."""
        return self.http_token_file or self.state_path / "http_token"

    @property
    def agent_key_path(self) -> Path:
        """Where the agent's private key is (or will be made)."""
        return self.private_key_path or self.state_path / "agent_key.pem"

    @property
    def registry_url(self) -> str:
        """The registry base URL without a trailing slash."""
        return str(self.registry_api_url).rstrip("/")


def load_settings(
    config_file: Path | None, flags: Mapping[str, Any], env: Mapping[str, str]
) -> Settings:
    """Build the settings from a config file, the environment and flags; ConfigError if bad.

    `env` is passed in (the CLI hands over `os.environ`) so that precedence is testable.
    """
    return load_config(config_file, flags, env)[0]


def load_config(
    config_file: Path | None, flags: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[Settings, list[Notice]]:
    """`load_settings`, and the file's notices (legacy or unknown official keys) to log."""
    file = read(config_file, Settings.model_fields) if config_file is not None else None
    file_values = _file_values(file) if file is not None else {}
    given = {k: v for k, v in flags.items() if v is not None}

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (
                init_settings,
                _MappingEnvSource(settings_cls, env),
                InitSettingsSource(settings_cls, init_kwargs=file_values),
            )

    try:
        settings = _Loaded(**given)
    except ValidationError as e:
        raise ConfigError(describe(e)) from None
    except SettingsError as e:
        msg = f"config error: {e}"
        raise ConfigError(msg) from None
    token = settings.registry_api_token
    if token is not None and token.get_secret_value() == PLACEHOLDER_TOKEN:
        where = f"in {file.path} " if file is not None else ""
        msg = (
            f"config error: registry_api_token {where}is still the template's placeholder: "
            "put the agent token there (or run `istari-agent init REGISTRY_URL TOKEN_FILE`)"
        )
        raise ConfigError(msg)
    return settings, file.notices if file is not None else []


def _file_values(file: ConfigFile) -> dict[str, Any]:
    """The file's values; a relative private_key_path is taken from the file's directory."""
    values = dict(file.values)
    key = values.get("private_key_path")
    if isinstance(key, str) and key and not Path(key).expanduser().is_absolute():
        values["private_key_path"] = file.path.parent / key
    return values


def describe(error: ValidationError) -> str:
    """One line naming the first bad key, how to set it, and what is wrong."""
    # An unknown key is usually a typo of a missing one: name the typo first.
    first = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
    key = ".".join(str(p) for p in first["loc"]) or "settings"
    top = str(first["loc"][0]) if first["loc"] else key
    problem = "required but not set" if first["type"] == "missing" else first["msg"]
    problem = problem.removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        problem = "unknown setting (check the spelling against config.example.toml)"
    more = f" (and {error.error_count() - 1} more problem(s))" if error.error_count() > 1 else ""
    return (
        f"config error: {key}: {problem}{more}; set `{top}` in the config file "
        f"or ${ENV_PREFIX}{top.upper()}"
    )


class _MappingEnvSource(PydanticBaseSettingsSource):
    """Environment variables from an explicit mapping (complex values as JSON)."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._env = {k.upper(): v for k, v in env.items()}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        value = self._env.get(ENV_PREFIX + field_name.upper())
        return value, field_name, self.field_is_complex(field)

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, complex_ = self.get_field_value(field, name)
            if value is None or value == "":
                continue
            try:
                out[key] = self.decode_complex_value(name, field, value) if complex_ else value
            except ValueError as e:
                msg = f"{ENV_PREFIX}{name.upper()} is not valid JSON: {e}"
                raise SettingsError(msg) from None
        return out
