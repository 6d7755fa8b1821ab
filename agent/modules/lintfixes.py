"""The fix lint suggests for a schema error, by the field it is in (docs/modules.md)."""

from __future__ import annotations

# By the last named part of the field (`functions.@a:b.0.entrypoint` → `entrypoint`).
_FIXES = {
    "module_key": 'write it as "@scope:name" (letters first, then letters, digits, . _ -)',
    "module_name": 'deprecated: write "module_key": "@scope:name" instead',
    "module_version": 'a semantic version, e.g. "1.2.3" (an optional leading "v")',
    "module_type": 'write "function" (or "authentication")',
    "module_checksum": 'write "" (not checked) or `istari-agent modules checksum DIR`\'s output',
    "internal": "write true (only the authoring group may use the module) or false",
    "tool_key": 'lowercase letters, digits, _ and - only, e.g. "my_tool"',
    "tool_display_name": 'name the tool the module drives, e.g. "My Tool"',
    "tool_versions": 'a list of at least one version string, e.g. ["2024.1"]',
    "operating_systems": 'a list of registry OS names, e.g. ["Ubuntu 22.04", "RHEL 9"]',
    "agent_version": 'a version range of the agent, e.g. ">=9.0.0" or "^11.0.0"',
    "authors": 'a list: [{"name": "…", "email": "…"}]',
    "name": "a non-empty string",
    "email": "the contributor's email address, as a string",
    "group": 'the authoring group as "@scope:name"',
    "version": 'a version, or for an istari_module dependency a range, e.g. ">=1.0.0"',
    "tool_type": 'one of "istari_module", "auxiliary_tool", "auth"',
    "url": "a non-empty URL, or leave url out",
    "dependencies": 'a list: [{"name": "…", "version": "…", "tool_type": "auxiliary_tool"}]',
    "dev_dependencies": 'a list: [{"name": "…", "version": "…", "tool_type": "auxiliary_tool"}]',
    "scripts": 'a list: [{"operating_systems": [...], "install": "scripts/install.sh"}]',
    "command": "the script's path relative to the module's root",
    "output_path": 'where the build writes the module, relative to its root (e.g. ".")',
    "functions": 'an object: {"@scope:function": [ {entrypoint, run_command, function_schema} ]}',
    "entrypoint": "the executable's path relative to the module's root (no '..')",
    "run_command": 'e.g. "python3 {entrypoint} {input_file} {output_file} {temp_dir}"',
    "function_schema": '{"inputs": {...}, "outputs": [...]}, or the path of a JSON file of it',
    "inputs": 'an object of input name to {"type": …, "validation_types": [...]}',
    "outputs": 'a list of {"name": …, "type": "file" | "directory", "required": …}',
    "type": "input: parameter, user_model, auth_info, user_link; output: file, directory",
    "required": "true or false",
    "upload_as": 'write "artifact" or "model", or leave it out',
    "additional_configuration_required": "true or false",
}


def fix_for(field: str, error_type: str) -> str:
    """A concrete fix for a schema error of `error_type` in `field`."""
    named = [p for p in field.split(".") if p and not p.isdigit() and not p.startswith("@")]
    key = named[-1] if named else ""
    hint = _FIXES.get(key, "see docs/modules.md for what the field holds")
    if error_type == "missing":
        return f"add {key or field}: {hint}"
    if error_type == "extra_forbidden":
        return f"remove {key}"
    return hint
