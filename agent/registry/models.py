"""Pydantic models of the registry's wire shapes, with the wire names (spec §2 to §5).

Responses are parsed leniently (unknown fields ignored) so a newer registry does not break
the agent; only what the agent relies on is declared.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from agent.protocol.states import AgentStatus, JobStatus

T = TypeVar("T")


class Wire(BaseModel):
    """Base of every wire model."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Token(Wire):
    id: str | None = None
    sha: str
    salt: str


class FileRevision(Wire):
    id: str
    file_id: str | None = None
    content_token: Token
    properties_token: Token
    name: str | None = None
    extension: str | None = None
    size: int | None = None
    mime: str | None = None


class File(Wire):
    id: str
    revisions: list[FileRevision]

    @property
    def current(self) -> FileRevision:
        """The latest revision."""
        return self.revisions[-1]


class JobStatusEntry(Wire):
    name: JobStatus
    message: str | None = None
    agent_id: str | None = None
    created: str | None = None


class ToolVersionRef(Wire):
    tool_version: str


class FunctionVersion(Wire):
    id: str
    name: str
    version: str
    module_name: str
    module_version: str
    entrypoint: str
    run_command: str
    function_schema: str | None = None
    tool_name: str | None = None
    tool_versions: list[ToolVersionRef] | None = None


class Job(Wire):
    id: str
    created: str
    file: File
    function: FunctionVersion
    model_id: str | None = None
    assigned_agent_id: str | None = None
    assigned_agent_pool_id: str | None = None
    status_history: list[JobStatusEntry] = Field(default_factory=list)
    auth_deliveries: list[dict[str, Any]] | None = None
    # The tool version the job was submitted for (the submit query's `tool_version`). Ours:
    # the official Job has no such field (only its function's `tool_versions`); the local
    # registry sends it so the agent can refuse a version its installed module lacks.
    tool_version: str | None = None

    @property
    def status(self) -> JobStatus:
        """The current status (the last history entry)."""
        return self.status_history[-1].name if self.status_history else JobStatus.UNKNOWN

    @property
    def claimed_by(self) -> str | None:
        """The agent named on the latest Claimed entry, if the job was claimed."""
        for entry in reversed(self.status_history):
            if entry.name is JobStatus.CLAIMED:
                return entry.agent_id
        return None


class AgentStatusEntry(Wire):
    name: AgentStatus


class Agent(Wire):
    id: str
    status_history: list[AgentStatusEntry] = Field(default_factory=list)
    agent_pools: list[str] = Field(default_factory=list)


class AgentPool(Wire):
    id: str
    name: str
    description: str | None = None
    archive_status: str | None = None


class Resource(Wire):
    """A model or an artifact."""

    id: str
    file: File
    model_id: str | None = None


class TemporaryURL(Wire):
    url: str
    expires: str | None = None


class MultipartUpload(Wire):
    """`POST /api/v2/tokens/multipart-upload`'s answer: the upload and a URL per part."""

    upload_id: str
    upload_urls: dict[str, TemporaryURL]


class Page(Wire, Generic[T]):
    items: list[T]
    total: int | None = None
    page: int
    size: int
    pages: int | None = None


class NewAgent(Wire):
    agent_version: str
    host_os: str
    api_hashes: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    worker_mode: str = "polling"


class ModuleVersionRef(Wire):
    module_name: str
    module_version: str


class NewRevision(Wire):
    """What the client sends to create a model, artifact or job-parameters revision."""

    content_token: Token
    properties_token: Token
    name: str
    extension: str | None = None
    size: int
    mime: str | None = None
    description: str | None = None
    display_name: str | None = None


class NewAgentKey(Wire):
    """`POST /api/v2/key/agent`'s body: an agent's ES384 public key (identity-service mode)."""

    public_key_pem: str
    key_id: str
    display_name: str = ""
    key_name: str = ""


class AgentCredential(Wire):
    """The answer to registering a key: the client id the agent signs in as."""

    client_id: str
    key_id: str
    user_uuid: str | None = None
    tenant_id: str | None = None
    key_name: str | None = None
