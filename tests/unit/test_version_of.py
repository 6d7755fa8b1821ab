"""`version_of`: which resource each such output becomes a new revision of, or why none (pure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.jobs.errors import JobError
from agent.jobs.inputs import Files, build_inputs, filled_by
from agent.jobs.outcome import Reason
from agent.jobs.outputs import resource_inputs, version_targets
from agent.jobs.validators import FileFacts
from agent.jobs.workdir import WorkDir
from agent.protocol.manifest import FunctionSchema

MODEL_ID = "6f1c2f1e-6d1f-4c1e-9a51-0d7d2b9f4a10"


def schema(outputs: list[dict[str, Any]], **inputs: dict[str, Any]) -> FunctionSchema:
    return FunctionSchema.model_validate({"inputs": inputs, "outputs": outputs})


def out(name: str, version_of: str | None = None) -> dict[str, Any]:
    return {"name": name, "type": "file", "required": True, "version_of": version_of}


MODEL = {"type": "user_model", "validation_types": ["@extension:txt"]}
OPTIONAL_MODEL = {"type": "user_model", "validation_types": ["@extension:txt"], "optional": True}
PARAM = {"type": "parameter", "validation_types": ["@string"]}
AUTH = {"type": "auth_info", "validation_types": ["@token:service"]}


LINK_ID = "0b0c2f1e-6d1f-4c1e-9a51-0d7d2b9f4a11"


def filled(s: FunctionSchema, job_resource: str | None, links: dict[str, str] | None = None,
           **parameters: Any) -> dict[str, str]:  # fmt: skip
    """What Validating records: build the input document, then who filled what."""
    files = Files(resource=FileFacts(Path("/w/in/part.txt"), b"x", 1) if job_resource else None)
    doc = build_inputs(s, parameters, files)
    return filled_by(doc, files, job_resource, links or {})


def test_the_jobs_resource_fills_the_input_the_input_document_gives_it() -> None:
    s = schema([], extra=OPTIONAL_MODEL, part=MODEL, label=PARAM)
    assert filled(s, MODEL_ID, label="x") == {"part": MODEL_ID}  # the first required one
    assert filled(schema([], label=PARAM), None, label="x") == {}
    assert filled(s, MODEL_ID, {"extra": LINK_ID}, label="x") == {
        "part": MODEL_ID, "extra": LINK_ID,
    }  # fmt: skip


def test_the_record_written_at_validating_is_read_back(tmp_path: Path) -> None:
    workdir = WorkDir.create(tmp_path, "job")
    assert resource_inputs(workdir) == {}  # a work directory from before the record
    workdir.resources_file.write_text(json.dumps({"part": MODEL_ID}))
    assert resource_inputs(workdir) == {"part": MODEL_ID}
    workdir.resources_file.write_text("[1]")
    assert resource_inputs(workdir) == {}


def test_a_version_of_output_revises_the_resource_of_the_input_it_names() -> None:
    s = schema([out("report"), out("next", "part")], part=MODEL)
    assert version_targets(s, filled(s, MODEL_ID)) == {"next": MODEL_ID}
    assert version_targets(schema([out("report")], part=MODEL), {}) == {}


@pytest.mark.parametrize(
    ("names", "says", "reason"),
    [
        ("nope", "but that is no input of the function", Reason.MANIFEST_ERROR),
        ("label", "but that is an input of type parameter", Reason.MANIFEST_ERROR),
        ("key", "but that is an input of type auth_info", Reason.MANIFEST_ERROR),
        ("extra", "but no model or artifact filled it in this job", Reason.UPLOAD_FAILED),
    ],
)
def test_a_version_of_naming_no_filled_resource_input_is_refused_saying_why(
    names: str, says: str, reason: Reason
) -> None:
    s = schema([out("next", names)], part=MODEL, extra=OPTIONAL_MODEL, label=PARAM, key=AUTH)
    with pytest.raises(JobError) as info:
        version_targets(s, {"part": MODEL_ID})  # what Validating recorded (see above)
    assert info.value.reason is reason
    assert f"output next is declared a new revision of input {names!r} (version_of), " in str(
        info.value
    )
    assert says in str(info.value)
