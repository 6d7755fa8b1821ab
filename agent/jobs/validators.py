"""What each `validation_types` entry checks, per input type (pure).

An input's validators are alternatives: a value is accepted when it satisfies at least one. Each
validator is `@kind` or `@kind:argument`. Each input type has its family of kinds this agent
checks (`FAMILIES`); a validator outside its input's family (unknown to this agent, or of
another input type's family, like `@extension:` on a parameter) accepts anything, so a newer
platform vocabulary never makes an old agent refuse a job the platform accepted. Each check
answers None (accepted) or the problem, worded for a person; the caller names the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.jobs import sniff
from agent.protocol.manifest import InputType

_JSON_KINDS: dict[str, tuple[type, ...]] = {
    "@number": (int, float),
    "@integer": (int,),
    "@string": (str,),
    "@boolean": (bool,),
    "@array": (list,),
    "@object": (dict,),
}
FILE_KINDS = frozenset({"@extension", "@mime_type"})
AUTH_KINDS = frozenset({"@jwt", "@oauth2", "@oauth1", "@token", "@basic", "@cas_delegated_3dx"})
FAMILIES: dict[InputType, frozenset[str]] = {
    InputType.PARAMETER: frozenset(_JSON_KINDS),
    InputType.USER_MODEL: FILE_KINDS,
    InputType.USER_LINK: FILE_KINDS,
    InputType.AUTH_INFO: AUTH_KINDS,
}
# `@extension:istari_<tool_key>_metadata` (the tool key literal or substituted): a link file.
_METADATA = re.compile(r"^istari_(?P<tool>.+)_metadata$")


@dataclass(frozen=True)
class FileFacts:
    """What file validators look at: the downloaded file, its first bytes and its size."""

    path: Path
    head: bytes
    size: int

    @property
    def name(self) -> str:
        return self.path.name


def split(validator: str) -> tuple[str, str | None]:
    """`@array:number` -> (`@array`, `number`); `@string` -> (`@string`, None)."""
    kind, sep, argument = validator.partition(":")
    return kind.strip().lower(), (argument.strip() if sep else None)


def checked(validators: Iterable[str], kind: InputType) -> list[tuple[str, str | None]] | None:
    """The validators to check, or None when one accepts anything (or there are none)."""
    parsed = [split(v) for v in validators]
    family = FAMILIES[kind]
    if not parsed or any(k not in family for k, _ in parsed):
        return None
    return parsed


# -- parameters ------------------------------------------------------------------------------


def check_parameter(value: Any, validators: list[str]) -> str | None:
    """None when `value` fits one validator; `@array:<kind>`/`@object:<kind>` check each item."""
    known = checked(validators, InputType.PARAMETER)
    if known is None:
        return None
    if any(_fits(value, kind, arg) for kind, arg in known):
        return None
    wanted = " or ".join(dict.fromkeys(_describe(kind, arg) for kind, arg in known))
    return f"expected {wanted}, got {_got(value, known)}"


def _is(value: Any, kind: str) -> bool:
    is_bool = isinstance(value, bool)
    return isinstance(value, _JSON_KINDS[kind]) and (kind == "@boolean" or not is_bool)


def _item_kind(kind: str, arg: str | None) -> str | None:
    """`@array:number` -> `@number`; None for scalars and unknown item kinds (any item)."""
    item = f"@{arg.lower()}" if arg else None
    return item if kind in ("@array", "@object") and item in _JSON_KINDS else None


def _items(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, list):
        return [(f"[{i}]", v) for i, v in enumerate(value)]
    return [(f"[{k!r}]", v) for k, v in value.items()]


def _fits(value: Any, kind: str, arg: str | None) -> bool:
    if not _is(value, kind):
        return False
    item = _item_kind(kind, arg)
    return item is None or all(_is(v, item) for _, v in _items(value))


def _describe(kind: str, arg: str | None) -> str:
    item = _item_kind(kind, arg)
    name = kind.removeprefix("@")
    if item is None:
        return name
    return f"{name} of {item[1:]}" if kind == "@array" else f"{name} of {item[1:]} values"


def _got(value: Any, known: list[tuple[str, str | None]]) -> str:
    """The value's JSON type; for a container, its first item that spoils it."""
    got = json_type(value)
    for kind, arg in known:
        item = _item_kind(kind, arg)
        if item is not None and _is(value, kind):
            bad = next(((k, v) for k, v in _items(value) if not _is(v, item)), None)
            if bad is not None:
                return f"{got} with {json_type(bad[1])} at {bad[0]}"
    return got


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    for name, types in (("boolean", (bool,)), ("number", (int, float)), ("string", (str,)),
                        ("array", (list,)), ("object", (dict,))):  # fmt: skip
        if isinstance(value, types):
            return name
    return type(value).__name__


