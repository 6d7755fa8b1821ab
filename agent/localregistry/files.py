"""Files, revisions, models and artifacts: checking a new revision, and their wire shapes.

A model or artifact is a resource owning one file; a file owns an ordered list of revisions;
a revision names two blobs (content and properties), each checked against its salt before the
revision is accepted. Their rows live in `store/files.py` and `store/resources.py`.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from agent import jsontext
from agent.localregistry.blobs import BlobStore
from agent.localregistry.errors import validation_error
from agent.localregistry.inbound import FileRevisionIn, TokenIn
from agent.localregistry.store.files import File
from agent.localregistry.wire import new_id, now
from agent.protocol.content import extension_of, mime_of

_PROPERTIES_MAX = 64 * 1024
_META_MAX = 255  # inbound.Meta


def stable_id(owner: str, what: str) -> str:
    """A deterministic id for a sub-record that is not stored on its own."""
    return str(uuid.uuid5(uuid.UUID(owner), what))


def _token(t: TokenIn, created: str, by: str) -> dict[str, Any]:
    return {"id": new_id(), "created": created, "sha": t.sha, "salt": t.salt, "created_by_id": by}


async def _check_blob(blobs: BlobStore, which: str, token: TokenIn) -> int:
    if not blobs.uploaded(token.sha):
        raise validation_error(
            ["body", which, "sha"],
            f"no blob with sha {token.sha} has been uploaded; upload it to the URL from "
            f"GET /api/v2/tokens/{token.sha}/upload-url first",
        )
    size = await blobs.verify(token.sha, token.salt)
    if size is None:
        raise validation_error(
            ["body", which, "sha"],
            f"sha {token.sha} does not match sha384(uploaded bytes + salt); "
            "hash the bytes you uploaded with this salt",
        )
    return size


def _properties(blobs: BlobStore, sha: str, size: int) -> dict[str, str]:
    """The properties blob's string fields (of at most 255 characters, as a revision's own);
    anything else in it is someone else's business and is ignored, never a 500."""
    if size > _PROPERTIES_MAX:
        return {}
    try:
        doc = jsontext.loads(blobs.path(sha).read_bytes())
    except (OSError, ValueError):  # not JSON, or nested too deep (jsontext)
        return {}
    if not isinstance(doc, dict):
        return {}
    return {k: v for k, v in doc.items() if isinstance(v, str) and len(v) <= _META_MAX}


async def build_revision(
    blobs: BlobStore, rev: FileRevisionIn, file_id: str, by: str
) -> dict[str, Any]:
    """Check a revision's blobs and build its stored document (the wire `FileRevision`).

    Blob checks may await, so they happen before the caller's (synchronous) transaction.
    """
    size = await _check_blob(blobs, "content_token", rev.content_token)
    props_size = await _check_blob(blobs, "properties_token", rev.properties_token)
    if rev.size is not None and rev.size != size:
        raise validation_error(
            ["body", "size"], f"size {rev.size} does not match the uploaded content ({size} bytes)"
        )
    props = _properties(blobs, rev.properties_token.sha, props_size)
    name = rev.name or props.get("file_name")
    rev_id, created = new_id(), now()
    return {
        "id": rev_id,
        "created": created,
        "file_id": file_id,
        "content_token": _token(rev.content_token, created, by),
        "properties_token": _token(rev.properties_token, created, by),
        "archive_status_history": [
            {
                "id": stable_id(rev_id, "archive"),
                "created": created,
                "name": "Active",
                "reason": "Initial",
                "created_by_id": None,
                "file_revision_id": rev_id,
            }
        ],
        "name": name,
        "extension": rev.extension or (extension_of(name) if name else None),
        "size": size,
        "mime": rev.mime or props.get("mime") or (mime_of(name) if name else None),
        "description": rev.description or props.get("description"),
        "version_name": rev.version_name or props.get("version_name"),
        "external_identifier": rev.external_identifier or props.get("external_identifier"),
        "display_name": rev.display_name or props.get("display_name"),
        "sources": rev.sources or [],
        "products": rev.products or [],
        "created_by_id": by,
    }


def file_wire(file: File) -> dict[str, Any]:
    """The wire `File` with all its revisions."""
    row = file.row
    return {
        "id": row["id"],
        "created": row["created"],
        "revisions": file.revisions,
        "archive_status_history": [
            {
                "id": stable_id(row["id"], "archive"),
                "created": row["created"],
                "name": "Active",
                "reason": "Initial",
                "created_by_id": None,
                "file_id": row["id"],
            }
        ],
        "resource_id": row["resource_id"],
        "resource_type": row["resource_type"],
        "created_by_id": row["created_by_id"],
        "control_tags": [],
    }


def resource_archive_history(row: sqlite3.Row) -> list[dict[str, Any]]:
    """The `ResourceArchiveStatus` history of a model, artifact or job row."""
    history = [
        {
            "id": stable_id(row["id"], "archive"),
            "created": row["created"],
            "name": "Active",
            "reason": "Initial",
            "created_by_id": row["created_by_id"],
            "resource_id": row["id"],
        }
    ]
    if row["archived"]:
        history.append(
            {
                "id": stable_id(row["id"], "archived"),
                "created": row["created"],
                "name": "Archived",
                "reason": None,
                "created_by_id": row["created_by_id"],
                "resource_id": row["id"],
            }
        )
    return history


def resource_base(row: sqlite3.Row, file: File) -> dict[str, Any]:
    """The fields every file-backed resource (model, artifact, job) carries on the wire."""
    return {
        "id": row["id"],
        "created": row["created"],
        "file": file_wire(file),
        "comments": [],
        "archive_status_history": resource_archive_history(row),
        "created_by_id": row["created_by_id"],
    }
