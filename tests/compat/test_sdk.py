"""The official SDK (`istari-digital-client`) against a real local registry process.

Whatever the SDK sends must be accepted and whatever it parses must parse: each test walks
one of the flows users and agents run, through the SDK's public methods only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.compat import EXAMPLE_MANIFEST

FUNCTION = "@compat:measure"

# The v2 model/artifact routes are deprecated on the platform (v3 has no source_job_id, so
# agents still use them); the SDK says so with a DeprecationWarning on every call.
pytestmark = pytest.mark.filterwarnings(r"ignore:.* is deprecated\.?:DeprecationWarning")


def _new_agent(sdk: Any, modules: bool = True) -> Any:
    from istari_digital_client.legacy.v2.models.new_agent import NewAgent
    from istari_digital_client.legacy.v2.models.new_agent_module_version import (
        NewAgentModuleVersion,
    )
    from istari_digital_client.legacy.v2.models.new_agent_status import NewAgentStatus

    agent = sdk.register_agent(
        NewAgent(agent_version="0.1.0", host_os="Ubuntu 22.04", worker_mode="polling")
    )
    if modules:
        sdk.update_agent_modules(
            agent.id,
            [
                NewAgentModuleVersion(
                    module_name=EXAMPLE_MANIFEST["module_key"], module_version="1.0.0"
                )
            ],
        )
    sdk.update_agent_status(agent.id, NewAgentStatus(name="Idle"))
    return agent


def _available_ids(sdk: Any, agent_id: str) -> set[str]:
    page = sdk.get_agent_available_jobs(agent_id, page=1, size=100)
    return {job.id for job in page.items}


def test_readiness_is_healthy(sdk: Any) -> None:
    report = sdk.readiness_check()
    assert report.healthy is True


def test_model_round_trips_byte_for_byte(sdk: Any, stl_file: Path) -> None:
    model = sdk.add_model(stl_file, description="a bracket", display_name="Bracket")
    again = sdk.get_model(model.id)
    assert again.file.revisions[-1].read_bytes() == stl_file.read_bytes()
    revision = again.file.revisions[-1]
    assert revision.name == "bracket.stl"
    assert revision.extension == "stl"
    assert revision.size == stl_file.stat().st_size
    assert revision.description == "a bracket"


def test_job_with_parameters_can_be_read_back(sdk: Any, published: Any, stl_file: Path) -> None:
    model = sdk.add_model(stl_file)
    job = sdk.add_job(model.id, function=FUNCTION, parameters={"scale": 2.5, "units": "mm"})
    fetched = sdk.get_job(job.id)
    assert fetched.function.name == FUNCTION
    assert fetched.function.module_name == EXAMPLE_MANIFEST["module_key"]
    assert fetched.model_id == model.id
    assert fetched.status_history[-1].name == "Pending"
    import json

    assert json.loads(fetched.file.revisions[-1].read_bytes()) == {"scale": 2.5, "units": "mm"}
    listed = sdk.list_jobs(model_id=model.id, size=10, include_total=False)
    assert [j.id for j in listed.items] == [job.id]


def test_agent_walks_a_job_to_completed_with_an_artifact(
    sdk: Any, published: Any, stl_file: Path, tmp_path: Path
) -> None:
    from istari_digital_client.legacy.v2.models.job_status_message import JobStatusMessage
    from istari_digital_client.legacy.v2.models.new_agent_display_name import (
        NewAgentDisplayName,
    )

    agent = _new_agent(sdk)
    sdk.update_agent_display_name(agent.id, NewAgentDisplayName(display_name="compat agent"))
    model = sdk.add_model(stl_file)
    job = sdk.add_job(model.id, function=FUNCTION, parameters={"scale": 1})
    assert job.id in _available_ids(sdk, agent.id)

    claimed = sdk.update_job_status(job.id, "Claimed", agent_id=agent.id)
    assert claimed.status_history[-1].name == "Claimed"
    assert claimed.agent_information.agent_id == agent.id
    assert claimed.agent_information.display_name == "compat agent"
    assert job.id not in _available_ids(sdk, agent.id)

    for status in ("Validating", "Running", "Uploading"):
        sdk.update_job_status(job.id, status, agent_id=agent.id)
    report = tmp_path / "report.json"
    report.write_text('{"triangles": 12}')
    artifact = sdk.add_artifact(model.id, report, source_job_id=job.id)
    sdk.update_job_status(
        job.id, "Completed", agent_id=agent.id, job_status_message=JobStatusMessage(message="ok")
    )

    final = sdk.get_job(job.id)
    assert [s.name for s in final.status_history] == [
        "Created", "Pending", "Claimed", "Validating", "Running", "Uploading", "Completed",
    ]  # fmt: skip
    assert final.status_history[-1].message == "ok"
    assert sdk.get_artifact(artifact.id).file.revisions[-1].read_bytes() == report.read_bytes()
    listed = sdk.list_model_artifacts(model.id)
    assert [a.id for a in listed.items] == [artifact.id]
    assert sdk.get_agent(agent.id).status_history[-1].name == "Idle"


def test_second_claim_and_illegal_moves_are_conflicts(
    sdk: Any, published: Any, stl_file: Path
) -> None:
    from istari_digital_client.legacy.exceptions import ConflictException

    first, second = _new_agent(sdk), _new_agent(sdk)
    job = sdk.add_job(sdk.add_model(stl_file).id, function=FUNCTION, parameters={})
    sdk.update_job_status(job.id, "Claimed", agent_id=first.id)
    with pytest.raises(ConflictException):
        sdk.update_job_status(job.id, "Claimed", agent_id=second.id)
    with pytest.raises(ConflictException):
        sdk.update_job_status(job.id, "Running", agent_id=second.id)
    with pytest.raises(ConflictException):
        sdk.update_job_status(job.id, "Created", agent_id=first.id)
    assert sdk.get_job(job.id).status_history[-1].agent_id == first.id


def test_artifact_for_a_canceled_job_is_refused(
    sdk: Any, published: Any, stl_file: Path, tmp_path: Path
) -> None:
    from istari_digital_client.legacy.exceptions import ConflictException

    agent = _new_agent(sdk)
    model = sdk.add_model(stl_file)
    job = sdk.add_job(model.id, function=FUNCTION, parameters={})
    sdk.update_job_status(job.id, "Claimed", agent_id=agent.id)
    sdk.update_job_status(job.id, "Canceled")
    out = tmp_path / "late.txt"
    out.write_text("too late")
    with pytest.raises(ConflictException):
        sdk.add_artifact(model.id, out, source_job_id=job.id)
    assert sdk.list_model_artifacts(model.id).items == []


def test_pool_routes_a_job_to_members_only(sdk: Any, published: Any, stl_file: Path) -> None:
    from istari_digital_client.legacy.v2.models.new_agent_pool import NewAgentPool
    from istari_digital_client.legacy.v2.models.new_agent_pool_agent_membership import (
        NewAgentPoolAgentMembership,
    )

    member, outsider = _new_agent(sdk), _new_agent(sdk)
    pool = sdk.create_agent_pool(NewAgentPool(name="cad-workstations", description=None))
    sdk.update_agent_pool_agent(pool.id, NewAgentPoolAgentMembership(agent_id=member.id))
    model = sdk.add_model(stl_file)

    at_submit = sdk.add_job(
        model.id, function=FUNCTION, parameters={}, assigned_agent_pool_id=pool.id
    )
    later = sdk.add_job(model.id, function=FUNCTION, parameters={})
    from istari_digital_client.legacy.v2.models.new_job_assigned_agent_pool import (
        NewJobAssignedAgentPool,
    )

    sdk.update_job_assigned_agent_pool(later.id, NewJobAssignedAgentPool(agent_pool_id=pool.id))

    assert {at_submit.id, later.id} <= _available_ids(sdk, member.id)
    assert not {at_submit.id, later.id} & _available_ids(sdk, outsider.id)
    fetched = sdk.get_agent_pool(pool.id)
    assert fetched.unfinished_job_count == 2
    assert [m.agent_id for m in fetched.agent_memberships] == [member.id]
    assert sdk.get_agent(member.id).agent_pools == [pool.id]
    assert pool.id in {p.id for p in sdk.list_agent_pools(size=100).items}
    sdk.update_job_status(at_submit.id, "Claimed", agent_id=member.id)
    assert sdk.get_job(at_submit.id).status_history[-1].name == "Claimed"


def test_jobs_need_an_agent_with_the_module(sdk: Any, published: Any, stl_file: Path) -> None:
    bare = _new_agent(sdk, modules=False)
    job = sdk.add_job(sdk.add_model(stl_file).id, function=FUNCTION, parameters={})
    assert job.id not in _available_ids(sdk, bare.id)
    schema = sdk.get_function_schema(sdk.get_job(job.id).function.function_schema)
    assert {i.key for i in schema.inputs} == {"part", "scale"}
    assert [o.name for o in schema.outputs] == ["report"]
