"""The `istari-agent` command line: the only place that reads the environment and flags."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import click
import structlog

from agent import __version__, logs
from agent.auth.keys import AgentKeyError
from agent.cli_config import CONFIG_ERROR, find_config
from agent.clilazy import LazyGroup
from agent.config import ConfigError, Settings, load_config
from agent.configfile import Notice
from agent.crashsafe.lock import StateInUse
from agent.daemon import Mode
from agent.execution.local import tool_environment
from agent.hostos import HostOSError
from agent.httpaccess import HTTPAccessError, dashboard_url
from agent.identity import REPORTED_AGENT_VERSION
from agent.jobs.outcome import EXIT_CODES, Reason, exit_code
from agent.pools import PoolError
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryError
from agent.reload import Reloader, Source, credential_copy_note
from agent.service import serve
from agent.submit import Submission, follow, parse_param, submit
from agent.systemd import Systemd, SystemdEnv
from agent.tls import TLSError

CRASHED = 70  # EX_SOFTWARE: an internal error; systemd restarts the agent


@click.group(
    cls=LazyGroup,
    lazy={
        "registry": "agent.cli_registry.registry",
        "stop": "agent.cli_service.stop_command",
        "install-service": "agent.cli_service.install_service_command",
        "runs": "agent.cli_runs.runs",
        "cache": "agent.cli_cache.cache",
        "record": "agent.cli_record.record_command",
        "pause": "agent.cli_control.pause_command",
        "resume": "agent.cli_control.resume_command",
        "status": "agent.cli_control.status_command",
        "reload": "agent.cli_reload.reload_command",
        "init": "agent.cli_config.init_command",
        "modules": "agent.cli_modules.modules",
    },
)
@click.version_option(
    __version__,
    prog_name="istari-agent",
    # Our release; the registry is told the protocol level (the agent_version setting).
    message=f"%(prog)s %(version)s (reports agent_version {REPORTED_AGENT_VERSION} by default)",
)
@click.option(
    "--log-level",
    default=None,
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log level [default: info, or the agent config's log_level].",
)
def main(log_level: str | None) -> None:
    """istari-agent: run Istari jobs on this machine, or serve a local registry."""
    logs.configure(log_level or "info")


def registry_options(f: click.decorators.FC) -> click.decorators.FC:
    f = click.option(
        "--registry-url",
        envvar="ISTARI_REGISTRY_URL",
        required=True,
        help="Registry base URL [env: ISTARI_REGISTRY_URL].",
    )(f)
    return click.option(
        "--token-file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        default=None,
        help="File holding the bearer token [else env: ISTARI_REGISTRY_AUTH_TOKEN].",
    )(f)


def client_token(token_file: Path | None) -> str:
    if token_file is not None:
        return token_file.read_text().strip()
    token = os.environ.get("ISTARI_REGISTRY_AUTH_TOKEN")
    if not token:
        msg = "set ISTARI_REGISTRY_AUTH_TOKEN or pass --token-file"
        raise click.UsageError(msg)
    return token


@main.command("submit")
@click.argument("model_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--function", "function", required=True, help="Function name, e.g. @example:fn.")
@click.option(
    "--param", "params", multiple=True, help="key=value (value parsed as JSON if it can be)."
)
@click.option("--pool", "pool_id", default=None, help="Assign the job to this agent pool id.")
@click.option("--agent", "agent_id", default=None, help="Assign the job to this agent id.")
@click.option("--module", "module_name", default=None, help="Module providing the function.")
@click.option("--wait/--no-wait", default=False, help="Follow the job to its end.")
@registry_options
def submit_command(
    model_file: Path,
    function: str,
    params: tuple[str, ...],
    pool_id: str | None,
    agent_id: str | None,
    module_name: str | None,
    wait: bool,
    registry_url: str,
    token_file: Path | None,
) -> None:
    """Upload MODEL_FILE as a model and submit a job running FUNCTION on it."""
    try:
        parameters = dict(parse_param(p) for p in params)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--param") from None
    sub = Submission(model_file, function, parameters, pool_id, agent_id, module_name)
    token = client_token(token_file)
    try:
        code = asyncio.run(_submit(registry_url, token, sub, wait))
    except RegistryError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    sys.exit(code)


async def _submit(url: str, token: str, sub: Submission, wait: bool) -> int:
    async with RegistryClient(url, token) as client:
        job = await submit(client, sub)
        click.echo(f"submitted job {job.id} ({sub.function} on {sub.model_file.name})")
        if not wait:
            return 0

        def show(status: JobStatus, message: str | None) -> None:
            click.echo(f"  {status}" + (f": {message}" if message else ""))

        done = await follow(client, job.id, show)
        return 0 if done.status is JobStatus.COMPLETED else 1


def _config_options(f: click.decorators.FC) -> click.decorators.FC:
    """The flags that override the config file and the environment."""
    for name, kind, text in reversed(_FLAGS):
        f = click.option(f"--{name.replace('_', '-')}", name, type=kind, default=None, help=text)(f)
    return config_option(f)


def config_option(f: click.decorators.FC) -> click.decorators.FC:
    """`--config FILE` (or ISTARI_AGENT_CONFIG): the file the settings are read from."""
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="ISTARI_AGENT_CONFIG",
        default=None,
        help="Config file, YAML (official) or TOML [env: ISTARI_AGENT_CONFIG; default: "
        "~/.config/istari_digital/istari_digital_config.yaml; see docs/configuration.md].",
    )(f)


_FLAGS: list[tuple[str, Any, str]] = [
    ("registry_api_url", str, "Registry base URL."),
    ("modules_path", click.Path(path_type=Path), "Directory of installed modules."),
    ("output_path", click.Path(path_type=Path), "Where job work directories go."),
    ("state_path", click.Path(path_type=Path), "Where the agent keeps its id."),
    ("poll_interval", float, "Seconds between polls for jobs."),
    ("process_timeout", float, "Seconds a tool may run."),
    ("display_name", str, "Name shown for this agent in the registry."),
    ("max_concurrent_jobs", int, "Jobs run at once."),
    ("agent_pools", str, "Agent pools to join (comma-separated ids or names)."),
    ("mqtt_url", str, "MQTT broker for push wake-ups: mqtt[s]://HOST[:PORT]."),
    ("host_os", str, 'OS reported to the registry, e.g. "Ubuntu 22.04".'),
    ("http_token_file", click.Path(path_type=Path), "The HTTP listener's token file."),
]
# The systemd credential (`LoadCredential=http-token:FILE`) that is the HTTP listener's token.
HTTP_CREDENTIAL = "http-token"


def _settings(config_file: Path | None, flags: dict[str, Any]) -> Settings:
    return _settings_from(config_file, flags)[0]


def _read(config_file: Path | None, flags: dict[str, Any]) -> tuple[Settings, list[Notice]]:
    """The settings from `config_file` (the one found), the environment and `flags`; the
    same at start and at each reload (ConfigError when they cannot be used)."""
    settings, notices = load_config(config_file, flags, os.environ)
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    credential = Path(credentials, HTTP_CREDENTIAL) if credentials else None
    if settings.http_token_file is None and credential is not None and credential.is_file():
        settings = settings.model_copy(update={"http_token_file": credential})
    return settings, notices


def _settings_from(config_file: Path | None, flags: dict[str, Any]) -> tuple[Settings, Path | None]:
    """The settings (exit 2 with one line when they cannot be used), and the file read."""
    config_file, notices = find_config(config_file, os.environ)
    try:
        settings, more = _read(config_file, flags)
    except ConfigError as e:
        click.echo(str(e), err=True)
        sys.exit(CONFIG_ERROR)
    logs.configure(_log_level_flag() or settings.log_level)
    log = structlog.get_logger(__name__)
    for notice in [*notices, *more]:  # config.legacy_location/legacy_key/unknown_official_key
        log.warning(notice.event, **notice.fields)
    if settings.headless_mode:
        log.debug("config.headless_mode", note="accepted; this agent has no tray UI to turn off")
    return settings, config_file


def _log_level_flag() -> str | None:
    """`istari-agent --log-level X run`: it wins over the config's log_level."""
    flag = click.get_current_context().find_root().params.get("log_level")
    return str(flag) if flag else None


