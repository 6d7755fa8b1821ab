"""`run_command` placeholders: parse them, check them, and build an argv (pure, no I/O).

The command is split into arguments *before* substitution (POSIX shell rules, no shell ever
runs it), so a path or value with spaces or quotes stays one argument and cannot inject
anything. Placeholders follow the public docs; `{config_path}` is an alias of
`{module_config}` seen in a community module.
"""

from __future__ import annotations

import shlex
import string
from collections.abc import Mapping

KNOWN = frozenset(
    {"entrypoint", "function_name", "input_file", "output_file", "temp_dir", "module_config",
     "config_path"}
)  # fmt: skip
REQUIRED = frozenset({"entrypoint"})


class PlaceholderError(ValueError):
    """A run_command that cannot be used as written."""


def placeholders(run_command: str) -> set[str]:
    """The placeholder names a run_command uses (`{{` and `}}` are literal braces)."""
    try:
        return {
            field for _, field, _, _ in string.Formatter().parse(run_command) if field is not None
        }
    except ValueError as e:
        msg = f"run_command has unbalanced braces: {e}"
        raise PlaceholderError(msg) from None


def check(run_command: str) -> None:
    """Raise PlaceholderError for an unknown or malformed placeholder, or a missing entrypoint."""
    used = placeholders(run_command)
    unknown = sorted(used - KNOWN)
    if unknown:
        names = ", ".join("{" + u + "}" for u in unknown)
        known = ", ".join("{" + k + "}" for k in sorted(KNOWN))
        msg = f"run_command uses unknown placeholder(s) {names}; known: {known}"
        raise PlaceholderError(msg)
    if not used >= REQUIRED:
        msg = "run_command must contain {entrypoint}"
        raise PlaceholderError(msg)
    try:
        shlex.split(run_command)
    except ValueError as e:
        msg = f"run_command cannot be split into arguments: {e}"
        raise PlaceholderError(msg) from None


def build_argv(run_command: str, values: Mapping[str, str]) -> list[str]:
    """The argv for `run_command` with each placeholder replaced inside its own argument."""
    check(run_command)
    filled = dict(values)
    if "module_config" in filled:
        filled.setdefault("config_path", filled["module_config"])
    missing = sorted(placeholders(run_command) - set(filled))
    if missing:
        msg = f"no value for placeholder(s) {', '.join(missing)} in run_command"
        raise PlaceholderError(msg)
    return [arg.format_map(filled) for arg in shlex.split(run_command)]
