"""`lint`: every problem of one module directory in one pass, each with a concrete fix.

The loader (catalog.py) stops at the first problem and refuses the module; lint goes on and
reports them all: each schema error, the rules across fields, the files the manifest names
(entrypoints, schema files, scripts), the checksum, the `agent_version` range, and what the
official schema or the platform's `stari module lint` would refuse although this agent
accepts it (warnings). An `error` is something the agent refuses the module for (or the
platform refuses to publish); a `warning` is worth fixing but the module is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import ValidationError

from agent.modules.catalog import (
    MANIFEST_FILE,
    check_checksum,
    inline_schemas,
    missing_entrypoints,
    read_manifest,
)
from agent.modules.lintfixes import fix_for
from agent.protocol.manifest import (
    DEFER_CONSISTENCY,
    Manifest,
    ManifestError,
    consistency,
    error_problem,
    field_name,
)
from agent.protocol.osnames import REGISTRY_OS_NAMES
from agent.protocol.versions import RangeError, parse_range, parse_version

Severity = Literal["error", "warning"]

# What the official schema requires that this agent lets a manifest leave out (old modules
# still load); `stari client publish` refuses a manifest without them.
_OFFICIAL_REQUIRED = (
    "module_type",
    "module_checksum",
    "internal",
    "tool_display_name",
    "tool_versions",
    "operating_systems",
    "agent_version",
    "authors",
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a module: where, which field, what, and how to fix it."""

    path: str
    field: str
    problem: str
    fix: str
    severity: Severity = "error"


def lint(directory: Path, agent_version: str, host_os: str | None) -> list[Problem]:
    """Every problem of the module in `directory` for an agent reporting `agent_version` on
    `host_os` (None: no host check), errors and warnings, in the order of the manifest."""
    shown = str(directory / MANIFEST_FILE)
    try:
        raw = read_manifest(directory)
    except ManifestError as e:
        return [_from_error(e, _read_fix(e))]
    problems = [
        _from_error(e, "put the schema file inside the module, or inline the schema")
        for e in inline_schemas(raw, directory, shown)
    ]
    try:
        manifest = Manifest.model_validate(raw, context=DEFER_CONSISTENCY)
    except ValidationError as e:
        said = {p.field for p in problems}  # a schema file not inlined: said once, not twice
        schema = [_schema_problem(shown, err) for err in e.errors()]
        problems += [p for p in schema if not any(p.field.startswith(f) for f in said)]
        return problems + _raw_checks(raw, directory, shown, agent_version)
    problems += _manifest_checks(manifest, raw, directory, shown, agent_version, host_os)
    return problems


def errors_only(problems: list[Problem]) -> list[Problem]:
    """The problems that make the agent refuse the module (or the platform refuse it)."""
    return [p for p in problems if p.severity == "error"]


def _from_error(e: ManifestError, fix: str) -> Problem:
    return Problem(e.path, e.field, e.problem, fix)


def _read_fix(e: ManifestError) -> str:
    if e.field == "(file)" and e.problem.startswith("cannot read"):
        return f"create {MANIFEST_FILE} at the module's root, readable by the agent's user"
    return "write the manifest as one JSON object (check it with `python3 -m json.tool`)"


def _schema_problem(shown: str, err: Any) -> Problem:
    field = field_name(err["loc"])
    return Problem(shown, field, error_problem(err), fix_for(field, err["type"]))


