"""Semantic versions and the manifest's `agent_version` ranges, as pure functions.

A manifest's `agent_version` is a range in the syntax the registry's manifest schema documents
(SDK 13.3.4 `Manifest.agent_version`): `^` `~` `>` `<` `=` `>=` `<=` before a version, `a - b`
(inclusive), comma-separated lists, and `*` in place of a number. A comma (or a space) joins
comparators that must all hold (`>=9.0.0, <12.0.0`), as in node-semver and `semantic_version`;
`x`/`X` and partial versions (`11`, `11.2`) are read as wildcards. Versions compare by SemVer
2.0.0 precedence; a pre-release is an ordinary (lower) version, not excluded from ranges.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import total_ordering
from typing import Literal

_NUM = r"0|[1-9]\d*"
_PRE = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_VERSION = re.compile(rf"^v?({_NUM})\.({_NUM})\.({_NUM})(?:-({_PRE}))?(?:\+{_PRE})?$")
_PART = r"0|[1-9]\d*|[*xX]"
_PARTIAL = re.compile(rf"^v?({_PART})(?:\.({_PART}))?(?:\.({_PART}))?(?:-({_PRE}))?(?:\+{_PRE})?$")
_TERM = re.compile(r"^(\^|~|>=|<=|==|>|<|=)?\s*(\S+)$")
EXAMPLES = '">=11.0.0", "^11.2.0", "~11.2.0", "11.x", ">=9.0.0, <12.0.0" or "*"'

Op = Literal[">=", ">", "<", "<=", "=="]


class RangeError(ValueError):
    """A version or version range that does not parse (the message says which and why)."""


@total_ordering
@dataclass(frozen=True)
class Version:
    """A SemVer 2.0.0 version (build metadata dropped: it has no precedence)."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{'.'.join(self.pre)}" if self.pre else core

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # A release sorts after its pre-releases; numeric identifiers before alphanumeric.
        ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, ids)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()


def parse_version(text: str) -> Version:
    """`11.10.3`, `v1.2.3-rc.1`: a full SemVer version, or RangeError."""
    m = _VERSION.match(text.strip())
    if m is None:
        msg = f"{text!r} is not a version (expected MAJOR.MINOR.PATCH, e.g. 11.10.3)"
        raise RangeError(msg)
    return Version(int(m[1]), int(m[2]), int(m[3]), tuple(m[4].split(".")) if m[4] else ())


@dataclass(frozen=True)
class Range:
    """A parsed range: comparators that must all hold (none: every version)."""

    text: str
    comparators: tuple[tuple[Op, Version], ...]

    def includes(self, version: Version) -> bool:
        """Whether `version` satisfies every comparator."""
        return all(_holds(version, op, bound) for op, bound in self.comparators)


def _holds(v: Version, op: Op, bound: Version) -> bool:
    if op == ">=":
        return v >= bound
    if op == ">":
        return v > bound
    if op == "<":
        return v < bound
    if op == "<=":
        return v <= bound
    return v == bound


def parse_range(text: str) -> Range:
    """Parse an `agent_version` range, or RangeError naming the part that does not parse."""
    stripped = text.strip()
    if not stripped:
        msg = f"the range is empty; write one such as {EXAMPLES}"
        raise RangeError(msg)
    comparators: list[tuple[Op, Version]] = []
    for clause in (c.strip() for c in stripped.split(",")):
        if not clause:
            msg = f"{text!r} has an empty item between commas; write e.g. {EXAMPLES}"
            raise RangeError(msg)
        comparators += _clause(clause, text)
    return Range(text, tuple(comparators))


def _clause(clause: str, whole: str) -> list[tuple[Op, Version]]:
    low, sep, high = clause.partition(" - ")
    if sep:  # a hyphen range: both ends included (a partial upper end covers its wildcard)
        return _term(low.strip(), whole, ">=") + _term(high.strip(), whole, "<=")
    out: list[tuple[Op, Version]] = []
    for term in _join_ops(clause.split()):
        out += _term(term, whole, None)
    return out


def _join_ops(words: list[str]) -> list[str]:
    """`>= 11.0.0` (an operator and its version apart) is one term."""
    terms: list[str] = []
    for w in words:
        if terms and terms[-1] in ("^", "~", ">=", "<=", "==", ">", "<", "="):
            terms[-1] += w
        else:
            terms.append(w)
    return terms


def _term(term: str, whole: str, forced: Op | None) -> list[tuple[Op, Version]]:
    m = _TERM.match(term)
    p = _PARTIAL.match(m[2]) if m else None
    if m is None or p is None or (forced is not None and m[1]):
        msg = f"{_where(term, whole)} is not a version or comparator; write e.g. {EXAMPLES}"
        raise RangeError(msg)
    parts = [None if x in (None, "*", "x", "X") else int(x) for x in (p[1], p[2], p[3])]
    if any(a is None and b is not None for a, b in itertools.pairwise(parts)):
        msg = f"{_where(term, whole)} has a number after a wildcard; write e.g. 11.x or 11.2.x"
        raise RangeError(msg)
    pre = tuple(p[4].split(".")) if p[4] else ()
    if pre and None in parts:
        msg = f"{_where(term, whole)}: a pre-release needs a full MAJOR.MINOR.PATCH version"
        raise RangeError(msg)
    return _bounds(forced or m[1] or "=", parts, pre)


def _where(term: str, whole: str) -> str:
    return repr(term) if term == whole.strip() else f"{term!r} in {whole!r}"


def _bounds(op: str, parts: list[int | None], pre: tuple[str, ...]) -> list[tuple[Op, Version]]:
    major, minor, patch = parts
    if major is None:  # `*`: any version, whatever the operator (but `<*`/`>*`: none)
        return [] if op not in ("<", ">") else [("<", Version(0, 0, 0, ("0",)))]
    low = Version(major, minor or 0, patch or 0, pre)
    if patch is not None and minor is not None:
        return _full(op, low)
    above = Version(major + 1, 0, 0) if minor is None else Version(major, minor + 1, 0)
    wild: dict[str, list[tuple[Op, Version]]] = {
        ">=": [(">=", low)],
        ">": [(">=", above)],
        "<": [("<", low)],
        "<=": [("<", above)],
    }
    if op == "^" and major:  # `^11.2`: anything below the next major
        return [(">=", low), ("<", Version(major + 1, 0, 0))]
    return wild.get(op, [(">=", low), ("<", above)])


def _full(op: str, v: Version) -> list[tuple[Op, Version]]:
    if op == "^":
        if v.major:
            top = Version(v.major + 1, 0, 0)
        elif v.minor:
            top = Version(0, v.minor + 1, 0)
        else:
            top = Version(0, 0, v.patch + 1)
        return [(">=", v), ("<", top)]
    if op == "~":
        return [(">=", v), ("<", Version(v.major, v.minor + 1, 0))]
    if op in ("=", "=="):
        return [("==", v)]
    simple: dict[str, Op] = {">=": ">=", ">": ">", "<": "<", "<=": "<="}
    return [(simple[op], v)]
