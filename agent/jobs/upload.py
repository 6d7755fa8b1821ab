"""The Uploading phase: each output becomes an artifact (or a model), and the job log does.

`list[ProducedOutput] → UploadedOutputs`. Artifacts are created under the job's model with
`source_job_id`, so the registry links them to the job. A directory output is zipped first and
uploaded as `<name>.zip`, its links stored as links, never followed (pack.py). Every registry
call is retried within the job's retry budget (and `upload_retry_limit` attempts); a
registry still unreachable after that raises the RegistryError (the runner waits and tries
again; the outputs stay on disk). Each output's revision is journaled before its create is
sent and its resource id after, so a create that may have succeeded before its answer was
lost, or before the agent was killed, is looked up before it is repeated: neither a flaky
connection nor a restart leaves duplicate artifacts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import structlog

from agent.concurrently import all_of, both
from agent.jobs.context import JobContext
from agent.jobs.errors import JobCanceled, UploadFailed
from agent.jobs.outputs import ProducedOutput
from agent.jobs.pack import Packed, zip_directory
from agent.jobs.workdir import WorkDir, safe_name
from agent.logtail import copy_capped
from agent.protocol.states import JobStatus
from agent.registry.errors import Conflict, RegistryError
from agent.registry.models import Job, NewRevision, Resource
from agent.registry.transfer import upload_revision
from agent.safeopen import create_new

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Uploaded:
    """One output as the registry now holds it."""

    name: str
    kind: str  # "artifact" or "model"
    resource_id: str
    file_name: str


@dataclass(frozen=True)
class UploadedOutputs:
    """What the Uploading phase left in the registry."""

    outputs: list[Uploaded]
    log: Uploaded | None  # the tool's log, when there is one and the job has a model


async def upload(
    ctx: JobContext, job: Job, workdir: WorkDir, outputs: list[ProducedOutput]
) -> UploadedOutputs:
    """The outputs and, alongside them, the log (complete once the tool has exited)."""
    uploaded, job_log = await both(
        upload_outputs(ctx, job, workdir, outputs), upload_log(ctx, job, workdir)
    )
    return UploadedOutputs(uploaded, job_log)


async def upload_outputs(
    ctx: JobContext, job: Job, workdir: WorkDir, outputs: list[ProducedOutput]
) -> list[Uploaded]:
    """Upload every output, `upload_pool_size` at once; UploadFailed names one that failed."""
    return await all_of(
        (_upload_one(ctx, job, workdir, out) for out in outputs),
        limit=ctx.settings.upload_pool_size,
    )


async def _upload_one(ctx: JobContext, job: Job, workdir: WorkDir, out: ProducedOutput) -> Uploaded:
    path = await _packed(out, workdir)
    kind = out.schema.upload_as or "artifact"
    try:
        resource_id = await _create(ctx, job, path, kind, out.schema.display_name)
    except Conflict as e:
        if (await ctx.client.get_job(job.id)).status is JobStatus.CANCELED:
            msg = "canceled by a user (the registry refused its outputs)"
            raise JobCanceled(msg) from None
        msg = f"the registry refused output {out.name}: {e.detail}"
        raise UploadFailed(msg) from None
    except RegistryError as e:
        if e.away:
            raise  # the registry is away: the runner waits for it
        msg = f"output {out.name} could not be uploaded: {e}"
        raise UploadFailed(msg) from None
    log.info("job.output_uploaded", output=out.name, kind=kind, id=resource_id)
    return Uploaded(out.name, kind, resource_id, path.name)


async def upload_log(ctx: JobContext, job: Job, workdir: WorkDir) -> Uploaded | None:
    """Upload the tool's log as an artifact: its head and tail within `max_log_upload_mb`.

    Best effort: a refusal or a disk error is logged, not raised; only an unreachable
    registry raises (RegistryError), so that a caller that can wait for it does.
    """
    if not workdir.log_file.exists() or job.model_id is None:
        return None
    name = f"job-{safe_name(job.id)}.log"
    named = workdir.uploads / name
    limit = int(ctx.settings.max_log_upload_mb * 2**20)
    try:
        cut = await asyncio.to_thread(copy_capped, workdir.log_file, named, limit)
        if cut:
            log.warning("job.log_cut", bytes_cut=cut, max_log_upload_mb=limit / 2**20)
        resource_id = await _create(ctx, job, named, "artifact", "Job log")
    except RegistryError as e:
        if e.away:
            raise
        log.warning("job.log_upload_failed", error=str(e))
        return None
    except OSError as e:
        log.warning("job.log_upload_failed", error=str(e))
        return None
    return Uploaded("job log", "artifact", resource_id, name)


async def _packed(out: ProducedOutput, workdir: WorkDir) -> Path:
    """The file to upload for an output: itself, or a zip of a directory (links kept as links)."""
    if not out.is_dir:
        return out.path
    archive = workdir.uploads / f"{safe_name(out.name, fallback='output')}.zip"
    packed = await asyncio.to_thread(_zip_into, out.path, archive)
    if packed.links or packed.skipped:
        log.info(
            "job.output_packed",
            output=out.name,
            files=packed.files,
            links_kept_as_links=packed.links,
            special_files_left_out=packed.skipped[:10],
        )
    return archive


def _zip_into(source: Path, archive: Path) -> Packed:
    with create_new(archive) as f:  # a link a tool left at the name is replaced, not followed
        return zip_directory(source, f)


async def _create(
    ctx: JobContext, job: Job, path: Path, kind: str, display_name: str | None
) -> str:
    """Create the resource for `path` once, whatever happened before; its id."""
    earlier = ctx.journal.upload(job.id, path.name)
    if earlier is not None and earlier.resource_id is not None:
        log.info("job.output_already_uploaded", file=path.name, id=earlier.resource_id)
        return earlier.resource_id
    if earlier is not None:  # blobs stored, create sent or about to be: same revision again
        revision = NewRevision.model_validate_json(earlier.revision)
    else:
        revision = await ctx.retrying(
            lambda: upload_revision(ctx.client, path, display_name=display_name),
            what=f"upload {path.name}",
            retries=ctx.settings.upload_retry_limit,
        )
        ctx.journal.uploading(job.id, path.name, revision.model_dump_json())
    attempts = 0 if earlier is None else 1

    async def create_once() -> Resource:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            existing = await _already_created(ctx, job, revision, kind)
            if existing is not None:
                return existing
        if kind == "model" or job.model_id is None:
            return await ctx.client.create_model(revision)
        return await ctx.client.create_artifact(job.model_id, revision, source_job_id=job.id)

    resource = await ctx.retrying(
        create_once, what="create", retries=ctx.settings.upload_retry_limit
    )
    ctx.journal.uploaded(job.id, path.name, resource.id)
    return resource.id


async def _already_created(
    ctx: JobContext, job: Job, revision: NewRevision, kind: str
) -> Resource | None:
    """The artifact an earlier attempt created, if its answer was lost (or the agent killed).

    Each upload hashes under a fresh salt, so a content sha names this upload alone: a match
    is our own earlier create, never another job's identical file.
    """
    if kind == "model" or job.model_id is None:
        return None  # models cannot be listed by job; a rare duplicate model is the cost
    page = await ctx.client.list_artifacts(job.model_id, size=100)
    for resource in page.items:
        current = resource.file.current
        if current.content_token.sha == revision.content_token.sha and current.name == (
            revision.name
        ):
            return resource
    return None