def _raw_checks(
    raw: dict[str, Any], directory: Path, shown: str, agent_version: str
) -> list[Problem]:
    """What can still be checked when the schema fails: entrypoints, scripts, the range."""
    problems: list[Problem] = []
    functions = raw.get("functions")
    for name, variants in (functions if isinstance(functions, dict) else {}).items():
        for i, v in enumerate(variants if isinstance(variants, list) else []):
            entry = v.get("entrypoint") if isinstance(v, dict) else None
            if _inside(entry) and not (path := directory / str(entry)).is_file():
                field = f"functions.{name}.{i}.entrypoint"
                problems.append(_missing_entrypoint(shown, field, path))
    scripts = raw.get("scripts")
    for i, script in enumerate(scripts if isinstance(scripts, list) else []):
        if isinstance(script, dict):
            paths = {
                k: script.get(k) for k in ("install", "clean", "test_unit", "test_integration")
            }
            build = script.get("build")
            paths["build.command"] = build.get("command") if isinstance(build, dict) else None
            clean = {k: p for k, p in paths.items() if isinstance(p, str) and p}
            problems += _script_paths(shown, f"scripts.{i}", clean, directory)
    wanted = raw.get("agent_version")
    if isinstance(wanted, str):
        problems += _agent_range(shown, wanted, agent_version)
    return problems


def _inside(entry: object) -> bool:
    """A non-empty relative path without '..' (the schema error covers the others)."""
    if not isinstance(entry, str) or not entry:
        return False
    p = PurePosixPath(entry.replace("\\", "/"))
    return not p.is_absolute() and ".." not in p.parts


def _manifest_checks(
    m: Manifest,
    raw: dict[str, Any],
    directory: Path,
    shown: str,
    agent_version: str,
    host_os: str | None,
) -> list[Problem]:
    problems: list[Problem] = []
    if m.module_key is None and m.module_name is None:
        fix = 'add "module_key": "@scope:name"'
        problems.append(Problem(shown, "module_key", "required", fix))
    problems += [
        Problem(shown, f, p, "make the lists agree: list every OS a function or script runs on "
                "at module level too, or drop it from the function's or script's list")
        if "operating_systems" in f
        else Problem(shown, f, p, 'list the tool versions the module runs: "tool_versions": ["…"]')
        for f, p in consistency(m)
    ]  # fmt: skip
    problems += [_from_error(e, _ENTRYPOINT_FIX) for e in missing_entrypoints(m, directory, shown)]
    problems += _os_names(m, shown) + _unsupported_module_oses(m, shown)
    problems += _both_levels(m, shown) + _official_required(raw, shown)
    problems += _dependencies(m, shown)
    for i, script in enumerate(m.scripts or []):
        problems += _script_paths(shown, f"scripts.{i}", script.paths(), directory)
    if m.module_checksum:
        try:
            check_checksum(m.module_checksum, directory, shown)
        except ManifestError as e:
            fix = f"recompute it: `istari-agent modules checksum {directory}`"
            problems.append(_from_error(e, fix))
    if m.agent_version is not None:
        problems += _agent_range(shown, m.agent_version, agent_version)
    if host_os is not None and not any(
        host_os in m.variant_oses(v) or not m.variant_oses(v)
        for vs in m.functions.values()
        for v in vs
    ):
        problem = f"no function variant runs on this host ({host_os}); no job would run here"
        fix = f'add "{host_os}" to a variant\'s operating_systems if it runs here'
        problems.append(Problem(shown, "operating_systems", problem, fix, "warning"))
    return problems


_ENTRYPOINT_FIX = "ship the file in the module, or correct the path (relative to its root)"


def _missing_entrypoint(shown: str, field: str, entry: Path) -> Problem:
    return Problem(shown, field, f"file not found: {entry}", _ENTRYPOINT_FIX)


def _script_paths(shown: str, prefix: str, paths: dict[str, str], directory: Path) -> list[Problem]:
    """A script must be a file inside the module (the agent never runs it; the author's
    tooling does, from the module's root)."""
    problems = []
    for name, value in paths.items():
        # A script may carry arguments ("scripts/build.sh --release"): the first word is the file.
        first = value.split()[0] if value.split() else value
        p = PurePosixPath(first.replace("\\", "/"))
        field = f"{prefix}.{name}"
        if p.is_absolute() or ".." in p.parts:
            problem = f"{first} is outside the module"
            fix = "use a path relative to the module's root, without '..'"
            problems.append(Problem(shown, field, problem, fix))
        elif not (directory / p).is_file():
            problem = f"file not found: {directory / p}"
            fix = "ship the script in the module, or correct the path (relative to its root)"
            problems.append(Problem(shown, field, problem, fix))
    return problems


