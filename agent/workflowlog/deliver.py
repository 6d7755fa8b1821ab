"""Sending a record: its outputs (blobs, then a workflow output each), then its one entry.

Each step's result is saved in the outbox before the next begins (see `model.py`), under the
record's lock, so a retry resumes and nothing is created twice. What fails is explained in
words a user can act on: unreachable, refused token, no such system, or a registry without
the v3 workflow-log routes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import structlog

from agent.errors import AgentError
from agent.protocol.content import digest_file, extension_of, mime_of
from agent.registry.client import RegistryClient
from agent.registry.errors import (
    NotFound,
    RegistryError,
    RegistryRejected,
    RegistryUnavailable,
    Unauthorized,
)
from agent.registry.models import NewRevision, Token
from agent.registry.v3 import NewWorkflowLogEntry, WorkflowLogs
from agent.workflowlog.model import CreateOutput, Done, Output, Record, next_step
from agent.workflowlog.outbox import Outbox

log = structlog.get_logger(__name__)

_SEARCH_PAGES = 3  # pages of 100 entries searched for an entry whose answer was lost


class OutputChanged(AgentError):
    """An output changed or went away after it was recorded."""


@dataclass(frozen=True)
class Sent:
    """How sending one record ended: delivered (`error` None) or kept in the outbox."""

    record: Record
    error: str | None = None


def _check_unchanged(output: Output) -> None:
    """Refuse to send bytes other than those recorded (hashing again only if mtime moved)."""
    path = Path(output.path)
    try:
        st = path.stat()
        same = st.st_size == output.content.size and st.st_mtime_ns == output.mtime_ns
        if same or digest_file(path, output.content.salt).sha == output.content.sha:
            return
    except OSError as e:
        msg = f"output {path} cannot be read any more ({e.strerror or e}); it was not sent"
        raise OutputChanged(msg) from None
    msg = f"output {path} changed after it was recorded; it was not sent"
    raise OutputChanged(msg)


async def _upload(client: RegistryClient, sha: str, path: Path) -> None:
    url = await client.upload_url(sha)
    if url is not None:  # None: already stored (by an earlier attempt, say)
        await client.put_blob(url.url, path)


async def _create_output(logs: WorkflowLogs, outbox: Outbox, record: Record, index: int) -> Record:
    output = record.outputs[index]
    await asyncio.to_thread(_check_unchanged, output)
    props_path = outbox.file_path(record.id, f"properties-{index}.json")
    await _upload(logs.client, output.properties.sha, props_path)
    await _upload(logs.client, output.content.sha, Path(output.path))
    revision = NewRevision(
        content_token=Token(sha=output.content.sha, salt=output.content.salt),
        properties_token=Token(sha=output.properties.sha, salt=output.properties.salt),
        name=output.name,
        extension=extension_of(output.name),
        size=output.content.size,
        mime=mime_of(output.name),
    )
    created = await logs.create_output(record.system_id, revision)
    log.debug("record.output_created", record_id=record.id, output_id=created.id)
    return record.with_output(index, created.id)


async def find_entry(logs: WorkflowLogs, record: Record) -> str | None:
    """The entry owning the record's first output, if an earlier attempt created it.

    An entry owns its outputs, so the first output's id identifies it. A record without
    outputs cannot be told apart from another run like it: None (it is created again).
    """
    first = record.outputs[0].output_id if record.outputs else None
    if first is None:
        return None
    cursor = None
    for _ in range(_SEARCH_PAGES):
        page = await logs.list_entries(
            record.system_id,
            cursor=cursor,
            size=100,
            title=record.title,
            status=record.status,
            archive_status="all",
            include_total=False,
        )
        for item in page.items:
            if item.file_count == len(record.outputs):
                detail = await logs.get_entry(record.system_id, item.id)
                if any(o.id == first for o in detail.workflow_outputs):
                    return item.id
        cursor = page.next_page
        if cursor is None:
            break
    return None


async def _create_entry(logs: WorkflowLogs, outbox: Outbox, record: Record) -> Record:
    if record.entry_sent:
        found = await find_entry(logs, record)
        if found is not None:
            log.info("record.entry_recovered", record_id=record.id, entry_id=found)
            return record.with_entry(found)
    else:
        record = record.entry_sending()
        outbox.save(record)  # before sending: the answer may be lost, the entry not
    entry = NewWorkflowLogEntry(
        title=record.title,
        status=record.status,
        configuration_id=record.configuration_id,
        branch_id=record.branch_id,
        branchless=record.branchless,
        workflow_output_ids=[o.output_id for o in record.outputs if o.output_id is not None],
    )
    try:
        created = await logs.create_entry(record.system_id, entry)
    except RegistryRejected as e:
        if not e.resent:  # answered once, with a refusal: no entry was made
            outbox.save(record.entry_refused())
        raise
    log.debug("record.entry_created", record_id=record.id, entry_id=created.id)
    return record.with_entry(created.id)


async def deliver(logs: WorkflowLogs, outbox: Outbox, record: Record) -> Record:
    """Send what is left of `record`, saving after each step; returns it delivered."""
    while True:
        step = next_step(record)
        if isinstance(step, Done):
            return record
        if isinstance(step, CreateOutput):
            record = await _create_output(logs, outbox, record, step.index)
        else:
            record = await _create_entry(logs, outbox, record)
        outbox.save(record)


async def explain(logs: WorkflowLogs, record: Record, error: AgentError) -> str:
    """What went wrong, in words that say what to do about it."""
    if isinstance(error, RegistryRejected) and _maybe_no_v3(record, error):
        try:
            await logs.get_system(record.system_id)
        except NotFound:
            return f"the registry has no system {record.system_id} ({error})"
        except RegistryError:
            pass
        else:
            return (
                f"this registry does not serve external workflow logs ({error}); on Istari, "
                "an administrator must enable 'Experimental — External Workflows'"
            )
    if isinstance(error, Unauthorized):
        return (
            f"the registry refused the token ({error}); workflow logs need a personal access "
            "token that may write to the system"
        )
    if isinstance(error, RegistryUnavailable) and error.away:
        return f"the registry at {logs.client.base_url} could not be reached ({error})"
    return str(error)


def _maybe_no_v3(record: Record, error: RegistryRejected) -> bool:
    """A 404/405 on a v3 route before any v3 call worked: routes missing, or no such system."""
    if error.status not in (404, 405) or "/api/v3/" not in error.path:
        return False
    return error.path.endswith("/workflow_outputs") or not record.outputs


async def _reachable(client: RegistryClient) -> None:
    """Raise RegistryUnavailable when the registry cannot be reached (nothing sent yet).

    Any answer, even a refusal, means it is there: the record's own calls say the rest.
    """
    try:
        await client.readiness()
    except RegistryUnavailable as e:
        if e.away:
            raise
    except RegistryError:
        pass


async def send(client: RegistryClient, outbox: Outbox, record_id: str) -> Sent:
    """Deliver one record from the outbox (removing it once delivered), or keep it.

    Raises RecordBusy when another process is sending it, OutboxError when it is gone.
    """
    with outbox.claim(record_id):
        return await send_claimed(client, outbox, record_id)


async def send_claimed(client: RegistryClient, outbox: Outbox, record_id: str) -> Sent:
    """`send`, for a caller that already holds the record's claim."""
    logs = WorkflowLogs(client)
    record = outbox.load(record_id)  # again, under the lock
    if not record.sendable_to(client.base_url):
        why = f"it was partly delivered to {record.registry_url}; retry with that URL"
        return Sent(record, why)
    if record.registry_url != client.base_url:
        record = record.retargeted(client.base_url)
        outbox.save(record)
    try:
        await _reachable(client)
        record = await deliver(logs, outbox, record)
    except (RegistryError, OutputChanged) as e:
        message = await explain(logs, record, e)
        record = outbox.load(record_id).failed(message)
        outbox.save(record)
        log.debug("record.kept", record_id=record_id, error=message)
        return Sent(record, message)
    outbox.remove(record_id)
    return Sent(record)
