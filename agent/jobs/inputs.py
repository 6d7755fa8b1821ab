"""The tool's input document from a job's parameters, files and credentials, checked (pure).

Every declared `parameter` comes from the job's parameters file. A `user_link` may be named
there too, by the id of a model or an artifact (`"sheet": "<id>"`); validate.py downloads it.
The job's resource fills one file input: the first required `user_model` or `user_link` input
(not already given by id) whose validators its file fits, else the first optional one that
fits. `auth_info` inputs take the credentials delivered with the claim. Missing required
parameters, parameters the function does not declare, and values that fail their
`validation_types` (agent/jobs/validators.py) are refused with one message that lists what the
function accepts; a file or credential that fits none of its validators is refused naming the
input, the file and what was expected. See docs/agent.md, "Inputs and validators".
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.jobs.errors import InvalidJob
from agent.jobs.validators import FileFacts, check_auth, check_file, check_parameter, json_type
from agent.jobs.workdir import safe_name
from agent.protocol.manifest import FunctionSchema, InputSchema, InputType

InputDocument = dict[str, dict[str, Any]]

_FILE_TYPES = (InputType.USER_MODEL, InputType.USER_LINK)


@dataclass(frozen=True)
class Delivered:
    """A credential written for the tool, and the `function_auth_type` it was delivered as."""

    path: Path
    auth_type: str | None = None


@dataclass(frozen=True)
class Files:
    """The downloaded files: the job's resource, and each link given by id in the parameters."""

    resource: FileFacts | None = None
    links: Mapping[str, FileFacts] | None = None
    tool_key: str | None = None  # the manifest's, for `@extension:istari_{tool_key}_metadata`


_FILE_VALUES = frozenset({InputType.USER_MODEL.value, InputType.USER_LINK.value})


def link_ids(schema: FunctionSchema, parameters: Mapping[str, Any]) -> dict[str, str]:
    """The `user_link` inputs the parameters name, each with the resource id (a UUID) it gives."""
    ids: dict[str, str] = {}
    for name, spec in schema.inputs.items():
        if spec.type is InputType.USER_LINK and name in parameters:
            value = parameters[name]
            if not isinstance(value, str) or not _is_uuid(value.strip()):
                shown = repr(value) if isinstance(value, str) else f"a JSON {json_type(value)}"
                msg = (
                    f"input {name} is a user_link: the parameters give it by the id of a model "
                    f'or an artifact ("{name}": "<uuid>"), not {shown}'
                )
                raise InvalidJob(msg)
            ids[name] = value.strip()
    return ids


def _is_uuid(text: str) -> bool:
    """Registry ids are UUIDs (registry spec §1); anything else is refused before any request."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def wants_resource(schema: FunctionSchema, given: set[str]) -> bool:
    """Whether a file input is left for the job's resource once the links `given` by id are in."""
    return any(s.type in _FILE_TYPES and n not in given for n, s in schema.inputs.items())


def places(resource: str | None, links: Mapping[str, str]) -> tuple[Path | None, dict[str, Path]]:
    """Where each file goes under `in/`, from its (safe) file name: the resource's, each link's.

    Every file keeps its own name, as the platform does (`in/<original name>`); a name already
    taken (two resources with one file name) goes to `in/<input name>/<name>` instead.
    """
    taken = {resource} if resource is not None else set()
    spots: dict[str, Path] = {}
    for input_name, name in links.items():
        folder = safe_name(input_name, fallback="link")
        spots[input_name] = Path(folder, name) if name in taken else Path(name)
        taken.add(name)
    return (Path(resource) if resource is not None else None), spots


def build_inputs(
    schema: FunctionSchema,
    parameters: Mapping[str, Any],
    files: Files,
    credentials: Mapping[str, Delivered] | None = None,
) -> InputDocument:
    """`{name: {"type": ..., "value": ...}}` for the tool, or InvalidJob saying what is wrong."""
    declared = {n: s for n, s in schema.inputs.items() if s.type is InputType.PARAMETER}
    links = {n: s for n, s in schema.inputs.items() if s.type is InputType.USER_LINK}
    problems = _parameter_problems(declared, set(links), parameters)
    if problems:
        accepted = [_describe(n, s) for n, s in declared.items()]
        accepted += [f"{n} (a model or artifact id, user_link)" for n in links]
        msg = f"{'; '.join(problems)} (this function accepts: {', '.join(accepted) or 'none'})"
        raise InvalidJob(msg)
    doc: InputDocument = {
        name: {"type": InputType.PARAMETER.value, "value": parameters[name]}
        for name in declared
        if name in parameters
    }
    doc.update(_file_inputs(schema, files))
    doc.update(_auth_inputs(schema, credentials or {}))
    return doc