def _reload_source(config_file: Path | None, flags: dict[str, Any]) -> Source:
    """How `run` reads its configuration again on SIGHUP: the same file (the one found at
    start, not looked for again), the same flags, and this process's environment."""
    flag = _log_level_flag()
    return Source(
        load=lambda: _read(config_file, flags)[0],
        log_level=lambda level: logs.configure(flag or level),
        path=config_file,
        note=credential_copy_note(config_file, os.environ.get("CREDENTIALS_DIRECTORY")),
    )


@main.command("run")
@click.option("--once", is_flag=True, help="Run at most one job, exit with its outcome's code.")
@click.option("--until-idle", is_flag=True, help="Run jobs until none is offered, then exit.")
@_config_options
def run_command(once: bool, until_idle: bool, config_file: Path | None, **flags: Any) -> None:
    """Run the agent: claim and run jobs from the registry (see docs/agent.md)."""
    if once and until_idle:
        msg = "--once and --until-idle cannot be combined"
        raise click.UsageError(msg)
    settings, found = _settings_from(config_file, flags)
    mode = Mode.ONCE if once else Mode.UNTIL_IDLE if until_idle else Mode.SERVE
    systemd = Systemd(_systemd_env())
    reloader = Reloader(settings.state_path, _reload_source(found, flags), systemd)
    try:
        outcomes = asyncio.run(
            serve(
                settings,
                tool_environment(os.environ),
                mode,
                handle_signals=True,
                systemd=systemd,
                reloader=reloader,
            )
        )
    except (
        RegistryError,
        HostOSError,
        HTTPAccessError,
        PoolError,
        StateInUse,
        TLSError,
        AgentKeyError,
    ) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_CODES[Reason.AGENT_ERROR])
    except Exception:
        # A bug: one redacted log line with the traceback (never Python's raw print, which
        # would bypass redaction), then the exit code systemd restarts on.
        structlog.get_logger(__name__).exception("agent.crashed")
        sys.exit(CRASHED)
    if mode is Mode.ONCE:
        sys.exit(exit_code(outcomes[0] if outcomes else None))
    # A served agent that was stopped exits 0 (systemd must not read a stop as a failure).
    sys.exit(0 if mode is Mode.SERVE or all(o.ok for o in outcomes) else 1)


