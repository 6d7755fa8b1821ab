"""The Uploading phase: each output becomes an artifact, a model or a new revision, and the
job log an artifact.

`list[ProducedOutput] → UploadedOutputs`. Every upload carries `source_job_id`, so the
registry links it to the job (and refuses it with 409 once the job is canceled): artifacts
are created under the job's resource, `upload_as: model` outputs as models of their own, and
`version_of` outputs as a new revision of the model or artifact that filled the input they
name (`PUT /api/v2/models/{id}` or `/api/v2/artifacts/{id}`). A directory output is zipped
first and uploaded as `<name>.zip`, its links stored as links, never followed (pack.py).
An output above `multipart_threshold` goes in parts, journaled as they are acknowledged, so
a restarted agent sends only those missing (registry/multipart.py). Every registry call is
retried within the job's retry budget (and `upload_retry_limit` attempts); a registry still
unreachable after that raises the RegistryError (the runner waits and tries again; the
outputs stay on disk). Each output's revision is journaled before its create is sent and its
resource id after, so a create that may have succeeded before its answer was lost, or before
the agent was killed, is looked up before it is repeated (under the job's resource, by
`source_job_id` for models, among the revised resource's revisions):
neither a flaky connection nor a restart leaves a duplicate.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import structlog

from agent.concurrently import all_of, both
from agent.config import Settings
from agent.crashsafe.journal import Journal, Multipart
from agent.jobs.context import JobContext
from agent.jobs.errors import JobCanceled, UploadFailed
from agent.jobs.outputs import ProducedOutput
from agent.jobs.pack import Packed, zip_directory
from agent.jobs.transfers import TransferProgress
from agent.jobs.workdir import WorkDir, safe_name
from agent.logtail import copy_capped
from agent.protocol.states import JobStatus
from agent.registry.errors import Conflict, NotFound, RegistryError
from agent.registry.models import Job, NewRevision, Resource
from agent.registry.multipart import MultipartSettings, Session
from agent.registry.transfer import upload_revision
from agent.safeopen import create_new

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Uploaded:
    """One output as the registry now holds it."""

    name: str
    kind: str  # "artifact", "model", or "revision" (version_of: a new revision of resource_id)
    resource_id: str
    file_name: str


@dataclass(frozen=True)
class UploadedOutputs:
    """What the Uploading phase left in the registry."""

    outputs: list[Uploaded]
    log: Uploaded | None  # the tool's log, when there is one and the job has a model


async def upload(
    ctx: JobContext,
    job: Job,
    workdir: WorkDir,
    outputs: list[ProducedOutput],
    progress: TransferProgress | None = None,
) -> UploadedOutputs:
    """The outputs and, alongside them, the log (complete once the tool has exited); the
    outputs' bytes are told to `progress` as they are sent (transfers.py)."""
    uploaded, job_log = await both(
        upload_outputs(ctx, job, workdir, outputs, progress), upload_log(ctx, job, workdir)
    )
    return UploadedOutputs(uploaded, job_log)


async def upload_outputs(
    ctx: JobContext,
    job: Job,
    workdir: WorkDir,
    outputs: list[ProducedOutput],
    progress: TransferProgress | None = None,
) -> list[Uploaded]:
    """Upload every output, `upload_pool_size` at once; UploadFailed names one that failed."""
    return await all_of(
        (_upload_one(ctx, job, workdir, out, progress) for out in outputs),
        limit=ctx.settings.upload_pool_size,
    )


async def _upload_one(
    ctx: JobContext,
    job: Job,
    workdir: WorkDir,
    out: ProducedOutput,
    progress: TransferProgress | None,
) -> Uploaded:
    path = await _packed(out, workdir)
    kind: str = out.schema.upload_as or "artifact"
    if kind == "artifact" and job.model_id is None:
        kind = "model"  # no resource to put it under: it becomes a model of its own
    try:
        revising = None if out.revises is None else await _revising(ctx, out.revises)
        if revising is not None:
            kind = "revision"
        resource_id = await _create(
            ctx, job, path, kind, out.schema.display_name, revising, progress
        )
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


def multipart_settings(settings: Settings) -> MultipartSettings:
    """How outputs above `multipart_threshold` are split and retried."""
    return MultipartSettings(
        threshold=settings.multipart_threshold,
        chunksize=settings.multipart_chunksize,
        pool=settings.upload_pool_size,
        retries=settings.upload_retry_limit,
        budget=settings.retry_budget,
    )


@dataclass(frozen=True)
class JournaledParts:
    """The multipart ledger of one job's outputs, kept in the journal (by file name)."""

    journal: Journal
    job_id: str

    def recall(self, path: Path) -> Session | None:
        """The upload begun for this output, if its part URLs were kept."""
        found = self.journal.multipart(self.job_id, path.name)
        if found is None or not found.urls:
            return None
        return Session(
            found.sha,
            found.salt,
            found.size,
            found.mtime_ns,
            found.upload_id,
            found.part_size,
            dict(found.urls),
            dict(found.etags),
        )

    def begun(self, path: Path, session: Session) -> None:
        upload = Multipart(
            session.sha,
            session.salt,
            session.size,
            session.mtime_ns,
            session.upload_id,
            session.part_size,
            session.urls,
            {},
        )
        self.journal.multipart_begun(self.job_id, path.name, upload)

    def acknowledged(self, path: Path, number: int, etag: str) -> None:
        self.journal.part_acknowledged(self.job_id, path.name, number, etag)

    def finished(self, path: Path) -> None:
        self.journal.multipart_finished(self.job_id, path.name)


