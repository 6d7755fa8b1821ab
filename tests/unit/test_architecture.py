"""The architecture, checked: no import cycle between agent/ packages, and a local registry
that could be its own distribution (it imports the shared contract and a few small helpers).

Imports are read from the source (every `import`, including ones inside functions), so a
cycle made by a lazy import counts too.
"""

from __future__ import annotations

import ast
import functools
import graphlib
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import agent

ROOT = Path(agent.__file__).parent

# What the local registry may use from the rest of agent/: the contract both sides share,
# and small helpers with no agent logic in them (plus what those import).
REGISTRY_MAY_IMPORT = (
    "agent",  # the package itself (its __init__ is a docstring)
    "agent.protocol",
    "agent.errors",
    "agent.jsontext",
    "agent.secretfiles",
    "agent.concurrently",  # asyncio helpers only (all_of, both, KeyedLocks)
    "agent.push",  # the package, for the broker connection below (its __init__ is a docstring)
    "agent.push.broker",
    "agent.tls",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (ROOT.parent / rel).with_suffix(".py").is_file() or (ROOT.parent / rel).is_dir()


@functools.cache
def imports() -> dict[str, set[str]]:
    """Each agent module's imports of other agent modules, as module names."""
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                found.add(target)
                # `from agent import jsontext` imports the module agent.jsontext
                found.update(
                    f"{target}.{a.name}" for a in node.names if _is_module(f"{target}.{a.name}")
                )
        graph[name] = {m for m in found if m == "agent" or m.startswith("agent.")}
    return graph


def _unit(module: str) -> str:
    """The package (or top-level module) a module belongs to: agent.jobs.runner -> agent.jobs."""
    return ".".join(module.split(".")[:2])


def package_cycle(graph: dict[str, set[str]]) -> list[str]:
    """A ring of agent/ packages (or top-level modules) importing each other; [] if none."""
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        for target in targets:
            a, b = _unit(module), _unit(target)
            if a != b and "." in a and "." in b:
                edges[a].add(b)
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as e:
        ring: list[str] = e.args[1]
        return ring
    return []


def _allowed_for_registry(module: str) -> bool:
    return (
        module.startswith(("agent.localregistry", "agent.protocol."))
        or module in REGISTRY_MAY_IMPORT
    )


def registry_reach(graph: dict[str, set[str]]) -> dict[str, str]:
    """Every agent module the local registry reaches, and one module that imports it."""
    seen: dict[str, str] = {}
    todo = [m for m in graph if m.startswith("agent.localregistry")]
    while todo:
        module = todo.pop()
        for target in graph.get(module, set()):
            if target not in seen and not target.startswith("agent.localregistry"):
                seen[target] = module
                todo.append(target)
    return seen


def test_no_import_cycle_between_packages() -> None:
    ring = package_cycle(imports())
    assert ring == [], f"agent/ packages import each other in a ring: {' -> '.join(ring)}"


def test_local_registry_imports_only_the_contract_and_small_helpers() -> None:
    wrong = {m: by for m, by in registry_reach(imports()).items() if not _allowed_for_registry(m)}
    assert wrong == {}, (
        "agent/localregistry must import only agent.protocol and its allowed helpers; "
        f"it reaches (module: imported by) {wrong}"
    )


def test_the_checks_see_a_cycle_and_a_forbidden_import() -> None:
    """The checks above fail when they should (on a made-up graph)."""
    graph = {
        "agent.jobs.runner": {"agent.runs.store"},
        "agent.runs.store": {"agent.jobs.errors"},
        "agent.localregistry.api.jobs": {"agent.protocol.states", "agent.jobs.runner"},
    }
    assert sorted(set(package_cycle(graph))) == ["agent.jobs", "agent.runs"]
    assert "agent.jobs.runner" in registry_reach(graph)
    assert not _allowed_for_registry("agent.jobs.runner")
    assert _allowed_for_registry("agent.protocol.states")


def test_importing_the_local_registry_loads_none_of_the_agent() -> None:
    """At run time too: the registry's server starts without the agent's packages loaded."""
    code = (
        "import sys, agent.localregistry.server\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('agent.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    wrong = [m for m in out if not _allowed_for_registry(m)]
    assert wrong == []