def _systemd_env() -> SystemdEnv:
    """NOTIFY_SOCKET and the watchdog period, when systemd set them for this process."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    ours = not pid or pid == str(os.getpid())
    return SystemdEnv(
        notify_socket=os.environ.get("NOTIFY_SOCKET") or None,
        watchdog_usec=int(usec) if usec.isdigit() and ours else None,
    )


@main.command("check")
@_config_options
def check_command(config_file: Path | None, **flags: Any) -> None:
    """Check the config, host OS, modules, directories and registry; exit 1 on a problem."""
    from agent.check import check

    settings = _settings(config_file, flags)
    findings = asyncio.run(check(settings))
    for f in findings:
        mark = click.style("ok  ", fg="green") if f.ok else click.style("FAIL", fg="red")
        if f.ok and f.warning:
            mark = click.style("warn", fg="yellow")
        click.echo(f"{mark} {f.topic:12} {f.detail}")
    bad = sum(not f.ok for f in findings)
    click.echo("ready to run jobs" if not bad else f"{bad} problem(s); fix them and run again")
    sys.exit(1 if bad else 0)


@main.command("dashboard-url")
@_config_options
def dashboard_url_command(config_file: Path | None, **flags: Any) -> None:
    """Print the dashboard's address with the HTTP token in it: open it in your browser.

    It reads the token file the agent made (or was given): run it as a user who can read it.
    The address holds the token, so keep it out of chats and tickets.
    """
    settings = _settings(config_file, flags)
    try:
        click.echo(dashboard_url(settings))
    except HTTPAccessError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)


@main.command("demo")
@click.option(
    "--results",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to put the downloaded artifacts [default: a new temporary directory].",
)
def demo_command(results: Path | None) -> None:
    """Run the agent against a local registry on this machine, end to end."""
    from agent.demo import run_demo

    logs.configure("warning")
    sys.exit(asyncio.run(run_demo(results)))