def filled_by(
    doc: InputDocument, files: Files, job_resource: str | None, links: Mapping[str, str]
) -> dict[str, str]:
    """Input name -> id of the model or artifact whose file fills it in `doc` (what an
    output's `version_of` may name): the job's resource where it went, and each link by id."""
    filled = dict(links)
    if files.resource is not None and job_resource is not None:
        where = str(files.resource.path)
        for name, entry in doc.items():
            if name not in links and entry.get("type") in _FILE_VALUES and entry["value"] == where:
                filled[name] = job_resource
    return filled


def _parameter_problems(
    declared: Mapping[str, InputSchema], links: set[str], parameters: Mapping[str, Any]
) -> list[str]:
    problems: list[str] = []
    missing = [n for n, s in declared.items() if not s.optional and n not in parameters]
    if missing:
        problems.append(f"missing required parameter(s): {', '.join(missing)}")
    extra = sorted(set(parameters) - set(declared) - links)
    if extra:
        problems.append(f"unknown parameter(s): {', '.join(extra)}")
    for name, spec in declared.items():
        if name in parameters:
            problem = check_parameter(parameters[name], spec.validation_types)
            if problem:
                problems.append(f"parameter {name}: {problem}")
    return problems


def _describe(name: str, spec: InputSchema) -> str:
    kinds = "|".join(spec.validation_types) or "any"
    return f"{name} ({kinds}{', optional' if spec.optional else ''})"


def _file_inputs(schema: FunctionSchema, files: Files) -> InputDocument:
    doc: InputDocument = {}
    given = dict(files.links or {})
    for name, facts in given.items():
        spec = schema.inputs[name]
        problem = check_file(facts, spec.validation_types, files.tool_key)
        if problem:
            msg = f"input {name}: {problem} (the resource named for it in the parameters)"
            raise InvalidJob(msg)
        doc[name] = {"type": spec.type.value, "value": str(facts.path)}
    target = _resource_input(schema, files, set(given))
    if target is not None and files.resource is not None:
        doc[target] = {"type": schema.inputs[target].type.value, "value": str(files.resource.path)}
    for name, spec in schema.inputs.items():
        if spec.type in _FILE_TYPES and name not in doc and not spec.optional:
            raise InvalidJob(_unbound(name, spec, files.resource, target))
    return doc


def _resource_input(schema: FunctionSchema, files: Files, given: set[str]) -> str | None:
    """The input the job's resource fills: required before optional, the first that fits.

    None when the function has no file input left for it (the resource is then not passed).
    """
    resource = files.resource
    if resource is None:
        return None
    open_inputs = [
        (n, s) for n, s in schema.inputs.items() if s.type in _FILE_TYPES and n not in given
    ]
    if not open_inputs:
        return None
    ordered = sorted(open_inputs, key=lambda p: bool(p[1].optional))  # stable: required first
    for name, spec in ordered:
        if check_file(resource, spec.validation_types, files.tool_key) is None:
            return name
    name, spec = ordered[0]
    problem = check_file(resource, spec.validation_types, files.tool_key)
    msg = f"input {name}: {problem} (the job's resource)"
    raise InvalidJob(msg)


def _unbound(name: str, spec: InputSchema, resource: FileFacts | None, target: str | None) -> str:
    if spec.type is InputType.USER_LINK:
        return (
            f"Function inputs ['{name}'] not provided: give the id of a model or an artifact "
            f'for it in the parameters ("{name}": "<uuid>"), or run the job on its metadata file'
        )
    if resource is None or target is None:
        return f"input {name} needs a model, and the job has none"
    return f"input {name} needs a second model; a job carries one (it went to input {target})"


def _auth_inputs(schema: FunctionSchema, credentials: Mapping[str, Delivered]) -> InputDocument:
    doc: InputDocument = {}
    for name, spec in schema.inputs.items():
        if spec.type is not InputType.AUTH_INFO:
            continue
        if name in credentials:
            delivered = credentials[name]
            problem = check_auth(delivered.auth_type, spec.validation_types)
            if problem:
                msg = f"input {name}: {problem}"
                raise InvalidJob(msg)
            doc[name] = {"type": spec.type.value, "value": str(delivered.path)}
        elif not spec.optional:
            raise InvalidJob(_no_credential(name))
    return doc


def _no_credential(name: str) -> str:
    return (
        f"Function inputs ['{name}'] not provided: no credential was delivered for it "
        "(bind a stored credential to it when submitting: auth_bindings; if one is bound, "
        "the registry delivers it only with the claim's answer, which this run of the "
        "agent did not see after a restart: submit the job again)"
    )
