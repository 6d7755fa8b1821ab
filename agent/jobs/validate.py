"""The Validating phase: resolve the function, fetch the inputs, write what the tool reads.

`Job → ValidatedJob`. Everything a tool needs is checked and on disk before it starts: the
installed variant for this host, the module's configuration when it needs one, the parameters
file (a JSON object), the job's resource and each `user_link` the parameters name by id, all
verified against their sha, the input document (agent/jobs/inputs.py), and the argv (split
before substitution; no shell ever sees a parameter).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from agent import jsontext
from agent.concurrently import all_of, both
from agent.humanize import human_bytes
from agent.jobs.context import JobContext
from agent.jobs.credentials import open_deliveries, write_credentials
from agent.jobs.errors import InputsDoNotFit, InvalidJob, ModuleUnavailable
from agent.jobs.inputs import (
    Delivered,
    Files,
    build_inputs,
    filled_by,
    link_ids,
    places,
    wants_resource,
)
from agent.jobs.sniff import HEAD_BYTES
from agent.jobs.transfers import TransferProgress
from agent.jobs.validators import FileFacts
from agent.jobs.workdir import WorkDir, safe_name
from agent.modules.catalog import FunctionVariantHint, NotInstalled, Resolved
from agent.protocol.manifest import FunctionSchema
from agent.protocol.placeholders import PlaceholderError, build_argv
from agent.registry.errors import DiskFull, IntegrityError, NotFound
from agent.registry.models import FileRevision, Job, Resource
from agent.registry.transfer import download_revision
from agent.secretfiles import write_secret

log = structlog.get_logger(__name__)

# A parameters file is a small JSON object; anything larger is refused before parsing.
MAX_PARAMETERS_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ValidatedJob:
    """A job ready to run: its variant, its work directory and its argv."""

    job: Job
    resolved: Resolved
    workdir: WorkDir
    argv: list[str]


async def validate(
    ctx: JobContext, job: Job, workdir: WorkDir, progress: TransferProgress | None = None
) -> ValidatedJob:
    """Check and prepare `job`; InvalidJob or ModuleUnavailable say what is wrong. The
    downloads of its input files are told to `progress` (transfers.py)."""
    resolved = resolve(ctx, job)
    config_path = _write_module_config(ctx, resolved, workdir)
    schema = resolved.variant.function_schema
    parameters, resource = await both(_fetch_parameters(ctx, job, workdir), _job_resource(ctx, job))
    tool_key = resolved.module.manifest.tool_key
    links = link_ids(schema, parameters)
    files = await _fetch_files(ctx, workdir, schema, resource, links, tool_key, progress)
    credentials = _credentials(ctx, job, workdir)
    inputs = build_inputs(schema, parameters, files, credentials)
    workdir.input_file.write_text(json.dumps(inputs, indent=2))
    resources = filled_by(inputs, files, job.model_id, links)  # for `version_of` outputs
    workdir.resources_file.write_text(json.dumps(resources))
    values = {
        "entrypoint": str(resolved.entrypoint),
        "function_name": resolved.function,
        "input_file": str(workdir.input_file),
        "output_file": str(workdir.output_file),
        "temp_dir": str(workdir.temp_dir),
    }
    if config_path is not None:
        values["module_config"] = str(config_path)
    try:
        argv = build_argv(resolved.variant.run_command, values)
    except PlaceholderError as e:
        msg = f"{resolved.module.key}: {e}"
        raise ModuleUnavailable(msg) from None
    return ValidatedJob(job, resolved, workdir, argv)


def _credentials(ctx: JobContext, job: Job, workdir: WorkDir) -> dict[str, Delivered]:
    """Open the credentials delivered with the claim and write them for the tool (0600)."""
    if not job.auth_deliveries:
        return {}
    if ctx.agent_key is None:
        msg = "the job carries credentials, but this agent has no key to open them"
        raise InvalidJob(msg)
    opened = open_deliveries(job.auth_deliveries, ctx.agent_key, datetime.now(UTC))
    types = {d.get("input_name"): d.get("function_auth_type") for d in job.auth_deliveries}
    return {
        name: Delivered(path, t if isinstance(t := types.get(name), str) else None)
        for name, path in write_credentials(workdir, opened).items()
    }


def resolve(ctx: JobContext, job: Job, *, check_versions: bool = True) -> Resolved:
    """The installed variant that runs `job` on this host, for the module version and tool
    version the job names; ModuleUnavailable says which versions are installed.

    `check_versions=False` is for a job resumed after a restart: it passed them when it was
    validated, and its tool may have run already; refusing it now would waste that run."""
    fn = job.function
    hint = FunctionVariantHint(fn.entrypoint, fn.run_command)
    try:
        resolved = ctx.catalog.resolve(fn.name, fn.module_name, ctx.host_os, hint)
    except NotInstalled as e:
        raise ModuleUnavailable(str(e)) from None
    if check_versions:
        _check_versions(ctx, job, resolved)
    return resolved


def _check_versions(ctx: JobContext, job: Job, resolved: Resolved) -> None:
    """ModuleUnavailable for another module version (unless the setting allows it: then a
    warning) or a tool version the installed variant lacks."""
    refusal = module_version_refusal(job, resolved)
    if refusal is not None and ctx.settings.allow_module_version_mismatch:
        log.warning(
            "job.module_version_differs",
            published=job.function.module_version,
            installed=resolved.module.version,
        )
        refusal = None
    refusal = refusal or tool_version_refusal(job, resolved)
    if refusal is not None:
        raise ModuleUnavailable(refusal)


def module_version_refusal(job: Job, resolved: Resolved) -> str | None:
    """Why a job published for another version of the module than the one installed cannot
    run (the setting `allow_module_version_mismatch` overrides it), or None."""
    published, installed = job.function.module_version, resolved.module.version
    if published.removeprefix("v") == installed.removeprefix("v"):
        return None
    key = resolved.module.key
    return (
        f"the job runs {job.function.name} of {key} {published}, but this agent has "
        f"{key} {installed} installed: install {published}, or set "
        "allow_module_version_mismatch = true to run it with the installed version"
    )


def tool_version_refusal(job: Job, resolved: Resolved) -> str | None:
    """Why a job for a tool version the installed variant does not list cannot run, or None:
    the version the job was submitted for when the registry says it, else every version its
    function was published with. A variant (and module) that lists none is not checked."""
    available = resolved.module.manifest.variant_tools(resolved.variant)
    if not available:
        return None
    if job.tool_version is not None:
        if job.tool_version in available:
            return None
        wanted = f"tool version {job.tool_version}"
    else:
        published = [t.tool_version for t in job.function.tool_versions or []]
        if not published or set(published) & set(available):
            return None
        wanted = f"tool versions {', '.join(published)}"
    return (
        f"the job asks for {wanted} of {job.function.name}; the installed "
        f"{resolved.module.key} {resolved.module.version} has {', '.join(available)}"
    )


def _write_module_config(ctx: JobContext, resolved: Resolved, workdir: WorkDir) -> Path | None:
    key = resolved.module.key
    config = ctx.settings.module_configurations.get(key)
    if config is None:
        if resolved.module.manifest.additional_configuration_required:
            msg = (
                f"module {key} needs configuration: add it under module_configurations "
                f'["{key}"] in the agent config, then restart the agent'
            )
            raise ModuleUnavailable(msg)
        return None
    write_secret(workdir.module_config, json.dumps(config).encode())
    return workdir.module_config


async def _download(
    ctx: JobContext,
    revision: FileRevision,
    dest: Path,
    what: str,
    *,
    cached: bool = False,
    progress: TransferProgress | None = None,
) -> None:
    """Download `revision` to `dest`, verified (through the input cache when `cached` and the
    agent has one); a cut connection resumes, bounded by `download_retry_limit` and
    `retry_budget` seconds without progress (agent/registry/download.py)."""
    settings = ctx.settings

    async def fetch(path: Path, resume: bool) -> int:
        if progress is not None:  # only what moves: a cache hit downloads nothing
            progress.expect(revision.size or 0)
        return await download_revision(
            ctx.client,
            revision,
            path,
            progress=None if progress is None else progress.add,
            retries=settings.download_retry_limit,
            budget=settings.retry_budget,
            resume=resume,
        )

    token = revision.content_token
    try:
        if cached and ctx.cache is not None:
            await ctx.cache.provide(
                token.sha, token.salt, revision.size, revision.name, dest, fetch
            )
        else:  # a partial file here is an earlier try's (validation redone): resumed
            await fetch(dest, True)
    except IntegrityError:
        msg = f"the {what} downloaded does not match its sha; it was corrupted or replaced"
        raise InvalidJob(msg) from None
    except NotFound as e:
        msg = f"the {what} is not in the registry's storage ({e.detail})"
        raise InvalidJob(msg) from None
    except DiskFull as e:
        raise InputsDoNotFit(_no_room(what, revision, e)) from None


def _no_room(what: str, revision: FileRevision, e: DiskFull) -> str:
    name = f" ({revision.name})" if revision.name else ""
    need = f"it needs {human_bytes(e.needed)}, " if e.needed is not None else ""
    return (
        f"no room on disk for the {what}{name}: {need}{human_bytes(e.free)} are free where it "
        f"was being written ({e.path}); the partial file was removed"
    )


async def _fetch_parameters(ctx: JobContext, job: Job, workdir: WorkDir) -> dict[str, Any]:
    if not job.file.revisions:
        return {}
    revision = job.file.current
    if revision.size is not None and revision.size > MAX_PARAMETERS_BYTES:
        msg = f"the parameters file is {revision.size} bytes; the limit is {MAX_PARAMETERS_BYTES}"
        raise InvalidJob(msg)
    dest = workdir.root / "parameters.json"
    await _download(ctx, revision, dest, "parameters file")
    try:
        parameters = jsontext.loads(dest.read_bytes())
    except (UnicodeDecodeError, ValueError) as e:
        msg = f"the parameters file is not JSON ({e}); it must be a JSON object"
        raise InvalidJob(msg) from None
    if not isinstance(parameters, dict):
        msg = f"the parameters file holds a JSON {type(parameters).__name__}; it must be an object"
        raise InvalidJob(msg)
    return parameters


async def _job_resource(ctx: JobContext, job: Job) -> Resource | None:
    if job.model_id is None:
        return None
    return await _read_resource(ctx, job.model_id, f"the job's resource {job.model_id}")


async def _fetch_files(
    ctx: JobContext,
    workdir: WorkDir,
    schema: FunctionSchema,
    resource: Resource | None,
    links: dict[str, str],
    tool_key: str | None,
    progress: TransferProgress | None,
) -> Files:
    """Download the job's resource and each linked resource (current revisions) into `in/`.

    Every resource is read first, so each destination is chosen before any download starts.
    The job's resource is not downloaded when every file input is given by id.
    """
    linked = await all_of(
        _read_resource(ctx, rid, f"the resource {rid} named for input {name}")
        for name, rid in links.items()
    )
    if resource is not None and not wants_resource(schema, set(links)):
        resource = None
    spot, spots = places(
        _file_name(resource) if resource is not None else None,
        {name: _file_name(found) for name, found in zip(links, linked, strict=True)},
    )
    jobs: list[tuple[FileRevision, Path, str]] = []
    if resource is not None and spot is not None:
        jobs.append((resource.file.current, spot, "model"))
    for name, found in zip(links, linked, strict=True):
        jobs.append((found.file.current, spots[name], f"linked resource for input {name}"))
    facts = await all_of(
        _download_facts(ctx, rev, workdir.inputs / where, what, progress)
        for rev, where, what in jobs
    )
    first = facts.pop(0) if resource is not None else None
    return Files(first, dict(zip(links, facts, strict=True)), tool_key)


def _file_name(resource: Resource) -> str:
    return safe_name(resource.file.current.name or "model", fallback="model")


async def _download_facts(
    ctx: JobContext,
    revision: FileRevision,
    dest: Path,
    what: str,
    progress: TransferProgress | None,
) -> FileFacts:
    """Download `revision` to `dest`, verified; what the file validators look at."""
    dest.parent.mkdir(exist_ok=True)
    await _download(ctx, revision, dest, what, cached=True, progress=progress)
    with dest.open("rb") as f:
        head = f.read(HEAD_BYTES)
    return FileFacts(dest, head, dest.stat().st_size)


async def _read_resource(ctx: JobContext, resource_id: str, what: str) -> Resource:
    """A model or an artifact: `Job.model_id` names either (the registry spec, 3.5), and so
    may a `user_link` given by id in the parameters.

    Read as a model first (the common case), then as an artifact; neither is an InvalidJob.
    """
    try:
        return await ctx.retrying(lambda: ctx.client.get_model(resource_id), what="read model")
    except NotFound:
        pass
    try:
        return await ctx.retrying(
            lambda: ctx.client.get_artifact(resource_id), what="read artifact"
        )
    except NotFound:
        msg = f"{what} is neither a model nor an artifact in the registry"
        raise InvalidJob(msg) from None
