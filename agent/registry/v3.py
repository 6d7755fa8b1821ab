"""Typed calls for external workflow logs: v3 workflow outputs and log entries, v2 systems.

Thin like the client it wraps: one request per call, no retries, every failure a
`RegistryError`. Wire shapes follow the SDK's `Workflow*Dto` models, parsed leniently.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import Field

from agent.registry.client import RegistryClient, _seg
from agent.registry.models import NewRevision, Token, Wire

T = TypeVar("T")


class System(Wire):
    id: str
    name: str
    description: str | None = None
    archive_status: str | None = None


class WorkflowOutput(Wire):
    """`WorkflowOutputDto` (also read as `WorkflowOutputFileDto`, which lacks system_id)."""

    id: str
    file_id: str
    file_revision_id: str
    name: str | None = None
    size: int | None = None
    mime: str | None = None
    content_token: Token
    properties_token: Token
    system_id: str | None = None


class WorkflowLogEntry(Wire):
    """`WorkflowLogEntryDto`."""

    id: str
    title: str | None = None
    status: str
    workflow_type: str
    archived: bool = False
    system_id: str
    configuration_id: str | None = None
    branch_id: str | None = None
    file_count: int = 0
    total_file_size: int = 0
    created: str
    created_by_id: str | None = None


class WorkflowLogEntryDetail(WorkflowLogEntry):
    """`WorkflowLogEntryDetailDto`: the entry with its outputs."""

    workflow_outputs: list[WorkflowOutput] = Field(default_factory=list)


class CursorPage(Wire, Generic[T]):
    """`CursorPage*Dto`: pass `next_page` back as `cursor` for the next page."""

    items: list[T]
    total: int | None = None
    next_page: str | None = None


class NewWorkflowLogEntry(Wire):
    """`WorkflowLogEntryCreateDto`."""

    title: str | None = Field(default=None, max_length=255)
    status: str = Field(default="UNSPECIFIED", max_length=64)
    workflow_type: str = Field(default="external", max_length=64)
    configuration_id: str | None = None
    branch_id: str | None = None
    branchless: bool = False
    workflow_output_ids: list[str] = Field(default_factory=list)


def _entries(system_id: str) -> str:
    return f"/api/v3/systems/{_seg(system_id)}/workflow_log/entries"


def output_body(revision: NewRevision, external_identifier: str | None = None) -> dict[str, Any]:
    """The `WorkflowOutputCreateDto` for an uploaded revision (tokens are just sha and salt)."""
    body = revision.model_dump(exclude={"content_token", "properties_token"})
    return {
        **body,
        "content_token": {"sha": revision.content_token.sha, "salt": revision.content_token.salt},
        "properties_token": {
            "sha": revision.properties_token.sha,
            "salt": revision.properties_token.salt,
        },
        "external_identifier": external_identifier,
    }


class WorkflowLogs:
    """The external-workflow calls, made through a `RegistryClient` (which owns the session)."""

    def __init__(self, client: RegistryClient) -> None:
        self.client = client

    async def create_system(self, name: str, description: str = "") -> System:
        """`POST /api/v2/systems`."""
        body = {"name": name, "description": description}
        return await self.client._model(System, "POST", "/api/v2/systems", json_body=body)

    async def get_system(self, system_id: str) -> System:
        """`GET /api/v2/systems/{id}` (404 = no such system)."""
        return await self.client._model(System, "GET", f"/api/v2/systems/{_seg(system_id)}")

    async def create_output(
        self, system_id: str, revision: NewRevision, external_identifier: str | None = None
    ) -> WorkflowOutput:
        """`POST /api/v3/systems/{id}/workflow_outputs` for a revision whose blobs are uploaded."""
        path = f"/api/v3/systems/{_seg(system_id)}/workflow_outputs"
        body = output_body(revision, external_identifier)
        return await self.client._model(WorkflowOutput, "POST", path, json_body=body)

    async def create_entry(self, system_id: str, entry: NewWorkflowLogEntry) -> WorkflowLogEntry:
        """`POST .../workflow_log/entries`: one entry owning the named outputs."""
        body = entry.model_dump()
        return await self.client._model(
            WorkflowLogEntry, "POST", _entries(system_id), json_body=body
        )

    async def list_entries(
        self,
        system_id: str,
        *,
        cursor: str | None = None,
        size: int = 10,
        title: str | None = None,
        status: str | None = None,
        archive_status: str | None = None,
        include_total: bool = True,
    ) -> CursorPage[WorkflowLogEntry]:
        """`GET .../workflow_log/entries`, newest first on the local registry."""
        params = {
            "cursor": cursor,
            "size": size,
            "title": title,
            "status": status,
            "archive_status": archive_status,
            "include_total": include_total,
        }
        page = CursorPage[WorkflowLogEntry]
        return await self.client._model(page, "GET", _entries(system_id), params=params)

    async def get_entry(self, system_id: str, entry_id: str) -> WorkflowLogEntryDetail:
        """`GET .../workflow_log/entries/{entry_id}` with the entry's outputs."""
        path = f"{_entries(system_id)}/{_seg(entry_id)}"
        return await self.client._model(WorkflowLogEntryDetail, "GET", path)

    async def archive_entry(self, system_id: str, entry_id: str) -> None:
        """`DELETE .../workflow_log/entries/{entry_id}` (archives it)."""
        await self.client._call("DELETE", f"{_entries(system_id)}/{_seg(entry_id)}")

    async def restore_entry(self, system_id: str, entry_id: str) -> WorkflowLogEntry:
        """`POST .../workflow_log/entries/{entry_id}:restore`."""
        path = f"{_entries(system_id)}/{_seg(entry_id)}:restore"
        return await self.client._model(WorkflowLogEntry, "POST", path)
