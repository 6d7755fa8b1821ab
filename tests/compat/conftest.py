"""The compat suite drives a real registry process with the official SDK over loopback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.compat import EXAMPLE_MANIFEST
from tests.support.registry import RegistryProcess


@pytest.fixture(scope="module")
def sdk(registry_process: RegistryProcess) -> Iterator[Any]:
    """The official SDK's stable client pointed at the registry process."""
    istari = pytest.importorskip("istari_digital_client")
    os.environ.pop("ISTARI_DIGITAL_API_URL", None)
    config = istari.Configuration(
        registry_url=registry_process.url, registry_auth_token=registry_process.token
    )
    yield istari.Client(config)


@pytest.fixture(scope="module")
def published(sdk: Any) -> Any:
    """The example module, published through the SDK's `create_module`."""
    from istari_digital_client.legacy.v2.models.manifest import Manifest

    return sdk.create_module(Manifest.from_dict(json.loads(json.dumps(EXAMPLE_MANIFEST))))


@pytest.fixture
def stl_file(tmp_path: Path) -> Path:
    """A small binary file with every byte value, named like an STL."""
    path = tmp_path / "bracket.stl"
    path.write_bytes(bytes(range(256)) * 4096 + os.urandom(1000))
    return path
