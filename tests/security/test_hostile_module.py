"""A hostile module manifest: strings long enough to bloat every listing that carries them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agent.localregistry.server import RunningRegistry
from agent.protocol.manifest import MAX_STRING, ManifestError, parse_manifest
from agent.registry.client import RegistryClient
from agent.registry.errors import RegistryRejected
from tests.tools import module

HUGE = "x" * (MAX_STRING + 1)


def _with(path: list[str | int], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(module.manifest())
    target: Any = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


VARIANT: list[str | int] = ["functions", module.fn("echo"), 0]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (["module_display_name"], "module_display_name"),
        (["tool_versions"], "tool_versions.0"),
        ([*VARIANT, "display_name"], "display_name"),
        ([*VARIANT, "run_command"], "run_command"),
        ([*VARIANT, "function_schema", "inputs", "label", "display_name"], "display_name"),
    ],
)
def test_a_manifest_string_past_the_limit_is_refused_naming_the_field(
    path: list[str | int], field: str
) -> None:
    value: Any = [HUGE] if field.endswith(".0") else HUGE
    with pytest.raises(ManifestError) as refused:
        parse_manifest(_with(path, value), "module_manifest.json")
    assert refused.value.field.endswith(field), refused.value.field
    assert f"at most {MAX_STRING} characters" in refused.value.problem


def test_a_function_name_past_the_limit_is_refused() -> None:
    doc = module.manifest()
    doc["functions"] = {"@test:" + "y" * 200: doc["functions"][module.fn("echo")]}
    with pytest.raises(ManifestError) as refused:
        parse_manifest(doc, "module_manifest.json")
    assert "must look like @scope:name" in refused.value.problem


async def test_the_registry_refuses_to_publish_it(
    local_registry: RunningRegistry, client: RegistryClient
) -> None:
    with pytest.raises(RegistryRejected) as refused:
        await client.publish_module(_with(["module_display_name"], "x" * 1_000_000))
    assert refused.value.status == 422
    assert f"at most {MAX_STRING} characters" in str(refused.value)
