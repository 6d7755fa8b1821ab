"""A file's media types, by its extension or else by its first bytes (pure, stdlib only).

`@mime_type:` validators ask what a downloaded file is. Its extension decides when it maps to a
type (Python's built-in table, never the host's `/etc/mime.types`, plus the engineering
formats below), so the answer is the same on every host; a file whose extension says nothing
(none, unknown, or `application/octet-stream`) is sniffed: a small table of well-known magic
bytes, then text formats recognised in valid UTF-8. A ZIP container is also `application/zip`
(an `.xlsx` satisfies `@mime_type:application/zip`).
"""

from __future__ import annotations

import json
import mimetypes
import struct

# How much of a file sniffing reads: enough for the ZIP members that name an Office document.
HEAD_BYTES = 64 * 1024

OCTET_STREAM = "application/octet-stream"
ZIP = "application/zip"
_OOXML = "application/vnd.openxmlformats-officedocument."
DOCX = _OOXML + "wordprocessingml.document"
XLSX = _OOXML + "spreadsheetml.sheet"
PPTX = _OOXML + "presentationml.presentation"

# Formats engineering users have that Python's built-in table lacks.
_EXTRA_TYPES = {
    ".docx": DOCX, ".xlsx": XLSX, ".pptx": PPTX,
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".stl": "model/stl", ".step": "model/step", ".stp": "model/step",
    ".iges": "model/iges", ".igs": "model/iges", ".obj": "model/obj", ".3mf": "model/3mf",
    ".glb": "model/gltf-binary", ".gltf": "model/gltf+json",
    ".md": "text/markdown", ".yaml": "application/yaml", ".yml": "application/yaml",
    ".toml": "application/toml", ".hdf5": "application/x-hdf5",
    ".7z": "application/x-7z-compressed", ".sqlite": "application/vnd.sqlite3",
}  # fmt: skip
_TABLE = mimetypes.MimeTypes()  # the built-in defaults only: the same answer on every host
for _ext, _type in _EXTRA_TYPES.items():
    _TABLE.add_type(_type, _ext, strict=False)

_ENCODINGS = {"gzip": "application/gzip", "bzip2": "application/x-bzip2",
              "xz": "application/x-xz", "br": "application/x-brotli"}  # fmt: skip

# The same type under its other common names, so validator and file compare as one.
_ALIASES = {
    "application/sla": "model/stl", "application/vnd.ms-pki.stl": "model/stl",
    "model/x.stl-binary": "model/stl", "model/x.stl-ascii": "model/stl",
    "application/step": "model/step", "application/x-zip-compressed": ZIP,
    "application/x-gzip": "application/gzip", "text/xml": "application/xml",
    "image/jpg": "image/jpeg", "application/x-hdf": "application/x-hdf5",
}  # fmt: skip

_ZIP_BASED = {DOCX, XLSX, PPTX, "application/java-archive", "application/epub+zip"}

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x1f\x8b", "application/gzip"),
    (b"BZh", "application/x-bzip2"),
    (b"\xfd7zXZ\x00", "application/x-xz"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"\x89HDF\r\n\x1a\n", "application/x-hdf5"),
    (b"SQLite format 3\x00", "application/vnd.sqlite3"),
)


def normalize(media_type: str) -> str:
    """Lower case, without parameters (`; charset=…`), under its usual name."""
    bare = media_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(bare, bare)


def matches(pattern: str, media_type: str) -> bool:
    """Whether `media_type` fits `pattern` (`image/png`, `image/*`, `*/*`)."""
    want, have = normalize(pattern), normalize(media_type)
    if want in ("*", "*/*") or want == have:
        return True
    major, _, minor = want.partition("/")
    return minor == "*" and have.startswith(major + "/")


def file_types(name: str, head: bytes, size: int) -> tuple[list[str], str]:
    """The file's media types, most specific first, and how they were found."""
    by_name = by_extension(name)
    if by_name:
        return _with_parents(by_name), "by its extension"
    return _with_parents(sniff(head, size)), "by its content"


def by_extension(name: str) -> list[str]:
    """The types the file name says (outer encoding first: `.tar.gz` is gzip, then tar)."""
    kind, encoding = _TABLE.guess_type(name, strict=False)
    found = [_ENCODINGS[encoding]] if encoding in _ENCODINGS else []
    if kind is not None and kind != OCTET_STREAM:
        found.append(normalize(kind))
    return found


def sniff(head: bytes, size: int) -> list[str]:
    """The types the content says, from its first bytes and its size."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return [kind]
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return [_zip_kind(head)]
    if head[257:262] == b"ustar":
        return ["application/x-tar"]
    if _binary_stl(head, size):
        return ["model/stl"]
    text = _text(head, complete=size <= len(head))
    return [OCTET_STREAM] if text is None else [_text_kind(text, complete=size <= len(head))]


def _with_parents(types: list[str]) -> list[str]:
    parents = [ZIP for t in types if t in _ZIP_BASED or t.startswith("application/vnd.oasis.")]
    return types + [p for p in dict.fromkeys(parents) if p not in types]


def _binary_stl(head: bytes, size: int) -> bool:
    """An 80-byte header, a triangle count, 50 bytes per triangle: the size must agree."""
    if len(head) < 84:
        return False
    count: int = struct.unpack_from("<I", head, 80)[0]
    return size == 84 + 50 * count


def _zip_kind(head: bytes) -> str:
    """An Office or OpenDocument file by the member names in its first local headers."""
    start = head.find(b"PK\x03\x04")
    while start != -1 and start + 30 <= len(head):
        csize, name_len, extra_len = struct.unpack_from("<I4xHH", head, start + 18)
        name = head[start + 30 : start + 30 + name_len]
        for prefix, kind in ((b"word/", DOCX), (b"xl/", XLSX), (b"ppt/", PPTX)):
            if name.startswith(prefix):
                return kind
        if name == b"mimetype":  # OpenDocument: the first member, stored, holds the type
            body = start + 30 + name_len + extra_len
            declared = head[body : body + csize].decode("ascii", "replace")
            if declared.startswith("application/"):
                return declared
        start = head.find(b"PK\x03\x04", start + 4)
    return ZIP


def _text(head: bytes, *, complete: bool) -> str | None:
    """The head as text when it is UTF-8 without NULs (a character cut at the end is fine)."""
    if b"\x00" in head:
        return None
    data = head.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if complete or e.start < len(data) - 3:
            return None
        return data[: e.start].decode("utf-8")


def _text_kind(text: str, *, complete: bool) -> str:
    stripped = text.lstrip()
    if stripped.startswith("solid") and ("facet" in text or "endsolid" in text):
        return "model/stl"
    if stripped.startswith("ISO-10303-21;"):
        return "model/step"
    if stripped.startswith("<?xml"):
        return "application/xml"
    if stripped[:1] in ("{", "[") and (not complete or _is_json(text)):
        return "application/json"
    return "text/plain"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
