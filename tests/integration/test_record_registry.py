"""The local registry's systems and external workflow log routes, good input and bad."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.localregistry.server import RunningRegistry
from agent.protocol.content import new_salt, salted_sha
from agent.registry.client import RegistryClient
from agent.registry.errors import NotFound
from agent.registry.models import FileRevision, NewRevision, Token
from agent.registry.transfer import download_revision, upload_revision
from agent.registry.v3 import NewWorkflowLogEntry, WorkflowLogs, WorkflowOutput

NIL = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def logs(client: RegistryClient) -> WorkflowLogs:
    return WorkflowLogs(client)


@pytest.fixture
async def http(local_registry: RunningRegistry) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {local_registry.token}"}
    async with aiohttp.ClientSession(local_registry.url, headers=headers) as session:
        yield session


async def call(http: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    async with http.request(method, path, **kw) as resp:
        return resp.status, (await resp.json() if resp.content_length else None)


async def new_output(
    logs: WorkflowLogs, system_id: str, tmp_path: Path, name: str, data: bytes
) -> WorkflowOutput:
    path = tmp_path / name
    path.write_bytes(data)
    return await logs.create_output(system_id, await upload_revision(logs.client, path))


def entries(system_id: str) -> str:
    return f"/api/v3/systems/{system_id}/workflow_log/entries"


# -- systems ----------------------------------------------------------------------------------


async def test_systems_are_created_read_and_listed(
    logs: WorkflowLogs, http: aiohttp.ClientSession
) -> None:
    a = await logs.create_system("Bracket", "a bracket")
    await logs.create_system("Wing")
    assert (await logs.get_system(a.id)) == a
    assert (a.name, a.description, a.archive_status) == ("Bracket", "a bracket", "Active")
    status, page = await call(http, "GET", "/api/v2/systems", params={"name": "brack"})
    assert status == 200
    assert ([s["id"] for s in page["items"]], page["total"]) == ([a.id], 1)
    status, page = await call(http, "GET", "/api/v2/systems", params={"size": 1, "page": 2})
    assert (status, page["total"], page["pages"], len(page["items"])) == (200, 2, 2, 1)
    with pytest.raises(NotFound, match="no system"):
        await logs.get_system(NIL)
    assert (await call(http, "GET", "/api/v2/systems/nope"))[0] == 422
    assert (await call(http, "POST", "/api/v2/systems", json={"name": ""}))[0] == 422


# -- workflow outputs -------------------------------------------------------------------------


async def test_an_output_is_a_file_whose_bytes_read_back(
    logs: WorkflowLogs, local_registry: RunningRegistry, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    system = await logs.create_system("S")
    data = bytes(range(256)) * 100
    out = await new_output(logs, system.id, tmp_path, "results.csv", data)
    assert (out.system_id, out.name, out.size, out.mime) == (
        system.id,
        "results.csv",
        25600,
        "text/csv",
    )
    status, file = await call(http, "GET", f"/api/v2/files/{out.file_id}")
    assert status == 200
    assert file["revisions"][0]["id"] == out.file_revision_id
    copy = tmp_path / "copy"
    await download_revision(logs.client, FileRevision.model_validate(file["revisions"][0]), copy)
    assert copy.read_bytes() == data


async def test_outputs_need_a_system_their_blobs_and_a_name(
    logs: WorkflowLogs, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    system = await logs.create_system("S")
    path = tmp_path / "a.txt"
    path.write_text("a")
    revision = await upload_revision(logs.client, path)
    with pytest.raises(NotFound, match="no system"):
        await logs.create_output(NIL, revision)

    salt = new_salt()
    missing = Token(sha=salted_sha(b"never uploaded", salt), salt=salt)
    bad = NewRevision(**{**revision.model_dump(), "content_token": missing.model_dump()})
    status, body = await call(
        http, "POST", f"/api/v3/systems/{system.id}/workflow_outputs", json=_body(bad)
    )
    assert status == 422
    assert "has been uploaded" in body["detail"][0]["msg"]
    nameless = {k: v for k, v in _body(revision).items() if k != "name"}
    status, body = await call(
        http, "POST", f"/api/v3/systems/{system.id}/workflow_outputs", json=nameless
    )
    assert (status, body["detail"][0]["loc"]) == (422, ["body", "name"])


def _body(revision: NewRevision) -> dict[str, Any]:
    from agent.registry.v3 import output_body

    return output_body(revision)


# -- entries ----------------------------------------------------------------------------------


async def test_an_entry_owns_its_outputs_and_sums_them(logs: WorkflowLogs, tmp_path: Path) -> None:
    system = await logs.create_system("S")
    a = await new_output(logs, system.id, tmp_path, "a.txt", b"aaa")
    b = await new_output(logs, system.id, tmp_path, "b.bin", b"bbbbbbb")
    entry = await logs.create_entry(
        system.id,
        NewWorkflowLogEntry(title="iter-1", status="FAILED", workflow_output_ids=[b.id, a.id]),
    )
    assert (entry.title, entry.status, entry.workflow_type) == ("iter-1", "FAILED", "external")
    assert (entry.file_count, entry.total_file_size, entry.archived) == (2, 10, False)
    detail = await logs.get_entry(system.id, entry.id)
    assert [o.id for o in detail.workflow_outputs] == [b.id, a.id]
    assert [o.name for o in detail.workflow_outputs] == ["b.bin", "a.txt"]


async def test_an_entry_takes_the_defaults_for_what_it_leaves_out(
    logs: WorkflowLogs, http: aiohttp.ClientSession
) -> None:
    system = await logs.create_system("S")
    body = {"title": None, "status": None, "workflow_type": None, "workflow_output_ids": None}
    status, entry = await call(http, "POST", entries(system.id), json=body)
    assert status == 201
    assert (entry["status"], entry["workflow_type"], entry["file_count"]) == (
        "UNSPECIFIED",
        "external",
        0,
    )
    cfg = {"configuration_id": NIL, "branch_id": NIL}
    status, entry = await call(http, "POST", entries(system.id), json=cfg)
    assert (status, entry["configuration_id"], entry["branch_id"]) == (201, NIL, NIL)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"title": "x" * 256}, ["body", "title"]),
        ({"status": "S" * 65}, ["body", "status"]),
        ({"workflow_type": "w" * 65}, ["body", "workflow_type"]),
        ({"branchless": True, "configuration_id": NIL}, ["body", "branchless"]),
        ({"branchless": True, "branch_id": NIL}, ["body", "branchless"]),
        ({"configuration_id": "not-an-id"}, ["body", "configuration_id"]),
        ({"workflow_output_ids": ["nope"]}, ["body", "workflow_output_ids", 0]),
        ({"workflow_output_ids": [NIL, NIL]}, ["body", "workflow_output_ids"]),
    ],
)
async def test_malformed_entries_are_422(
    logs: WorkflowLogs, http: aiohttp.ClientSession, body: dict[str, Any], loc: list[Any]
) -> None:
    system = await logs.create_system("S")
    status, answer = await call(http, "POST", entries(system.id), json=body)
    assert (status, answer["detail"][0]["loc"]) == (422, loc)
    assert (await logs.list_entries(system.id)).total == 0


async def test_an_entry_refuses_unknown_foreign_and_owned_outputs_and_creates_nothing(
    logs: WorkflowLogs, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    system, other = await logs.create_system("S"), await logs.create_system("T")
    mine = await new_output(logs, system.id, tmp_path, "a.txt", b"a")
    theirs = await new_output(logs, other.id, tmp_path, "b.txt", b"b")

    status, body = await call(http, "POST", entries(NIL), json={})
    assert (status, body["detail"]) == (404, f"no system with id {NIL}")
    for ids in ([mine.id, NIL], [mine.id, theirs.id]):
        status, body = await call(
            http, "POST", entries(system.id), json={"workflow_output_ids": ids}
        )
        assert status == 404
        assert body["detail"] == f"no workflow output with id {ids[1]} in system {system.id}"
    assert (await logs.list_entries(system.id)).total == 0  # and `mine` is still free:

    first = await logs.create_entry(system.id, NewWorkflowLogEntry(workflow_output_ids=[mine.id]))
    status, body = await call(
        http, "POST", entries(system.id), json={"workflow_output_ids": [mine.id]}
    )
    assert status == 400
    assert f"already belongs to entry {first.id}" in body["detail"]
    assert (await logs.list_entries(system.id)).total == 1


async def test_entries_of_another_system_are_not_found(logs: WorkflowLogs) -> None:
    system, other = await logs.create_system("S"), await logs.create_system("T")
    entry = await logs.create_entry(system.id, NewWorkflowLogEntry(title="x"))
    with pytest.raises(NotFound, match="no workflow log entry"):
        await logs.get_entry(other.id, entry.id)
    with pytest.raises(NotFound):
        await logs.archive_entry(other.id, entry.id)


async def test_archived_entries_leave_the_list_and_come_back(logs: WorkflowLogs) -> None:
    system = await logs.create_system("S")
    keep = await logs.create_entry(system.id, NewWorkflowLogEntry(title="keep"))
    gone = await logs.create_entry(system.id, NewWorkflowLogEntry(title="gone"))
    await logs.archive_entry(system.id, gone.id)
    assert [e.id for e in (await logs.list_entries(system.id)).items] == [keep.id]
    archived = await logs.list_entries(system.id, archive_status="archived")
    assert [(e.id, e.archived) for e in archived.items] == [(gone.id, True)]
    assert (await logs.list_entries(system.id, archive_status="all")).total == 2
    assert (await logs.get_entry(system.id, gone.id)).archived
    restored = await logs.restore_entry(system.id, gone.id)
    assert not restored.archived
    assert (await logs.list_entries(system.id)).total == 2


# -- listing ----------------------------------------------------------------------------------


async def test_the_list_pages_newest_first_with_a_cursor(logs: WorkflowLogs) -> None:
    system = await logs.create_system("S")
    made = [
        (await logs.create_entry(system.id, NewWorkflowLogEntry(title=f"run {i}"))).id
        for i in range(23)
    ]
    seen: list[str] = []
    cursor = None
    sizes = []
    while True:
        page = await logs.list_entries(system.id, cursor=cursor, size=10)
        assert page.total == 23
        seen += [e.id for e in page.items]
        sizes.append(len(page.items))
        cursor = page.next_page
        if cursor is None:
            break
    assert sizes == [10, 10, 3]
    assert seen == made[::-1]
    quiet = await logs.list_entries(system.id, size=0, include_total=False)
    assert (quiet.items, quiet.total, quiet.next_page) == ([], None, None)


async def test_status_and_title_filters_match_and_exclude(
    logs: WorkflowLogs, http: aiohttp.ClientSession
) -> None:
    system = await logs.create_system("S")
    for title, status in [("Design iter-1", "FAILED"), ("design ITER-2", "SUCCESS"),
                          ("Smoke", "SUCCESS"), (None, "UNSPECIFIED")]:  # fmt: skip
        await logs.create_entry(system.id, NewWorkflowLogEntry(title=title, status=status))

    async def titles(*params: tuple[str, str]) -> list[str | None]:
        status, page = await call(http, "GET", entries(system.id), params=list(params))
        assert status == 200, page
        return sorted((e["title"] or "") for e in page["items"])

    assert await titles(("status", "SUCCESS")) == ["Smoke", "design ITER-2"]
    assert await titles(("status", "SUCCESS"), ("status", "FAILED")) == [
        "Design iter-1", "Smoke", "design ITER-2"]  # fmt: skip
    assert await titles(("status", "!SUCCESS")) == ["", "Design iter-1"]
    assert await titles(("title", "iter")) == ["Design iter-1", "design ITER-2"]
    assert await titles(("title", "!iter")) == ["", "Smoke"]
    assert await titles(("title", "iter"), ("status", "!FAILED")) == ["design ITER-2"]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"size": "101"}, ["query", "size"]),
        ({"size": "-1"}, ["query", "size"]),
        ({"size": "ten"}, ["query", "size"]),
        ({"include_total": "maybe"}, ["query", "include_total"]),
        ({"archive_status": "deleted"}, ["query", "archive_status"]),
        ({"cursor": "not-ours"}, ["query", "cursor"]),
    ],
)
async def test_bad_list_parameters_are_422(
    logs: WorkflowLogs, http: aiohttp.ClientSession, params: dict[str, str], loc: list[str]
) -> None:
    system = await logs.create_system("S")
    status, body = await call(http, "GET", entries(system.id), params=params)
    assert (status, body["detail"][0]["loc"]) == (422, loc)


async def test_listing_an_unknown_system_is_404(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "GET", entries(NIL))
    assert (status, body["detail"]) == (404, f"no system with id {NIL}")
