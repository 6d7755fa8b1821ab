"""API compatibility headers: which API versions a client speaks, and the registry's verdict.

The official SDK sends `X-Istari-Client-Api-Hashes: spec:Tag=hash,...` (sorted by key) on
every request, one entry per OpenAPI tag it was generated against, and reads the registry's
answer from `X-Istari-Registry-Version`, `X-Istari-Compatibility` (`compatible`,
`revision-mismatch`, `incompatible`, `deprecation-warning`), `X-Istari-Incompatible-Tags` and
`X-Istari-Deprecated-Tags` (comma lists). Both sides of this project use the same table: the
API versions we implement are those SDK 13.3.4 (the version the spec was read from) names.

How a registry turns hashes into a verdict is not published (spec, open question 9); ours is
inferred from the hash shape `<hash>+<revision>~<n>` and the SDK's messages: another base hash
for a tag is a breaking change (`incompatible`), the same hash at another revision is a
`revision-mismatch`. Tags only one side knows are not judged. See docs/agent.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

CLIENT_HASHES = "X-Istari-Client-Api-Hashes"
REGISTRY_VERSION = "X-Istari-Registry-Version"
COMPATIBILITY = "X-Istari-Compatibility"
INCOMPATIBLE_TAGS = "X-Istari-Incompatible-Tags"
DEPRECATED_TAGS = "X-Istari-Deprecated-Tags"

# SDK 13.3.4's identifiers of the API versions (per `spec:Tag`) that this project implements.
API_LEVEL: Mapping[str, str] = {
    "v2_main:Agent": "b8c0169+6~0",
    "v2_main:Agent Pool": "e102a57+7~0",
    "v2_main:Artifact": "e476331+4~8",
    "v2_main:Files": "67485ee+6~8",
    "v2_main:Healthchecks": "0a0a90a+0~0",
    "v2_main:Job": "9f9dc2f+1~0",
    "v2_main:Model": "7ea2089+5~9",
    "v2_main:Module": "46edc79+5~0",
    "v2_main:Systems": "d212636+0~0",
    "v2_tokens:Token": "3a8e5ec+2~0",
}

# The tags the agent's registry client calls (register, status, jobs, models and artifacts,
# module publishing, pools, presigned blob URLs, health).
AGENT_TAGS = (
    "v2_main:Agent",
    "v2_main:Agent Pool",
    "v2_main:Artifact",
    "v2_main:Healthchecks",
    "v2_main:Job",
    "v2_main:Model",
    "v2_main:Module",
    "v2_tokens:Token",
)


class Status(StrEnum):
    COMPATIBLE = "compatible"
    REVISION_MISMATCH = "revision-mismatch"
    INCOMPATIBLE = "incompatible"
    DEPRECATION_WARNING = "deprecation-warning"


@dataclass(frozen=True)
class Verdict:
    """A registry's answer about a client's API versions."""

    status: str | None  # a `Status` value, or what an unknown registry said
    server_version: str | None = None
    incompatible_tags: tuple[str, ...] = ()
    deprecated_tags: tuple[str, ...] = field(default_factory=tuple)


def encode(hashes: Mapping[str, str]) -> str:
    """The header value: `key=hash` pairs sorted by key, comma-joined (as the SDK writes it)."""
    return ",".join(f"{k}={v}" for k, v in sorted(hashes.items()))


def agent_header() -> str:
    """What the agent sends: our API level for the tags it calls."""
    return encode({tag: API_LEVEL[tag] for tag in AGENT_TAGS})


def decode(value: str) -> dict[str, str]:
    """Parse a client header; malformed items are skipped (a header is advice, not a contract)."""
    found: dict[str, str] = {}
    for item in value.split(","):
        key, sep, digest = item.partition("=")
        if sep and key.strip() and digest.strip():
            found[key.strip()] = digest.strip()
    return found


def judge(
    client: Mapping[str, str],
    served: Mapping[str, str] = API_LEVEL,
    deprecated: Iterable[str] = (),
) -> Verdict:
    """The verdict on a client's hashes against the API versions a registry serves."""
    broken: list[str] = []
    behind: list[str] = []
    for key in sorted(set(client) & set(served)):
        theirs, ours = _split(client[key]), _split(served[key])
        if theirs[0] != ours[0]:
            broken.append(key)
        elif theirs[1] != ours[1]:
            behind.append(key)
    old = tuple(sorted(set(client) & set(deprecated)))
    if broken:
        return Verdict(Status.INCOMPATIBLE, None, (*broken, *behind), old)
    if behind:
        return Verdict(Status.REVISION_MISMATCH, None, tuple(behind), old)
    if old:
        return Verdict(Status.DEPRECATION_WARNING, None, (), old)
    return Verdict(Status.COMPATIBLE)


def _split(digest: str) -> tuple[str, str]:
    """`b8c0169+6~0` -> (`b8c0169`, `6`): the API's hash and its revision."""
    base, _, rest = digest.partition("+")
    return base, rest.partition("~")[0]


def answer(verdict: Verdict) -> dict[str, str]:
    """The response headers a registry sends for `verdict`."""
    headers = {COMPATIBILITY: str(verdict.status)} if verdict.status else {}
    if verdict.server_version:
        headers[REGISTRY_VERSION] = verdict.server_version
    if verdict.incompatible_tags:
        headers[INCOMPATIBLE_TAGS] = ",".join(verdict.incompatible_tags)
    if verdict.deprecated_tags:
        headers[DEPRECATED_TAGS] = ",".join(verdict.deprecated_tags)
    return headers


def read(headers: Mapping[str, str]) -> Verdict | None:
    """The verdict in a response's headers (case-insensitive), or None if it carries none."""
    h = {k.lower(): v for k, v in headers.items()}
    version, status = h.get(REGISTRY_VERSION.lower()), h.get(COMPATIBILITY.lower())
    if version is None and status is None:
        return None

    def tags(name: str) -> tuple[str, ...]:
        return tuple(t.strip() for t in h.get(name.lower(), "").split(",") if t.strip())

    return Verdict(status, version, tags(INCOMPATIBLE_TAGS), tags(DEPRECATED_TAGS))
