"""The official SDK's own multipart upload (`add_model` above its `multipart_threshold`)
against the local registry: begun, parts PUT, completed, verified, read back and hashed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import pytest

from agent.registry.client import RegistryClient
from agent.registry.transfer import upload_revision
from tests.support.registry import RegistryProcess, start_registry_process, stop_registry_process

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


def _write_big(path: Path, size: int) -> str:
    """Write `size` bytes fast (a pseudo-random MiB, rotated per MiB); their sha384."""
    block, h = os.urandom(2**20), hashlib.sha384()
    with path.open("wb") as f:
        for i in range(size // 2**20):
            chunk = block[i % 997 :] + block[: i % 997]
            f.write(chunk)
            h.update(chunk)
    return h.hexdigest()


@pytest.mark.slow
def test_a_3_gib_output_crosses_the_default_threshold_and_reads_back_through_the_sdk(
    tmp_path: Path,
) -> None:
    """The agent's upload path with the defaults (2 GiB threshold, 128 MiB parts, 4 at once)
    against a registry process; the SDK reads the model back (checking its sha) and we hash."""
    istari = pytest.importorskip("istari_digital_client")
    size = 3 * 2**30
    path = tmp_path / "big.bin"
    expected = _write_big(path, size)
    reg = start_registry_process(tmp_path / "registry", secrets.token_urlsafe(24))
    try:

        async def upload() -> str:
            async with RegistryClient(reg.url, reg.token) as client:
                sent: list[int] = []
                revision = await upload_revision(client, path, progress=sent.append)
                assert len(sent) == 24  # 3 GiB in 128 MiB parts (the default chunk size)
                assert sum(sent) == size
                return (await client.create_model(revision)).id

        model_id = asyncio.run(upload())
        path.unlink()
        os.environ.pop("ISTARI_DIGITAL_API_URL", None)
        sdk = istari.Client(
            istari.Configuration(registry_url=reg.url, registry_auth_token=reg.token)
        )
        revision = sdk.get_model(model_id).file.revisions[-1]
        assert revision.size == size
        back = revision.read_bytes()  # the SDK checks sha384(bytes + salt) itself
        assert len(back) == size
        assert hashlib.sha384(back).hexdigest() == expected
        del back
    finally:
        stop_registry_process(reg)
        path.unlink(missing_ok=True)
        shutil.rmtree(tmp_path / "registry", ignore_errors=True)
