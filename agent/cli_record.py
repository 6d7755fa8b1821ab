"""`istari-agent record`: write a run done outside Istari to a system's workflow log.

Two ways to record: say how a run ended (`--status`, `--output` files), or wrap the run
(`record ... -- COMMAND`). Either way the record goes to the outbox first, then to the
registry; what could not be sent stays for `record --retry` (see docs/record.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import click

from agent.cli_service import state_path_option
from agent.registry.client import RegistryClient
from agent.workflowlog.deliver import Sent, send, send_claimed
from agent.workflowlog.model import STATUSES, parse_config
from agent.workflowlog.outbox import Outbox, OutboxError, RecordBusy
from agent.workflowlog.prepare import (
    LOG_NAME,
    RecordRefused,
    Run,
    build,
    check_outputs,
    new_record_id,
    present_outputs,
)
from agent.workflowlog.report import KEPT, as_json, describe_pending, describe_sent, exit_code
from agent.workflowlog.wrap import run_teed


@dataclass(frozen=True)
class Registry:
    """Where to send, and with which token (never printed)."""

    url: str
    token: str


def _registry(url: str | None, token_file: Path | None) -> Registry:
    if not url:
        msg = "set ISTARI_REGISTRY_URL or pass --registry-url"
        raise click.UsageError(msg)
    token = (
        token_file.read_text().strip()
        if token_file
        else os.environ.get("ISTARI_REGISTRY_AUTH_TOKEN", "")
    )
    if not token:
        msg = "set ISTARI_REGISTRY_AUTH_TOKEN or pass --token-file"
        raise click.UsageError(msg)
    return Registry(url.rstrip("/"), token)


def _usage(message: str) -> NoReturn:
    raise click.UsageError(message)


def _check_flags(what: dict[str, Any], command: tuple[str, ...]) -> None:
    """Refuse flag combinations the run cannot be recorded with."""
    if not what["system_id"]:
        _usage("--system is required")
    if what["branchless"] and (what["configuration_id"] or what["branch_id"]):
        _usage("--branchless records no provenance: leave out --configuration-id and --branch-id")
    if command and what["status"]:
        _usage("--status comes from the command's exit code when wrapping one")
    if not command and not (what["status"] and what["title"]):
        _usage("--title and --status are required unless a COMMAND is wrapped")
    if what["title"] is not None and len(what["title"]) > 255:
        msg = "at most 255 characters"
        raise click.BadParameter(msg, param_hint="--title")


def _run(what: dict[str, Any], command: tuple[str, ...]) -> Run:
    """The run asked for, checked before anything is written or sent."""
    _check_flags(what, command)
    try:
        config = parse_config(what["configs"])
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--config") from None
    outputs = tuple(what["outputs"])
    if not command:
        try:
            outputs = check_outputs(outputs)
        except RecordRefused as e:
            click.echo(f"error: {e}; nothing was recorded", err=True)
            sys.exit(2)
    return Run(
        system_id=what["system_id"],
        status=what["status"] or "UNSPECIFIED",
        title=what["title"] or (shlex.join(command)[:255] if command else None),
        configuration_id=what["configuration_id"],
        branch_id=what["branch_id"],
        branchless=what["branchless"],
        outputs=outputs,
        config=config,
    )


def _ensure(outbox: Outbox) -> None:
    try:
        outbox.ensure()
    except OutboxError as e:
        click.echo(
            f"error: {e}; pass --state-path (or set ISTARI_DIGITAL_AGENT_STATE_PATH)", err=True
        )
        sys.exit(1)


def _wrap(outbox: Outbox, record_id: str, run: Run, command: tuple[str, ...]) -> tuple[Run, int]:
    """Run the command; the run as it ended, and its exit status."""
    log_path = outbox.file_path(record_id, LOG_NAME)
    code = run_teed(list(command), log_path, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer)
    outputs, problems = present_outputs(run.outputs)
    for problem in problems:
        click.echo(f"warning: output left out: {problem}", err=True)
    status = "SUCCESS" if code == 0 else "FAILED"
    return replace(run, status=status, outputs=outputs, log=log_path), code


async def _send(reg: Registry, outbox: Outbox, record_ids: list[str]) -> list[Sent]:
    results = []
    async with RegistryClient(reg.url, reg.token) as client:
        for record_id in record_ids:
            try:
                results.append(await send(client, outbox, record_id))
            except RecordBusy as e:
                results.append(Sent(outbox.load(record_id), str(e)))
            except OutboxError:
                continue  # delivered (and removed) by another process meanwhile
    return results


async def _send_own(reg: Registry, outbox: Outbox, record_id: str) -> Sent:
    async with RegistryClient(reg.url, reg.token) as client:
        return await send_claimed(client, outbox, record_id)


def _show(results: list[Sent], outbox: Outbox, json_out: bool, *, many: bool) -> None:
    if json_out:  # one line, the last on stdout (a wrapped command's output comes first)
        docs = [as_json(s) for s in results]
        click.echo(json.dumps(docs if many else docs[0], separators=(",", ":")))
        return
    for s in results:
        click.echo(describe_sent(s, str(outbox.root)), err=s.error is not None)


def _record(
    reg: Registry, outbox: Outbox, json_out: bool, *, what: dict[str, Any], command: tuple[str, ...]
) -> int:
    run = _run(what, command)
    _ensure(outbox)
    record_id = new_record_id()
    code = None
    outbox.directory(record_id)
    # Claimed from the start: a `--retry` running meanwhile must not send it too.
    with outbox.claim(record_id):
        if command:
            run, code = _wrap(outbox, record_id, run, command)
        try:
            build(outbox, record_id, reg.url, run, time.time())
            sent = asyncio.run(_send_own(reg, outbox, record_id))
        except OSError as e:
            click.echo(f"error: cannot write the record into {outbox.root}: {e}", err=True)
            return code or 1
        except KeyboardInterrupt:
            click.echo(f"interrupted: `istari-agent record --retry` sends {record_id}", err=True)
            return code or 130
    _show([sent], outbox, json_out, many=False)
    return exit_code(sent.error is None, code)


def _retry(reg: Registry, outbox: Outbox, json_out: bool) -> int:
    pending = [r.id for r in outbox.pending()]
    if not pending and not json_out:
        click.echo("no records waiting in the outbox")
        return 0
    results = asyncio.run(_send(reg, outbox, pending))
    _show(results, outbox, json_out, many=True)
    return 0 if all(s.error is None for s in results) else KEPT


def _list(outbox: Outbox, json_out: bool) -> None:
    pending = outbox.pending()
    if json_out:
        click.echo(json.dumps([r.model_dump() for r in pending], indent=2))
        return
    for r in pending:
        click.echo(describe_pending(r))
    if not pending:
        click.echo("no records waiting in the outbox")


def _drop(outbox: Outbox, prefix: str) -> None:
    record = outbox.find(prefix)
    outbox.remove(record.id)
    click.echo(f"dropped record {record.id}")
    if any(o.output_id for o in record.outputs):
        click.echo(
            f"note: outputs it created on {record.registry_url} stay there, owned by no entry"
        )


@click.command("record", context_settings={"allow_interspersed_args": False})
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--system", "system_id", default=None, help="The system the run targeted (id).")
@click.option("--title", default=None, help="The entry's title [wrapping: the command line].")
@click.option(
    "--status",
    type=click.Choice(STATUSES, case_sensitive=False),
    default=None,
    help="How the run ended [wrapping: from the command's exit code].",
)
@click.option(
    "--output",
    "outputs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A file the run produced (repeat for more).",
)
@click.option(
    "--config",
    "configs",
    multiple=True,
    metavar="KEY=VALUE",
    help="The run's configuration, kept as configuration.json (repeat for more).",
)
@click.option("--configuration-id", default=None, help="The system configuration it ran against.")
@click.option("--branch-id", default=None, help="The branch it ran against.")
@click.option("--branchless", is_flag=True, help="Record no branch or configuration provenance.")
@click.option("--retry", is_flag=True, help="Send every record waiting in the outbox.")
@click.option("--list", "list_", is_flag=True, help="Show the records waiting in the outbox.")
@click.option(
    "--drop",
    "drop_id",
    default=None,
    metavar="RECORD_ID",
    help="Forget a waiting record (an id or its unique start).",
)
@click.option("--json", "json_out", is_flag=True, help="JSON for scripts.")
@click.option(
    "--registry-url",
    envvar="ISTARI_REGISTRY_URL",
    default=None,
    help="Registry base URL [env: ISTARI_REGISTRY_URL].",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="File holding a personal access token [else env: ISTARI_REGISTRY_AUTH_TOKEN].",
)
@state_path_option("The state path whose record outbox to use.")
def record_command(
    command: tuple[str, ...],
    retry: bool,
    list_: bool,
    drop_id: str | None,
    json_out: bool,
    registry_url: str | None,
    token_file: Path | None,
    state_path: Path,
    **what: Any,
) -> None:
    """Record a run done outside Istari in a system's workflow log (see docs/record.md).

    \b
    istari-agent record --system ID --title T --status SUCCESS --output results.xml
    istari-agent record --system ID -- ./verify.sh --fast
    istari-agent record --retry
    """
    outbox = Outbox(state_path.absolute())
    alone = [retry, list_, drop_id is not None]
    if sum(alone) > 1 or (any(alone) and (command or what["system_id"])):
        _usage("--retry, --list and --drop each stand alone")
    try:
        if list_:
            _list(outbox, json_out)
        elif drop_id is not None:
            _drop(outbox, drop_id)
        else:
            reg = _registry(registry_url, token_file)
            mode: Callable[[Registry, Outbox, bool], int] = (
                _retry if retry else partial(_record, what=what, command=command)
            )
            sys.exit(mode(reg, outbox, json_out))
    except OutboxError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
