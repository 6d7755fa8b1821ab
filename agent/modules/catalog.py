"""The installed modules: scan the modules path once, keep the good, report the broken.

Each directory under the modules path that holds a `module_manifest.json` is one module. A
manifest that cannot be used is reported (file, field, problem) and skipped; the rest are
served. A module whose `agent_version` range leaves out the version this agent reports is
refused the same way (it is not served, nor reported to the registry), and so is one whose
`module_checksum` is set and no longer matches its files (checksum.py). `resolve` picks the
variant of a function that runs on this host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import jsontext
from agent.identity import REPORTED_AGENT_VERSION
from agent.modules.checksum import MANIFEST_FILE as MANIFEST_FILE  # where it is defined
from agent.modules.checksum import module_checksum
from agent.protocol.manifest import FunctionVariant, Manifest, ManifestError, parse_manifest
from agent.protocol.versions import parse_version

if TYPE_CHECKING:
    from agent.protocol.push import Offer


@dataclass(frozen=True)
class InstalledModule:
    """A module on disk with a valid manifest."""

    directory: Path
    manifest: Manifest
    raw: dict[str, Any]  # the manifest as published (function_schema files inlined)

    @property
    def key(self) -> str:
        return self.manifest.key()

    @property
    def version(self) -> str:
        return self.manifest.module_version


@dataclass(frozen=True)
class Resolved:
    """The function variant a job will run, and the module it comes from."""

    module: InstalledModule
    function: str
    variant: FunctionVariant

    @property
    def entrypoint(self) -> Path:
        return self.module.directory / self.variant.entrypoint


class NotInstalled(LookupError):
    """No installed module can run the job's function here."""


@dataclass(frozen=True)
class Catalog:
    """The modules this agent serves, and the manifests it refused."""

    modules: tuple[InstalledModule, ...] = ()
    errors: tuple[ManifestError, ...] = field(default_factory=tuple)

    def functions(self) -> list[str]:
        """Every function name served, sorted."""
        return sorted({f for m in self.modules for f in m.manifest.functions})

    def resolve(
        self, function: str, module_name: str | None, host_os: str, hint: FunctionVariantHint
    ) -> Resolved:
        """The installed variant for `function` on `host_os`, or NotInstalled saying why."""
        candidates = [
            m
            for m in self.modules
            if function in m.manifest.functions and module_name in (None, m.key)
        ]
        if not candidates:
            msg = (
                f"no installed module provides {function}"
                + (f" (job names module {module_name})" if module_name else "")
                + f"; this agent serves: {', '.join(self.functions()) or 'nothing'}"
            )
            raise NotInstalled(msg)
        for module in candidates:
            variant = _pick_variant(module, function, host_os, hint)
            if variant is not None:
                return Resolved(module, function, variant)
        oses = sorted(
            {o for m in candidates for v in m.manifest.functions[function]
             for o in m.manifest.variant_oses(v)}
        )  # fmt: skip
        msg = f"{function} has no variant for {host_os} (variants support: {', '.join(oses)})"
        raise NotInstalled(msg)

    def serves(self, offer: Offer, host_os: str) -> bool:
        """Whether this agent can run the offered job (what the registry's offer rules ask:
        the module and function installed, for this OS, with the tool version named)."""
        if offer.operating_system not in (None, host_os):
            return False
        try:
            resolved = self.resolve(offer.function, offer.module, host_os, FunctionVariantHint())
        except NotInstalled:
            return False
        tools = resolved.module.manifest.variant_tools(resolved.variant)
        return offer.tool_version is None or offer.tool_version in tools


@dataclass(frozen=True)
class FunctionVariantHint:
    """What the registry's copy of the function says, to pick among equal variants."""

    entrypoint: str | None = None
    run_command: str | None = None


def _pick_variant(
    module: InstalledModule, function: str, host_os: str, hint: FunctionVariantHint
) -> FunctionVariant | None:
    variants = module.manifest.functions[function]
    fits = [
        v
        for v in variants
        if host_os in module.manifest.variant_oses(v) or not module.manifest.variant_oses(v)
    ]
    for v in fits:
        if (v.entrypoint, v.run_command) == (hint.entrypoint, hint.run_command):
            return v
    return fits[0] if fits else None


def scan(modules_path: Path, agent_version: str = REPORTED_AGENT_VERSION) -> Catalog:
    """Load every module directly under `modules_path` (not recursive) that runs on an agent
    reporting `agent_version` (the setting)."""
    if not modules_path.is_dir():
        error = ManifestError(str(modules_path), "modules_path", "not a directory")
        return Catalog((), (error,))
    modules: list[InstalledModule] = []
    errors: list[ManifestError] = []
    seen: dict[str, Path] = {}
    for directory in sorted(p for p in modules_path.iterdir() if is_module_name(p.name)):
        if not directory.is_dir():
            continue
        manifest_path = directory / MANIFEST_FILE
        if not manifest_path.is_file():
            continue
        try:
            module = load_checked(directory, agent_version)
        except ManifestError as e:
            errors.append(e)
            continue
        if module.key in seen:
            problem = f"{module.key} is already installed from {seen[module.key]}; skipped"
            errors.append(ManifestError(str(manifest_path), "module_key", problem))
            continue
        seen[module.key] = directory
        modules.append(module)
    return Catalog(tuple(modules), tuple(errors))