def _agent_range(shown: str, wanted: str, agent_version: str) -> list[Problem]:
    try:
        included = parse_range(wanted).includes(parse_version(agent_version))
    except RangeError:
        return []  # the schema error already says it
    if included:
        return []
    problem = f"{wanted!r} leaves out this agent's version {agent_version}; it is not served"
    fix = "widen agent_version if the module runs on this agent, or install a release for it"
    return [Problem(shown, "agent_version", problem, fix)]


def _os_names(m: Manifest, shown: str) -> list[Problem]:
    """OS names the registry does not know: no job for them would ever be offered."""
    lists: list[tuple[str, list[str]]] = [("operating_systems", m.operating_systems or [])]
    for name, vs in m.functions.items():
        lists += [(f"functions.{name}.{i}.operating_systems", v.operating_systems or [])
                  for i, v in enumerate(vs)]  # fmt: skip
    lists += [(f"scripts.{i}.operating_systems", s.operating_systems)
              for i, s in enumerate(m.scripts or [])]  # fmt: skip
    return [
        Problem(shown, field, f"{os_name!r} is not an OS name the registry knows",
                f"use one of: {', '.join(REGISTRY_OS_NAMES)}")
        for field, names in lists for os_name in names if os_name not in REGISTRY_OS_NAMES
    ]  # fmt: skip


def _unsupported_module_oses(m: Manifest, shown: str) -> list[Problem]:
    """The official schema: every module OS must be supported by a function."""
    served = {o for vs in m.functions.values() for v in vs for o in m.variant_oses(v)}
    missing = [o for o in m.operating_systems or [] if o not in served]
    if not missing:
        return []
    problem = f"no function variant runs on {', '.join(missing)}"
    fix = "drop it from the module's operating_systems, or add a variant that runs there"
    return [Problem(shown, "operating_systems", problem, fix, "warning")]


def _both_levels(m: Manifest, shown: str) -> list[Problem]:
    """The platform's lint wants `operating_systems` and `tool_versions` at both levels: one
    warning per list the module gives and some variants leave out."""
    problems = []
    for key in ("operating_systems", "tool_versions"):
        if getattr(m, key) is None:
            continue
        missing = [f"{name}.{i}" for name, vs in m.functions.items()
                   for i, v in enumerate(vs) if getattr(v, key) is None]  # fmt: skip
        if missing:
            shown_list = ", ".join(missing[:3]) + (
                f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            )
            problem = f"given at module level but not in variant {shown_list}"
            fix = f"repeat {key} in each variant: the platform's lint and publish want both"
            problems.append(Problem(shown, f"functions.*.{key}", problem, fix, "warning"))
    return problems


def _official_required(raw: dict[str, Any], shown: str) -> list[Problem]:
    fields = [f for f in _OFFICIAL_REQUIRED if f not in raw]
    return [
        Problem(shown, f, "missing (this agent accepts it; the platform's schema requires it)",
                fix_for(f, "missing"), "warning")
        for f in fields
    ]  # fmt: skip


def _dependencies(m: Manifest, shown: str) -> list[Problem]:
    """An `istari_module` dependency's version must be a range the agent can check."""
    problems = []
    for key in ("dependencies", "dev_dependencies"):
        for i, dep in enumerate(getattr(m, key) or []):
            if dep.tool_type != "istari_module":
                continue
            try:
                parse_range(dep.version)
            except RangeError as e:
                field = f"{key}.{i}.version"
                fix = 'write a version range, e.g. ">=1.2.0" or "^1.2.0"'
                problems.append(Problem(shown, field, str(e), fix))
    return problems
