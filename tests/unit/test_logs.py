"""The redaction processor keeps tokens and presigned signatures out of log lines."""

from __future__ import annotations

from typing import Any

from agent.logs import MASK, redact, redact_text


def test_secret_keys_are_masked_wherever_they_sit() -> None:
    event: dict[str, Any] = {
        "event": "registry.request",
        "token": "s3cr3t",
        "headers": {"Authorization": "Bearer s3cr3t", "Accept": "application/json"},
        "items": [{"password": "hunter2"}, "plain"],
    }
    out = redact(None, "info", event)
    assert out["token"] == MASK
    assert out["headers"]["Authorization"] == MASK
    assert out["headers"]["Accept"] == "application/json"
    assert out["items"] == [{"password": MASK}, "plain"]
    assert "s3cr3t" not in repr(out) and "hunter2" not in repr(out)


def test_signatures_and_bearer_tokens_are_masked_in_free_text() -> None:
    url = "http://h/blobs/ab?op=put&expires=1&signature=deadbeef&X-Amz-Signature=cafe"
    text = redact_text(f"PUT {url} failed; header was Bearer abc.def-ghi")
    assert "deadbeef" not in text and "cafe" not in text and "abc.def-ghi" not in text
    assert "op=put" in text and "expires=1" in text