def load_checked(directory: Path, agent_version: str = REPORTED_AGENT_VERSION) -> InstalledModule:
    """`load_module`, and refuse the module if it does not run on an agent reporting
    `agent_version`: everything `scan` checks of one module directory."""
    module = load_module(directory)
    _check_agent_version(module, agent_version)
    return module


def is_module_name(name: str) -> bool:
    """Whether a name under `modules_path` can be a module directory (hidden ones are not:
    `modules install` stages its work under hidden names)."""
    return not name.startswith(".")


def _check_agent_version(module: InstalledModule, agent_version: str) -> None:
    """Refuse a module whose `agent_version` range leaves out the version we report."""
    wanted = module.manifest.agent_range()
    if wanted is None or wanted.includes(parse_version(agent_version)):
        return
    problem = (
        f"{module.key} {module.version} requires an agent {wanted.text!r}; this agent reports "
        f"{agent_version} (setting agent_version): install a release of the module for this "
        "agent version, or widen its range if it runs here"
    )
    raise ManifestError(str(module.directory / MANIFEST_FILE), "agent_version", problem)


def load_module(directory: Path) -> InstalledModule:
    """Read, inline and validate one module's manifest; check its entrypoints exist and, when
    it has a `module_checksum`, that its files still match it."""
    shown = str(directory / MANIFEST_FILE)
    raw = read_manifest(directory)
    for error in inline_schemas(raw, directory, shown):
        raise error
    manifest = parse_manifest(raw, shown)
    for error in missing_entrypoints(manifest, directory, shown):
        raise error
    if manifest.module_checksum:
        check_checksum(manifest.module_checksum, directory, shown)
    return InstalledModule(directory.resolve(), manifest, raw)


def read_manifest(directory: Path) -> dict[str, Any]:
    """The decoded `module_manifest.json` of `directory` (a JSON object), or ManifestError."""
    path = directory / MANIFEST_FILE
    shown = str(path)
    try:
        raw = jsontext.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ManifestError(shown, "(file)", f"cannot read: {e.strerror}") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ManifestError(shown, "(file)", f"not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ManifestError(shown, "(top level)", "must be a JSON object")
    return raw


def missing_entrypoints(manifest: Manifest, directory: Path, shown: str) -> list[ManifestError]:
    """One error per variant whose entrypoint is not a file in the module."""
    errors = []
    for name, variants in manifest.functions.items():
        for i, v in enumerate(variants):
            entry = directory / v.entrypoint
            if not entry.is_file():
                field_name = f"functions.{name}.{i}.entrypoint"
                errors.append(ManifestError(shown, field_name, f"file not found: {entry}"))
    return errors


def check_checksum(expected: str, directory: Path, shown: str) -> None:
    """Refuse a module whose files changed since its `module_checksum` was computed."""
    try:
        actual = module_checksum(directory)
    except OSError as e:
        problem = f"cannot read the module's files to check it ({e.filename}: {e.strerror})"
        raise ManifestError(shown, "module_checksum", problem) from None
    if actual != expected.lower():
        problem = (
            f"the module's files changed since the checksum was computed (manifest: "
            f"{expected.lower()}, files: {actual}): reinstall the module as released, or, if "
            f"the change is yours, recompute it with `istari-agent modules checksum "
            f'{directory}` and write that in module_checksum (or set it to "" not to check)'
        )
        raise ManifestError(shown, "module_checksum", problem)


def inline_schemas(raw: dict[str, Any], directory: Path, shown: str) -> list[ManifestError]:
    """Replace `function_schema` strings (paths to JSON files in the module) by their content;
    one error for each that cannot be (it is left as it was)."""
    functions = raw.get("functions")
    if not isinstance(functions, dict):
        return []
    errors = []
    for name, variants in functions.items():
        for i, v in enumerate(variants if isinstance(variants, list) else []):
            ref = v.get("function_schema") if isinstance(v, dict) else None
            if not isinstance(ref, str):
                continue
            field_name = f"functions.{name}.{i}.function_schema"
            target = (directory / ref).resolve()
            if not target.is_relative_to(directory.resolve()):
                errors.append(
                    ManifestError(shown, field_name, "schema file must be inside the module")
                )
                continue
            try:
                v["function_schema"] = jsontext.loads(target.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                errors.append(ManifestError(shown, field_name, f"cannot load {ref}: {e}"))
    return errors
