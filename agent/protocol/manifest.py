"""The `module_manifest.json` contract: its schema and a pure parser with precise errors.

One schema serves both sides: the agent reads installed manifests with it and the local
registry validates published ones with it. Unknown keys are ignored (manifests carry
`scripts`, `authors`, `dependencies` and more that neither side needs); what the agent relies
on is checked strictly, including every `run_command` placeholder.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from agent.errors import AgentError
from agent.protocol.placeholders import PlaceholderError, check
from agent.protocol.versions import Range, RangeError, parse_range

KEY_PATTERN = r"^@[a-zA-Z][a-zA-Z0-9._-]{0,126}:[a-zA-Z][a-zA-Z0-9._-]{0,126}$"
VERSION_PATTERN = r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]*)?$"


class ManifestError(AgentError):
    """A module manifest that cannot be used (names the file, the field and the problem)."""

    def __init__(self, path: str, field: str, problem: str) -> None:
        self.path, self.field, self.problem = path, field, problem
        super().__init__(f"{path}: {field}: {problem}")


class InputType(StrEnum):
    PARAMETER = "parameter"
    USER_MODEL = "user_model"
    AUTH_INFO = "auth_info"
    USER_LINK = "user_link"


# The longest string any field may hold: far beyond any real manifest (a run_command, a
# display name), far below what would bloat every listing the registry answers with it.
MAX_STRING = 4096


class _Doc(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_max_length=MAX_STRING)


# A first validator to suggest, per input type, when an input declares none.
_EXAMPLE_VALIDATOR = {
    InputType.PARAMETER: "@string",
    InputType.USER_MODEL: "@extension:stl",
    InputType.AUTH_INFO: "@token:<service>",
    InputType.USER_LINK: "@extension:istari_{tool_key}_metadata",
}


class InputSchema(_Doc):
    """One declared input: its type and the validators its value must fit (at least one)."""

    type: InputType
    # Validated when absent too, so a missing list and an empty one get the same answer.
    validation_types: list[str] = Field(default_factory=list, validate_default=True)
    display_name: str | None = None
    optional: bool | None = False

    @field_validator("validation_types")
    @classmethod
    def _at_least_one(cls, v: list[str], info: ValidationInfo) -> list[str]:
        if v:
            return v
        kind = info.data.get("type")
        example = _EXAMPLE_VALIDATOR.get(kind, "@string") if kind else "@string"
        shown = f" for a {kind.value} input" if isinstance(kind, InputType) else ""
        msg = (
            "must name at least one validator (the platform requires one); "
            f'add one, e.g. ["{example}"]{shown} (see docs/agent.md, "Inputs and validators")'
        )
        raise ValueError(msg)


class OutputSchema(_Doc):
    name: str = Field(min_length=1, max_length=255)
    type: Literal["file", "directory"]
    required: bool
    display_name: str | None = None
    upload_as: Literal["artifact", "model"] | None = None
    version_of: str | None = None


class FunctionSchema(_Doc):
    inputs: dict[str, InputSchema]
    outputs: list[OutputSchema] = Field(default_factory=list)


class FunctionVariant(_Doc):
    """One variant of a function (`functions["@scope:fn"][i]`)."""

    entrypoint: str = Field(min_length=1)
    run_command: str = Field(min_length=1)
    function_schema: FunctionSchema
    operating_systems: list[str] | None = None
    tool_versions: list[str] | None = None
    display_name: str | None = None

    @field_validator("run_command")
    @classmethod
    def _placeholders(cls, v: str) -> str:
        try:
            check(v)
        except PlaceholderError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("entrypoint")
    @classmethod
    def _relative(cls, v: str) -> str:
        p = PurePosixPath(v.replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts:
            msg = "must be a path inside the module directory (relative, no '..')"
            raise ValueError(msg)
        return v


class Manifest(_Doc):
    """A `module_manifest.json`, as far as the agent and the registry rely on it."""

    module_key: str | None = Field(default=None, pattern=KEY_PATTERN)
    module_name: str | None = Field(default=None, pattern=KEY_PATTERN)
    module_version: str = Field(pattern=VERSION_PATTERN)
    module_type: Literal["function", "authentication"] = "function"
    module_display_name: str | None = None
    tool_key: str | None = None
    tool_display_name: str | None = None
    tool_versions: list[str] | None = None
    operating_systems: list[str] | None = None
    agent_version: str | None = None
    internal: bool = False
    additional_configuration_required: bool = False
    functions: dict[str, list[FunctionVariant]] = Field(min_length=1)

    @field_validator("functions")
    @classmethod
    def _function_keys(cls, v: dict[str, list[FunctionVariant]]) -> dict[str, list[Any]]:
        for name, variants in v.items():
            if not _matches_key(name):
                msg = f"function name {name!r} must look like @scope:name"
                raise ValueError(msg)
            if not variants:
                msg = f"function {name!r} has no variants"
                raise ValueError(msg)
        return dict(v)

    @field_validator("agent_version")
    @classmethod
    def _agent_range(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_range(v)
            except RangeError as e:
                msg = f"{e} (the agent versions this module runs on)"
                raise ValueError(msg) from None
        return v

    def agent_range(self) -> Range | None:
        """The parsed `agent_version` range (None: the manifest names none)."""
        return None if self.agent_version is None else parse_range(self.agent_version)

    def key(self) -> str:
        """`module_key`, or the deprecated `module_name`."""
        key = self.module_key or self.module_name
        if key is None:
            msg = "module_key (or the deprecated module_name) is required"
            raise ValueError(msg)
        return key

    def variant_oses(self, v: FunctionVariant) -> list[str]:
        """The OS names a variant supports (its own list, else the module's)."""
        return v.operating_systems or self.operating_systems or []

    def variant_tools(self, v: FunctionVariant) -> list[str]:
        """The tool versions a variant supports (its own list, else the module's)."""
        return v.tool_versions or self.tool_versions or []


def _matches_key(name: str) -> bool:
    return re.match(KEY_PATTERN, name) is not None


def parse_manifest(raw: object, path: str) -> Manifest:
    """Validate a decoded manifest; ManifestError names the first bad field."""
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        problem = "required" if first["type"] == "missing" else first["msg"]
        problem = problem.removeprefix("Value error, ")
        raise ManifestError(path, field, problem) from None
    if manifest.module_key is None and manifest.module_name is None:
        raise ManifestError(path, "module_key", "required (or the deprecated module_name)")
    return manifest
