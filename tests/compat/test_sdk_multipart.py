"""The official SDK's own multipart upload (`add_model` above its `multipart_threshold`)
against the local registry: begun, parts PUT, completed, verified, read back and hashed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.registry import RegistryProcess

KiB = 1024
# The SDK warns on every deprecated v2 route it calls (as test_sdk.py says).
pytestmark = pytest.mark.filterwarnings(r"ignore:.* is deprecated\.?:DeprecationWarning")


@pytest.fixture(scope="module")
def small_parts_sdk(registry_process: RegistryProcess) -> Any:
    """An SDK client whose threshold and chunk size are small, so a test file goes in parts."""
    istari = pytest.importorskip("istari_digital_client")
    os.environ.pop("ISTARI_DIGITAL_API_URL", None)
    config = istari.Configuration(
        registry_url=registry_process.url,
        registry_auth_token=registry_process.token,
        multipart_threshold=256 * KiB,
        multipart_chunksize=100 * KiB,
    )
    return istari.Client(config)


def test_the_sdks_multipart_add_model_arrives_intact(small_parts_sdk: Any, tmp_path: Path) -> None:
    path = tmp_path / "large.bin"
    path.write_bytes(os.urandom(1000 * KiB + 7))  # 11 parts, the last of 7 bytes past 1000 KiB
    model = small_parts_sdk.add_model(path, description="in parts")
    again = small_parts_sdk.get_model(model.id)
    revision = again.file.revisions[-1]
    assert revision.size == path.stat().st_size
    back = revision.read_bytes()
    assert hashlib.sha384(back).hexdigest() == hashlib.sha384(path.read_bytes()).hexdigest()


def test_the_same_bytes_sent_twice_by_the_sdk_are_two_uploads_under_their_salts(
    small_parts_sdk: Any, tmp_path: Path
) -> None:
    path = tmp_path / "twice.bin"
    path.write_bytes(os.urandom(300 * KiB))
    one, two = small_parts_sdk.add_model(path), small_parts_sdk.add_model(path)
    for model in (one, two):
        read = small_parts_sdk.get_model(model.id).file.revisions[-1].read_bytes()
        assert read == path.read_bytes()
