"""The `module_manifest.json` contract: its schema and a pure parser with precise errors.

One schema serves both sides: the agent reads installed manifests with it and the local
registry validates published ones with it. Unknown keys are ignored; every field the official
schema names is checked to its rules where given (docs/modules.md says what the agent does
with each), including every `run_command` placeholder and the rules across fields
(`consistency`). Fields the official schema requires but old manifests leave out stay
optional here, so such modules still load; `lint` warns about them.
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
    model_validator,
)

from agent.errors import AgentError
from agent.protocol.placeholders import PlaceholderError, check
from agent.protocol.versions import Range, RangeError, parse_range

KEY_PATTERN = r"^@[a-zA-Z][a-zA-Z0-9._-]{0,126}:[a-zA-Z][a-zA-Z0-9._-]{0,126}$"
VERSION_PATTERN = r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]*)?$"
TOOL_KEY_PATTERN = r"^[a-z0-9_-]*$"
CHECKSUM_PATTERN = r"^([0-9a-fA-F]{64})?$"  # empty: not checked (agent/modules/checksum.py)

# Validation context that leaves `consistency` to the caller, so that `parse_manifest` and
# lint can name the exact field of each problem (a model validator's error has no location).
DEFER_CONSISTENCY = {"defer_consistency": True}


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


class ContributorInfo(_Doc):
    """One of `authors`: reported, never acted on."""

    name: str = Field(strict=True)
    email: str = Field(strict=True)
    group: str | None = Field(default=None, pattern=KEY_PATTERN)


class Dependency(_Doc):
    """Something the module needs that it does not ship (`dependencies`, `dev_dependencies`)."""

    name: str = Field(strict=True, min_length=1)
    version: str = Field(strict=True)
    tool_type: Literal["istari_module", "auxiliary_tool", "auth"]
    reason: str | None = None
    url: str | None = Field(default=None, min_length=1)
    command: str | None = None
    display_name: str | None = None


class BuildScript(_Doc):
    command: str = Field(strict=True, min_length=1)
    output_path: str = Field(strict=True, min_length=1)


class ScriptInfo(_Doc):
    """The author's scripts for some OSes; the agent never runs them (docs/modules.md)."""

    operating_systems: list[str]
    install: str | None = None
    clean: str | None = None
    test_unit: str | None = None
    test_integration: str | None = None
    build: BuildScript | None = None

    def paths(self) -> dict[str, str]:
        """Each script given, by its field name (`build.command` for the build)."""
        found = {
            name: value
            for name in ("install", "clean", "test_unit", "test_integration")
            if (value := getattr(self, name))
        }
        if self.build is not None:
            found["build.command"] = self.build.command
        return found


class Manifest(_Doc):
    """A `module_manifest.json`: every field the official schema names, checked to its rules."""

    module_key: str | None = Field(default=None, pattern=KEY_PATTERN)
    module_name: str | None = Field(default=None, pattern=KEY_PATTERN)
    module_version: str = Field(pattern=VERSION_PATTERN)
    module_type: Literal["function", "authentication"] = "function"
    module_checksum: str = Field(default="", pattern=CHECKSUM_PATTERN)
    module_display_name: str | None = None
    tool_key: str | None = Field(default=None, min_length=1, pattern=TOOL_KEY_PATTERN)
    tool_display_name: str | None = None
    tool_versions: list[str] | None = None
    operating_systems: list[str] | None = None
    agent_version: str | None = None
    internal: bool = Field(default=False, strict=True)
    authors: list[ContributorInfo] = Field(default_factory=list)
    dependencies: list[Dependency] | None = None
    dev_dependencies: list[Dependency] | None = None
    scripts: list[ScriptInfo] | None = None
    additional_configuration_required: bool = False
    functions: dict[str, list[FunctionVariant]] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Manifest:
        if info.context and info.context.get("defer_consistency"):
            return self
        problems = consistency(self)
        if problems:
            raise ValueError("; ".join(f"{f}: {p}" for f, p in problems))
        return self

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


def consistency(m: Manifest) -> list[tuple[str, str]]:
    """(field, problem) for each rule across fields the manifest breaks, in document order:
    a function's or a script's OS the module does not list ("must agree with what the
    functions support"), and a `tool_key` without `tool_versions`."""
    problems: list[tuple[str, str]] = []
    if m.tool_key is not None and not m.tool_versions:
        problems.append(
            ("tool_versions", f"required (at least one) when tool_key is set ({m.tool_key!r})")
        )
    module_oses = m.operating_systems
    if module_oses is None:
        return problems
    for name, variants in m.functions.items():
        for i, v in enumerate(variants):
            extra = [o for o in v.operating_systems or [] if o not in module_oses]
            if extra:
                problems.append(
                    (f"functions.{name}.{i}.operating_systems", _not_listed(extra, module_oses))
                )
    for i, script in enumerate(m.scripts or []):
        extra = [o for o in script.operating_systems if o not in module_oses]
        if extra:
            problems.append((f"scripts.{i}.operating_systems", _not_listed(extra, module_oses)))
    return problems


def _not_listed(extra: list[str], module_oses: list[str]) -> str:
    return (
        f"{', '.join(extra)} not in the module's operating_systems "
        f"({', '.join(module_oses) or 'none'}); the two lists must agree"
    )


def field_name(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the dotted field name errors and lint show."""
    return ".".join(str(p) for p in loc) or "(top level)"


def error_problem(error: Any) -> str:
    """A pydantic error's message as a ManifestError's problem."""
    problem = "required" if error["type"] == "missing" else str(error["msg"])
    return problem.removeprefix("Value error, ")


def parse_manifest(raw: object, path: str) -> Manifest:
    """Validate a decoded manifest; ManifestError names the first bad field."""
    try:
        manifest = Manifest.model_validate(raw, context=DEFER_CONSISTENCY)
    except ValidationError as e:
        first = e.errors()[0]
        raise ManifestError(path, field_name(first["loc"]), error_problem(first)) from None
    if manifest.module_key is None and manifest.module_name is None:
        raise ManifestError(path, "module_key", "required (or the deprecated module_name)")
    for field, problem in consistency(manifest):
        raise ManifestError(path, field, problem)
    return manifest
