"""Outputs that are models or new revisions, through the official SDK and our agent.

The SDK's `add_model`, `update_model` and `update_artifact` take `source_job_id`; the local
registry links what they upload to that job and refuses it with 409 once the job is
canceled. The SDK has no call that lists models by job, so the lookup by job
(`GET /api/v2/models?source_job_id=`, inferred) is made over plain HTTP; what it finds is read
back through the SDK. Our agent's outputs (`upload_as: model`, `version_of`) read the same.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.compat.test_sdk import FUNCTION, _new_agent
from tests.support.agentcli import agent, agent_env, submit_job
from tests.support.registry import RegistryProcess
from tests.tools import module

# The SDK's v2 calls warn that they are deprecated (see test_sdk.py).
pytestmark = pytest.mark.filterwarnings(r"ignore:.* is deprecated\.?:DeprecationWarning")


def models_of_job(reg: RegistryProcess, job_id: str) -> set[str]:
    """The ids `GET /api/v2/models?source_job_id=` lists."""
    request = urllib.request.Request(
        f"{reg.url}/api/v2/models?source_job_id={job_id}&size=100",
        headers={"Authorization": f"Bearer {reg.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return {m["id"] for m in json.loads(answer.read())["items"]}


def _uploading_job(sdk: Any, stl_file: Path) -> tuple[Any, Any]:
    """A job claimed and moved to Uploading by an SDK-driven agent, and its model."""
    agent_ = _new_agent(sdk)
    model = sdk.add_model(stl_file)
    job = sdk.add_job(model.id, function=FUNCTION, parameters={"scale": 1})
    for status in ("Claimed", "Validating", "Running", "Uploading"):
        sdk.update_job_status(job.id, status, agent_id=agent_.id)
    return job, model


def _file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sdk_uploads_with_source_job_id_are_found_by_their_job(
    sdk: Any, published: Any, registry_process: RegistryProcess, stl_file: Path, tmp_path: Path
) -> None:
    job, model = _uploading_job(sdk, stl_file)
    made = sdk.add_model(_file(tmp_path, "made.txt", "new"), source_job_id=job.id)
    # The legacy client reuses the model's content salt for a new revision.
    sdk.update_model(model.id, _file(tmp_path, "bracket-2.stl", "second"), source_job_id=job.id)
    artifact = sdk.add_artifact(model.id, _file(tmp_path, "a.txt", "a"))
    sdk.update_artifact(artifact.id, _file(tmp_path, "a-2.txt", "a2"), source_job_id=job.id)
    sdk.add_model(_file(tmp_path, "unrelated.txt", "not the job's"))

    assert models_of_job(registry_process, job.id) == {made.id, model.id}
    revised = sdk.get_model(model.id).file.revisions
    assert [r.name for r in revised] == ["bracket.stl", "bracket-2.stl"]
    assert revised[-1].read_bytes() == b"second"
    assert sdk.get_artifact(artifact.id).file.revisions[-1].read_bytes() == b"a2"
    assert sdk.get_model(made.id).file.revisions[-1].read_bytes() == b"new"


def test_sdk_outputs_of_a_canceled_job_are_refused(
    sdk: Any, published: Any, registry_process: RegistryProcess, stl_file: Path, tmp_path: Path
) -> None:
    from istari_digital_client.legacy.exceptions import ConflictException

    job, model = _uploading_job(sdk, stl_file)
    artifact = sdk.add_artifact(model.id, _file(tmp_path, "a.txt", "a"))
    sdk.update_job_status(job.id, "Canceled")
    late = _file(tmp_path, "late.txt", "too late")
    with pytest.raises(ConflictException):
        sdk.add_model(late, source_job_id=job.id)
    with pytest.raises(ConflictException):
        sdk.update_model(model.id, late, source_job_id=job.id)
    with pytest.raises(ConflictException):
        sdk.update_artifact(artifact.id, late, source_job_id=job.id)
    assert len(sdk.get_model(model.id).file.revisions) == 1
    assert len(sdk.get_artifact(artifact.id).file.revisions) == 1
    assert models_of_job(registry_process, job.id) == set()


def test_sdk_reads_the_model_and_the_revision_our_agent_made(
    sdk: Any, registry_process: RegistryProcess, tmp_path: Path
) -> None:
    module.install(tmp_path / "modules")
    job_id = submit_job(registry_process, tmp_path, "derive", {})
    done = agent(agent_env(registry_process, tmp_path), "run", "--until-idle")
    assert done.returncode == 0, done.stderr

    job = sdk.get_job(job_id)
    assert job.status_history[-1].name == "Completed"
    revisions = sdk.get_model(job.model_id).file.revisions
    assert [r.name for r in revisions] == ["part.txt", "next-part.txt"]
    assert revisions[-1].read_bytes() == b"next: model"
    (derived,) = models_of_job(registry_process, job_id) - {job.model_id}
    assert sdk.get_model(derived).file.revisions[-1].read_bytes() == b"derived from model"
    assert f"derived (model {derived})" in job.status_history[-1].message