@dataclass(frozen=True)
class Revising:
    """The model or artifact a `version_of` output becomes a new revision of."""

    kind: str  # "model" or "artifact"
    id: str


async def _revising(ctx: JobContext, resource_id: str) -> Revising:
    """What kind of resource `resource_id` is: a model, else an artifact (as validate reads
    the job's resource). Read before the PUT because a registry may answer a route of the
    wrong kind with a misleading 403 (registry spec 3.5)."""
    try:
        await ctx.retrying(lambda: ctx.client.get_model(resource_id), what="read model")
    except NotFound:
        pass
    else:
        return Revising("model", resource_id)
    try:
        await ctx.retrying(lambda: ctx.client.get_artifact(resource_id), what="read artifact")
    except NotFound:
        msg = f"the resource {resource_id} to add a revision to is no longer in the registry"
        raise UploadFailed(msg) from None
    return Revising("artifact", resource_id)


async def _create(
    ctx: JobContext,
    job: Job,
    path: Path,
    kind: str,
    display_name: str | None,
    revising: Revising | None = None,
    progress: TransferProgress | None = None,
) -> str:
    """Create the resource for `path` (or its new revision of `revising`) once, whatever
    happened before; the resource's id."""
    earlier = ctx.journal.upload(job.id, path.name)
    if earlier is not None and earlier.resource_id is not None:
        log.info("job.output_already_uploaded", file=path.name, id=earlier.resource_id)
        return earlier.resource_id
    if earlier is not None:  # blobs stored, create sent or about to be: same revision again
        revision = NewRevision.model_validate_json(earlier.revision)
    else:
        revision = await _upload_blobs(ctx, job, path, display_name, progress)
        ctx.journal.uploading(job.id, path.name, revision.model_dump_json())
    attempts = 0 if earlier is None else 1

    async def create_once() -> Resource:
        nonlocal attempts
        attempts += 1
        if attempts > 1:  # the last one may have been carried out, its answer lost
            existing = await _already_created(ctx, job, revision, kind, revising)
            if existing is not None:
                log.info("job.output_found", file=path.name, kind=kind, id=existing.id)
                return existing
        return await _send(ctx, job, revision, kind, revising)

    resource = await ctx.retrying(
        create_once, what="create", retries=ctx.settings.upload_retry_limit
    )
    ctx.journal.uploaded(job.id, path.name, resource.id)
    return resource.id


async def _upload_blobs(
    ctx: JobContext,
    job: Job,
    path: Path,
    display_name: str | None,
    progress: TransferProgress | None,
) -> NewRevision:
    """Upload `path`'s blobs (in parts above the threshold, resumed from the journal), retried;
    the bytes told to `progress`, less those of an attempt that failed (sent again)."""
    if progress is not None:
        progress.expect(path.stat().st_size)

    async def attempt() -> NewRevision:
        sent = 0

        def count(n: int) -> None:
            nonlocal sent
            sent += n
            if progress is not None:
                progress.add(n)

        try:
            return await upload_revision(
                ctx.client,
                path,
                display_name=display_name,
                multipart=multipart_settings(ctx.settings),
                ledger=JournaledParts(ctx.journal, job.id),
                progress=count,
            )
        except BaseException:
            count(-sent)  # sent again by the next attempt (a resumed one says its parts)
            raise

    return await ctx.retrying(
        attempt, what=f"upload {path.name}", retries=ctx.settings.upload_retry_limit
    )


async def _send(
    ctx: JobContext, job: Job, revision: NewRevision, kind: str, revising: Revising | None
) -> Resource:
    """One create (or new revision), linked to the job by `source_job_id`."""
    client = ctx.client
    if revising is not None and revising.kind == "model":
        return await client.update_model(revising.id, revision, source_job_id=job.id)
    if revising is not None:
        return await client.update_artifact(revising.id, revision, source_job_id=job.id)
    if kind == "model" or job.model_id is None:
        return await client.create_model(revision, source_job_id=job.id)
    return await client.create_artifact(job.model_id, revision, source_job_id=job.id)


async def _already_created(
    ctx: JobContext, job: Job, revision: NewRevision, kind: str, revising: Revising | None
) -> Resource | None:
    """The resource an earlier attempt created (or revised), if its answer was lost or the
    agent was killed before the journal heard of it.

    Each upload hashes under a fresh salt, so a content sha names this upload alone: a match
    is our own earlier create, never another job's identical file. A new revision is looked
    for among the revised resource's revisions; a model among the models the job uploaded
    (`GET /api/v2/models?source_job_id=`); an artifact among those of the job's resource.
    """
    if revising is not None:
        read = ctx.client.get_model if revising.kind == "model" else ctx.client.get_artifact
        found = [await read(revising.id)]
    elif kind == "model" or job.model_id is None:
        found = (await ctx.client.list_models(source_job_id=job.id, size=100)).items
    else:
        found = (await ctx.client.list_artifacts(job.model_id, size=100)).items
    return next((r for r in found if _holds(r, revision)), None)


def _holds(resource: Resource, revision: NewRevision) -> bool:
    """Whether one of `resource`'s revisions is `revision` (same content sha and name)."""
    sha = revision.content_token.sha
    return any(
        r.content_token.sha == sha and r.name == revision.name for r in resource.file.revisions
    )
