"""The reported agent version, manifest ranges against it, and the API compatibility headers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agent.check import verdict_finding
from agent.config import Settings
from agent.identity import REPORTED_AGENT_VERSION
from agent.protocol import compat
from agent.protocol.manifest import ManifestError, parse_manifest
from agent.protocol.versions import RangeError, parse_range, parse_version

OURS = parse_version(REPORTED_AGENT_VERSION)


def test_the_reported_version_satisfies_the_ranges_real_manifests_carry() -> None:
    for text in (">=9.0.0", ">=11.0.0", "^11.0.0", "11.x", "*", ">=9.0.0, <12.0.0"):
        assert parse_range(text).includes(OURS), text


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        (">=11.0.0", ["11.0.0", "12.1.0"], ["10.9.9", "11.0.0-rc.1"]),
        (">11.0.0", ["11.0.1"], ["11.0.0"]),
        ("<=11.2.0", ["11.2.0", "1.0.0"], ["11.2.1"]),
        ("<11.0.0", ["10.99.0"], ["11.0.0"]),
        ("=11.10.3", ["11.10.3"], ["11.10.4"]),
        ("11.10.3", ["11.10.3"], ["11.10.2"]),
        ("v11.10.3", ["11.10.3"], ["11.10.2"]),
        ("^11.2.0", ["11.2.0", "11.99.0"], ["11.1.9", "12.0.0"]),
        ("^0.2.3", ["0.2.9"], ["0.3.0", "0.2.2"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        ("^11.2", ["11.5.0"], ["12.0.0", "11.1.0"]),
        ("~11.2.0", ["11.2.5"], ["11.3.0", "11.1.0"]),
        ("~11", ["11.9.0"], ["12.0.0"]),
        ("11.*.*", ["11.0.0", "11.9.9"], ["12.0.0", "10.0.0"]),
        ("11.2.x", ["11.2.7"], ["11.3.0"]),
        (">=11.*", ["11.0.0"], ["10.9.0"]),
        ("<=11.*", ["11.9.0"], ["12.0.0"]),
        (">11.*", ["12.0.0"], ["11.9.0"]),
        ("9.0.0 - 11.0.0", ["9.0.0", "11.0.0"], ["11.0.1", "8.9.9"]),
        ("9.0.0 - 11", ["11.99.0"], ["12.0.0"]),
        (">=9.0.0, <12.0.0", ["11.10.3"], ["12.0.0", "8.0.0"]),
        (">= 9.0.0 <12.0.0", ["11.10.3"], ["12.0.0"]),
        ("*", ["0.0.1", "99.0.0"], []),
    ],
)
def test_range_syntax(text: str, inside: list[str], outside: list[str]) -> None:
    r = parse_range(text)
    for v in inside:
        assert r.includes(parse_version(v)), (text, v)
    for v in outside:
        assert not r.includes(parse_version(v)), (text, v)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("eleven", "'eleven' is not a version or comparator"),
        (">=11.0.0,", "empty item between commas"),
        ("!=11.0.0", "not a version or comparator"),
        ("*.1.0", "a number after a wildcard"),
        ("11.x-rc.1", "pre-release needs a full"),
        ("1.0.0 - >2.0.0", "'>2.0.0' in '1.0.0 - >2.0.0'"),
    ],
)
def test_a_range_that_does_not_parse_says_which_part_and_gives_examples(
    text: str, says: str
) -> None:
    with pytest.raises(RangeError) as e:
        parse_range(text)
    assert says in str(e.value)
    assert "e.g." in str(e.value) or "such as" in str(e.value) or "MAJOR.MINOR" in str(e.value)


def test_semver_precedence() -> None:
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2", "1.0.0-beta.11"]
    order += ["1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]
    versions = [parse_version(v) for v in order]
    assert sorted(reversed(versions)) == versions
    assert str(parse_version("v1.2.3-rc.1+build.5")) == "1.2.3-rc.1"
    with pytest.raises(RangeError, match=r"MAJOR\.MINOR\.PATCH"):
        parse_version("11")


def test_a_manifest_with_a_bad_range_is_one_line_naming_file_field_and_fix() -> None:
    raw = {
        "module_key": "@acme:cad",
        "module_version": "1.0.0",
        "agent_version": ">=eleven",
        "functions": {
            "@acme:mesh": [
                {
                    "entrypoint": "r.py",
                    "run_command": "{entrypoint}",
                    "function_schema": {"inputs": {}},
                }
            ]
        },
    }
    with pytest.raises(ManifestError) as e:
        parse_manifest(raw, "/mods/cad/module_manifest.json")
    assert e.value.path == "/mods/cad/module_manifest.json"
    assert e.value.field == "agent_version"
    assert "'>=eleven' is not a version" in e.value.problem
    assert "\n" not in str(e.value)
    raw["agent_version"] = ">=11.0.0"
    manifest = parse_manifest(raw, "x")
    assert manifest.agent_range() is not None


def test_agent_version_is_a_setting_with_the_protocol_level_as_default() -> None:
    base: dict[str, Any] = {"registry_api_url": "http://x", "registry_api_token": "t"}
    assert Settings(**base).agent_version == REPORTED_AGENT_VERSION == "11.10.3"
    assert Settings(**base, agent_version="12.0.0").agent_version == "12.0.0"
    with pytest.raises(ValidationError, match="agent_version"):
        Settings(**base, agent_version=">=11")


# API hashes and the verdict


def test_the_agent_sends_our_api_level_for_the_tags_it_calls_in_the_sdk_format() -> None:
    header = compat.agent_header()
    assert header.startswith("v2_main:Agent=b8c0169+6~0,v2_main:Agent Pool=")
    decoded = compat.decode(header)
    assert set(decoded) == set(compat.AGENT_TAGS)
    assert list(decoded) == sorted(decoded)  # sorted by key, as the SDK writes it
    assert compat.decode("a=1, junk ,=x,b=") == {"a": "1"}


def test_the_sdks_own_hashes_are_judged_compatible() -> None:
    from istari_digital_client.sdk._compatibility import API_HASHES

    assert compat.judge(API_HASHES).status == compat.Status.COMPATIBLE
    assert {k: API_HASHES[k] for k in compat.API_LEVEL} == dict(compat.API_LEVEL)


def test_verdicts() -> None:
    agent = "v2_main:Agent"
    assert compat.judge({agent: "b8c0169+6~0"}).status == "compatible"
    moved = compat.judge({agent: "b8c0169+5~0"})
    assert (moved.status, moved.incompatible_tags) == ("revision-mismatch", (agent,))
    broken = compat.judge({agent: "0000000+6~0", "v2_main:Job": "9f9dc2f+0~0"})
    assert broken.status == "incompatible"
    assert broken.incompatible_tags == (agent, "v2_main:Job")
    assert compat.judge({"v3:AI": "zzz+0~0"}).status == "compatible"  # not served: not judged
    old = compat.judge({agent: "b8c0169+6~0"}, deprecated={agent})
    assert (old.status, old.deprecated_tags) == ("deprecation-warning", (agent,))


def test_verdict_headers_round_trip_case_insensitively() -> None:
    verdict = compat.Verdict("incompatible", "0.1.0", ("v2_main:Agent", "v2_main:Job"))
    headers = {k.upper(): v for k, v in compat.answer(verdict).items()}
    assert compat.read(headers) == verdict
    assert compat.read({"Content-Type": "application/json"}) is None


def test_check_reports_the_verdict_and_fails_only_on_incompatible() -> None:
    url = "http://r"
    assert verdict_finding(url, None).ok
    assert verdict_finding(url, compat.Verdict("compatible", "1.0")).ok
    assert verdict_finding(url, compat.Verdict("revision-mismatch", "1.0", ("v2_main:Job",))).ok
    bad = verdict_finding(url, compat.Verdict("incompatible", "1.0", ("v2_main:Job",)))
    assert not bad.ok
    assert bad.topic == "compatibility"
    assert "registry 1.0" in bad.detail
    assert "v2_main:Job" in bad.detail
    assert "upgrade" in bad.detail
