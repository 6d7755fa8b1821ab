"""Request bodies the local registry accepts, parsed leniently as the SDK requires.

Unknown extra fields and explicit nulls are accepted (spec §0); what the registry relies on
is checked strictly: shas, salts, enum values and string lengths.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, field_validator

from agent.protocol.content import is_salt, is_sha
from agent.protocol.states import AgentStatus

Meta = Annotated[str | None, Field(default=None, max_length=255)]


class Inbound(BaseModel):
    """Base for request bodies: extra keys are ignored."""

    model_config = ConfigDict(extra="ignore")


class TokenIn(Inbound):
    """A content or properties token as a client sends it."""

    sha: str
    salt: str
    id: str | None = None
    created: str | None = None

    @field_validator("sha")
    @classmethod
    def _sha(cls, v: str) -> str:
        if not is_sha(v):
            msg = "sha must be 96 lowercase hex characters (salted SHA-384)"
            raise ValueError(msg)
        return v

    @field_validator("salt")
    @classmethod
    def _salt(cls, v: str) -> str:
        if not is_salt(v):
            msg = "salt must be 32 lowercase hex characters"
            raise ValueError(msg)
        return v


class FileRevisionIn(Inbound):
    """A `FileRevision` as the SDK builds it for a new model, artifact or job parameters."""

    content_token: TokenIn
    properties_token: TokenIn
    name: Meta = None
    extension: Meta = None
    size: int | None = Field(default=None, ge=0)
    mime: Meta = None
    description: Meta = None
    version_name: Meta = None
    external_identifier: Meta = None
    display_name: Meta = None
    sources: list[dict[str, Any]] | None = None
    products: list[dict[str, Any]] | None = None


class CredentialBindingIn(Inbound):
    """`NewCredentialBinding`."""

    input_name: str
    credential_id: str


class NewJobIn(Inbound):
    """`NewJob`: the parameters file revision and optional credential bindings."""

    revision: FileRevisionIn
    auth_bindings: list[CredentialBindingIn] | None = None


class JobStatusMessageIn(Inbound):
    """`JobStatusMessage`."""

    message: str | None = Field(default=None, max_length=65536)


class NewAgentIn(Inbound):
    """`NewAgent` / `NewAgentInformation`."""

    agent_version: str = Field(max_length=255)
    host_os: str = Field(max_length=255)
    api_hashes: str | None = None
    capabilities: list[str] | None = None
    worker_mode: str | None = None

    @field_validator("worker_mode")
    @classmethod
    def _mode(cls, v: str | None) -> str | None:
        if v is not None and v not in {"polling", "temporal"}:
            msg = "worker_mode must be 'polling' or 'temporal'"
            raise ValueError(msg)
        return v


class NewAgentStatusIn(Inbound):
    """`NewAgentStatus`: only the name (spec §2.2)."""

    name: AgentStatus


class ModuleVersionIn(Inbound):
    """`NewAgentModuleVersion`."""

    module_name: str = Field(pattern=r"^@[a-zA-Z][a-zA-Z0-9._-]*:[a-zA-Z][a-zA-Z0-9._-]*$")
    module_version: str = Field(min_length=1, max_length=64)


class DisplayNameIn(Inbound):
    """`NewAgentDisplayName`."""

    display_name: str = Field(max_length=255)


class StoredCredentialIn(Inbound):
    """A credential to store (local extension): its secret is never answered back."""

    name: str = Field(min_length=1, max_length=255)
    function_auth_type: Literal["jwt", "token", "basic", "oauth1", "oauth2", "cas_delegated_3dx"]
    secret: SecretStr = Field(max_length=65536)
    expiration: AwareDatetime | None = None


class PublicKeyIn(Inbound):
    """`NewAgentPublicKey`: an RSA PKCS#1 PEM public key."""

    public_key: str = Field(max_length=16384)

    @field_validator("public_key")
    @classmethod
    def _pem(cls, v: str) -> str:
        if "-----BEGIN RSA PUBLIC KEY-----" not in v:
            msg = "public_key must be a PKCS#1 PEM ('-----BEGIN RSA PUBLIC KEY-----')"
            raise ValueError(msg)
        return v


class NewAgentPoolIn(Inbound):
    """`NewAgentPool`."""

    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=4096)


class PoolAgentIn(Inbound):
    """The body of `PUT /agent_pools/{id}/agents`."""

    agent_id: str


class AssignedAgentIn(Inbound):
    """The body of `PUT /jobs/{id}/assigned_agent`."""

    agent_id: str


class AssignedPoolIn(Inbound):
    """The body of `PUT /jobs/{id}/assigned_agent_pool`."""

    agent_pool_id: str


class ArchiveIn(Inbound):
    """An optional archive/restore reason."""

    reason: str | None = Field(default=None, max_length=1024)
