"""Content addressing: the salted SHA-384 and the properties document."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from agent.protocol.content import (
    digest_file,
    extension_of,
    is_salt,
    is_sha,
    new_salt,
    properties_document,
    salted_sha,
)


def test_salted_sha_is_sha384_of_content_then_salt() -> None:
    salt = "0" * 32
    assert salted_sha(b"abc", salt) == hashlib.sha384(b"abc" + salt.encode()).hexdigest()
    assert is_sha(salted_sha(b"abc", salt))


def test_new_salts_are_distinct_and_well_formed() -> None:
    salts = {new_salt() for _ in range(100)}
    assert len(salts) == 100
    assert all(is_salt(s) for s in salts)


def test_digest_file_matches_in_memory_hash(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10_000  # spans several chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    digest = digest_file(path, salt="a" * 32)
    assert digest.sha == salted_sha(data, "a" * 32)
    assert digest.size == len(data)


def test_bad_shas_and_salts_are_rejected() -> None:
    assert not is_sha("../x")
    assert not is_sha("A" * 96)
    assert not is_sha("a" * 64)
    assert not is_salt("g" * 32)


def test_extensions_follow_the_platform_rules() -> None:
    assert extension_of("part.STL") == "stl"
    assert extension_of("x.prt.3") == "prt.3"
    assert extension_of("a.CATPart") == "CATPart"
    assert extension_of("noext") is None


def test_properties_document_is_compact_and_ordered() -> None:
    doc = properties_document("model.stl", 42)
    assert b" " not in doc
    parsed = json.loads(doc)
    assert list(parsed) == [
        "file_name",
        "size",
        "extension",
        "mime",
        "description",
        "version_name",
        "external_identifier",
        "display_name",
    ]
    assert parsed["extension"] == "stl"
    assert parsed["size"] == 42
