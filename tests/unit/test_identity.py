"""The agent's saved identity: reused only with the same registry, never from a bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.identity import STATE_FILE, Identity, load, save

URL = "http://registry.test:8765"


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    state = tmp_path / "state" / "nested"  # created on save
    save(state, Identity(URL, "agent-123"))
    assert load(state, URL) == Identity(URL, "agent-123")
    assert json.loads((state / STATE_FILE).read_text()) == {
        "registry_url": URL,
        "agent_id": "agent-123",
    }


def test_saving_again_replaces_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    save(tmp_path, Identity(URL, "first"))
    save(tmp_path, Identity(URL, "second"))
    assert load(tmp_path, URL) == Identity(URL, "second")
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]


def test_another_registry_gets_no_identity(tmp_path: Path) -> None:
    save(tmp_path, Identity(URL, "agent-123"))
    assert load(tmp_path, "http://other.test:8765") is None
    assert load(tmp_path, URL + "/") is None  # compared exactly, as saved


def test_nothing_saved_is_none(tmp_path: Path) -> None:
    assert load(tmp_path, URL) is None
    assert load(tmp_path / "missing", URL) is None


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{not json",
        "\xff\xfe",
        "[]",
        '"agent-123"',
        json.dumps({"registry_url": URL}),
        json.dumps({"registry_url": URL, "agent_id": ""}),
        json.dumps({"registry_url": URL, "agent_id": 123}),
        json.dumps({"agent_id": "agent-123"}),
    ],
)
def test_a_corrupt_file_is_none(tmp_path: Path, content: str) -> None:
    (tmp_path / STATE_FILE).write_text(content, encoding="latin-1")
    assert load(tmp_path, URL) is None


def test_an_unreadable_state_file_is_none(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).mkdir()  # a directory where the file should be
    assert load(tmp_path, URL) is None