# -- files -----------------------------------------------------------------------------------


def check_file(facts: FileFacts, validators: list[str], tool_key: str | None) -> str | None:
    """None when the file fits one `@extension:` or `@mime_type:` validator."""
    known = checked(validators, InputType.USER_MODEL)
    if known is None:
        return None
    extensions = [a.lower().lstrip(".") for k, a in known if k == "@extension" and a]
    patterns = [a for k, a in known if k == "@mime_type" and a]
    if len(extensions) + len(patterns) < len(known):
        return None  # a bare `@extension` or `@mime_type`: nothing to check
    if any(_extension_fits(facts.name, e, tool_key) for e in extensions):
        return None
    types, how = sniff.file_types(facts.name, facts.head, facts.size)
    if any(sniff.matches(p, t) for p in patterns for t in types):
        return None
    expected = []
    if extensions:
        shown = " or ".join(_show_extension(e, tool_key) for e in extensions)
        expected.append(f"a {shown} file")
    if patterns:
        expected.append(f"of type {' or '.join(patterns)} (it is {types[0]}, {how})")
    return f"{facts.name!r} is not {', nor '.join(expected)}"


def _extension_fits(name: str, extension: str, tool_key: str | None) -> bool:
    """`.stl` ends the name; a metadata extension is the start of its last suffix."""
    lowered = name.lower()
    metadata = _metadata_pattern(extension, tool_key)
    if metadata is None:
        return lowered.endswith("." + extension)
    _, dot, suffix = lowered.rpartition(".")
    return bool(dot) and metadata.fullmatch(suffix) is not None


def _metadata_pattern(extension: str, tool_key: str | None) -> re.Pattern[str] | None:
    """`istari_<tool>_metadata` -> a pattern for `istari_<tool>_metadata[_<kind>]`.

    `{tool_key}` left literal in the manifest is this module's tool key, or any tool key when
    the manifest names none.
    """
    found = _METADATA.match(extension)
    if found is None:
        return None
    tool = found["tool"]
    if tool == "{tool_key}":
        tool_re = re.escape(tool_key.lower()) if tool_key else r"[a-z0-9_-]+"
    else:
        tool_re = re.escape(tool)
    return re.compile(rf"istari_{tool_re}_metadata(_.+)?")


def _show_extension(extension: str, tool_key: str | None) -> str:
    if _METADATA.match(extension) is None:
        return "." + extension
    if tool_key:
        extension = extension.replace("{tool_key}", tool_key.lower())
    return f".{extension}_<kind>"


# -- credentials -----------------------------------------------------------------------------


def check_auth(auth_type: str | None, validators: list[str]) -> str | None:
    """None when the delivered credential's `function_auth_type` is one the input names.

    A delivery that does not say its type cannot be checked and is accepted.
    """
    known = checked(validators, InputType.AUTH_INFO)
    if known is None or auth_type is None:
        return None
    wanted = list(dict.fromkeys(kind.removeprefix("@") for kind, _ in known))
    if auth_type.lower() in wanted:
        return None
    return f"a {auth_type} credential was delivered; this input takes {' or '.join(wanted)}"
