"""The whole job contract with a real `istari-agent run` process (issue 22, item 1), read back
through the official SDK: a job on the artifact an earlier job extracted, a `user_link` input
given the job's metadata file, and an `upload_as: model` output found by the job that made it
(and a `version_of` output: the job's model's next revision)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from agent.jobs.outcome import EXIT_CODES, Reason
from agent.registry.client import RegistryClient
from agent.registry.models import Resource
from agent.registry.transfer import upload_revision
from agent.submit import Submission, submit
from tests.support.agentcli import agent, agent_env
from tests.support.registry import RegistryProcess
from tests.tools import module

pytestmark = pytest.mark.filterwarnings(r"ignore:.* is deprecated\.?:DeprecationWarning")

DECK = "deck.istari_behaviours_metadata_presentation"
METADATA = b'{"file_id": "1AbC", "kind": "presentation"}'


class Registry:
    """Submit jobs and read what the agent left, over our client (the SDK reads contents)."""

    def __init__(self, reg: RegistryProcess, root: Path) -> None:
        self.reg, self.root = reg, root

    def run(self, call: Any) -> Any:
        async def go() -> Any:
            async with RegistryClient(self.reg.url, self.reg.token) as client:
                return await call(client)

        return asyncio.run(go())

    def submit(self, behaviour: str, name: str = "part.txt", content: bytes = b"the part",
               params: dict[str, Any] | None = None) -> str:  # fmt: skip
        model = self.root / "models" / name
        model.parent.mkdir(parents=True, exist_ok=True)
        model.write_bytes(content)

        async def go(client: RegistryClient) -> str:
            await client.publish_module(module.manifest())
            return (await submit(client, Submission(model, module.fn(behaviour), params or {}))).id

        return str(self.run(go))

    def artifacts(self, resource_id: str) -> dict[str, Resource]:
        async def go(client: RegistryClient) -> dict[str, Resource]:
            page = await client.list_artifacts(resource_id)
            return {a.file.current.name or "": a for a in page.items}

        return dict(self.run(go))


def test_the_contract_end_to_end_with_a_real_agent_process(
    sdk: Any, registry_process: RegistryProcess, tmp_path: Path
) -> None:
    reg = Registry(registry_process, tmp_path)
    env = agent_env(registry_process, tmp_path)
    module.install(tmp_path / "modules")

    def run_all() -> None:
        done = agent(env, "run", "--until-idle")
        assert done.returncode == EXIT_CODES[Reason.COMPLETED], done.stderr[-3000:]

    # 1. A chain: the second job runs on the artifact the first extracted.
    first = reg.submit("echo", params={"label": "one"})
    run_all()
    extracted = reg.artifacts(sdk.get_job(first).model_id)["copy-part.txt"]

    async def on_artifact(client: RegistryClient) -> str:
        params = tmp_path / "params.json"
        params.write_text(json.dumps({"label": "two"}))
        revision = await upload_revision(client, params)
        return (await client.submit_job(extracted.id, module.fn("echo"), revision)).id

    second = reg.run(on_artifact)
    # 2. A user_link input: the job's resource is a metadata file.
    linked = reg.submit("link", name=DECK, content=METADATA)
    # 3. Outputs: a model of its own, and the next revision of the job's model.
    derived = reg.submit("derive", content=b"base")
    run_all()

    for job_id in (first, second, linked, derived):
        assert sdk.get_job(job_id).status_history[-1].name == "Completed"
    under = reg.artifacts(extracted.id)  # the second job's outputs, under the artifact
    assert sdk.get_artifact(under["copy-copy-part.txt"].id).file.revisions[-1].read_bytes() == (
        b"the part"
    )
    seen = reg.artifacts(sdk.get_job(linked).model_id)["seen.bin"]
    assert sdk.get_artifact(seen.id).file.revisions[-1].read_bytes() == METADATA

    made = reg.run(lambda client: client.list_models(source_job_id=derived)).items
    job_model = sdk.get_job(derived).model_id
    found = {m.id for m in made}
    assert job_model in found and len(found) == 2  # the model it made, and the one it revised
    (new_model,) = found - {job_model}
    assert sdk.get_model(new_model).file.revisions[-1].read_bytes() == b"derived from base"
    revisions = sdk.get_model(job_model).file.revisions
    assert [r.read_bytes() for r in revisions] == [b"base", b"next: base"]
