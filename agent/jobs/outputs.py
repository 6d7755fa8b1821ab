"""The tool's output document, checked against the schema and the work directory.

The tool writes a JSON array of `{"name", "type", "path"}` entries (`value` is accepted for
`path`, as modules in the wild use both). Each name must be a declared output, each required
output must be present, and each path must exist inside the job's work directory once every
symlink is resolved, so a tool cannot make the agent upload files it was not given, and be a
regular file or a directory (whose links are stored as links: pack.py).
Relative paths are relative to the tool's working directory (`{temp_dir}`).

An output with `version_of: <input>` becomes a new revision of the model or artifact that
filled that input (our reading, inferred: docs/agent.md); which resource filled which input
is handed in (`resource_inputs`), and a `version_of` that names no such input is refused
before anything is uploaded, saying why.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import jsontext
from agent.jobs.errors import ModuleUnavailable, ToolFailed, UploadFailed
from agent.jobs.workdir import WorkDir
from agent.protocol.manifest import FunctionSchema, InputType, OutputSchema
from agent.safeopen import open_regular

MAX_OUTPUT_DOCUMENT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ProducedOutput:
    """One output file or directory the tool produced, ready to upload."""

    name: str
    path: Path  # resolved, inside the work directory
    schema: OutputSchema
    revises: str | None = None  # version_of: the model or artifact it is a new revision of

    @property
    def is_dir(self) -> bool:
        return self.path.is_dir()


# The input types a registry resource fills (a model or an artifact; a link by resource id).
RESOURCE_INPUTS = frozenset({InputType.USER_MODEL, InputType.USER_LINK})
_RESOURCE_INPUTS_HINT = "it must name a user_model or user_link input"


def resource_inputs(workdir: WorkDir) -> dict[str, str]:
    """Input name -> id of the model or artifact that filled it in this job, as Validating
    recorded it (`inputs.filled_by`): the job's resource, and each `user_link` given by id.

    A work directory without the record (made by an older release) gives none.
    """
    try:
        recorded = jsontext.loads(workdir.resources_file.read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(recorded, dict):
        return {}
    return {k: v for k, v in recorded.items() if isinstance(k, str) and isinstance(v, str)}


def version_targets(schema: FunctionSchema, resources: Mapping[str, str]) -> dict[str, str]:
    """Output name -> id of the resource each `version_of` output is a new revision of.

    A `version_of` naming no input, or an input no resource fills (a parameter, a
    credential), is the function's mistake (ModuleUnavailable: `manifest_error`); one naming
    a resource input this job left empty cannot be uploaded (UploadFailed).
    """
    targets: dict[str, str] = {}
    for out in schema.outputs:
        if out.version_of is None:
            continue
        spec = schema.inputs.get(out.version_of)
        where = f"output {out.name} is declared a new revision of input {out.version_of!r}"
        if spec is None or spec.type not in RESOURCE_INPUTS:
            what = "no input of the function" if spec is None else f"an input of type {spec.type}"
            msg = f"{where} (version_of), but that is {what}; {_RESOURCE_INPUTS_HINT}"
            raise ModuleUnavailable(msg)
        if out.version_of not in resources:
            msg = f"{where} (version_of), but no model or artifact filled it in this job"
            raise UploadFailed(msg)
        targets[out.name] = resources[out.version_of]
    return targets


def read_outputs(
    schema: FunctionSchema, workdir: WorkDir, resources: Mapping[str, str] | None = None
) -> list[ProducedOutput]:
    """The outputs listed in the tool's output file; ToolFailed says what is wrong with it.

    `resources` (input name -> resource id, `resource_inputs`) resolves `version_of`.
    """
    revises = version_targets(schema, resources or {})
    entries = _load(workdir.output_file)
    declared = {o.name: o for o in schema.outputs}
    produced = [_entry(i, e, declared, workdir, revises) for i, e in enumerate(entries)]
    missing = [n for n, o in declared.items() if o.required and n not in {p.name for p in produced}]
    if missing:
        msg = f"the tool did not produce required output(s): {', '.join(missing)}"
        raise ToolFailed(msg)
    return produced


def _load(path: Path) -> list[Any]:
    hint = 'a JSON array of {"name": ..., "type": "file", "path": ...}'
    try:
        with open_regular(path) as f:  # not through a link, and not a FIFO that never ends
            size = os.fstat(f.fileno()).st_size
            if size > MAX_OUTPUT_DOCUMENT_BYTES:
                msg = f"the output file is {size} bytes; the limit is {MAX_OUTPUT_DOCUMENT_BYTES}"
                raise ToolFailed(msg)
            raw = f.read()
    except FileNotFoundError:
        msg = f"the tool exited 0 but wrote no output file ({path.name}); it must write {hint}"
        raise ToolFailed(msg) from None
    except OSError as e:
        msg = f"the output file cannot be read ({e.strerror}); it must be a regular file: {hint}"
        raise ToolFailed(msg) from None
    try:
        doc = jsontext.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        msg = f"the output file is not valid JSON ({e}); it must be {hint}"
        raise ToolFailed(msg) from None
    if not isinstance(doc, list):
        msg = f"the output file holds a JSON {type(doc).__name__}; it must be {hint}"
        raise ToolFailed(msg)
    return doc


def _entry(
    index: int,
    entry: Any,
    declared: dict[str, OutputSchema],
    workdir: WorkDir,
    revises: Mapping[str, str],
) -> ProducedOutput:
    where = f"output file entry {index}"
    if not isinstance(entry, dict):
        msg = f"{where} is not an object"
        raise ToolFailed(msg)
    name = entry.get("name")
    if name not in declared:
        names = ", ".join(declared) or "none"
        msg = f"{where} names output {name!r}, which the function does not declare ({names})"
        raise ToolFailed(msg)
    raw = entry.get("path", entry.get("value"))
    if not isinstance(raw, str) or not raw:
        msg = f"{where} ({name}) has no path"
        raise ToolFailed(msg)
    path = Path(raw) if Path(raw).is_absolute() else workdir.temp_dir / raw
    if not workdir.contains(path):
        msg = f"output {name} is outside the job's work directory ({raw}); it was not uploaded"
        raise ToolFailed(msg)
    if workdir.module_config.is_relative_to(path.resolve()):
        msg = f"output {name} would include the module configuration; it was not uploaded"
        raise ToolFailed(msg)
    if not path.exists():
        msg = f"output {name} does not exist: {raw}"
        raise ToolFailed(msg)
    resolved = path.resolve()
    if not (resolved.is_dir() or resolved.is_file()):  # a FIFO would block its reader forever
        msg = f"output {name} is not a regular file or a directory ({raw}); it was not uploaded"
        raise ToolFailed(msg)
    return ProducedOutput(str(name), resolved, declared[str(name)], revises.get(str(name)))
