"""The `@example:stl_summary` tool: measure an STL mesh and draw a top-down PNG silhouette.

Usage: python3 stl_summary.py INPUT_FILE OUTPUT_FILE TEMP_DIR (the agent's run_command).
Reads ASCII or binary STL with Python 3.8+ and the standard library only; a file it cannot use
is reported on stderr with exit status 2, and no output file is written.
"""

from __future__ import annotations

import json
import math
import struct
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # aliases for annotations only, so the tool still runs on Python 3.8
    Vec = tuple[float, float, float]
    Triangle = tuple[Vec, Vec, Vec]
    Point = tuple[float, float]

EXIT_BAD_INPUT = 2
BINARY_HEADER = 80
BINARY_RECORD = 50  # normal + 3 vertices (12 little-endian float32) + attribute word
PREVIEW_SIZE, PREVIEW_MARGIN = 256, 8  # pixels
BACKGROUND, INK = 0xFF, 0x30
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ASCII_KEYWORDS = frozenset({"solid", "facet", "outer", "vertex", "endloop", "endfacet", "endsolid"})
VERTEX_DIGITS = 6  # vertices closer than this many decimals are the same point for edge matching


class BadInput(Exception):
    """An input the tool cannot use; the message is what the user sees."""


def load_inputs(input_file: Path) -> tuple[Path, str]:
    """The STL path and the units from the agent's input document."""
    try:
        doc = json.loads(input_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        msg = f"cannot read the input file {input_file}: {e}"
        raise BadInput(msg) from None
    if not isinstance(doc, dict):
        msg = "the input file must hold a JSON object keyed by input name"
        raise BadInput(msg)
    part = doc.get("part")
    if not isinstance(part, dict) or not isinstance(part.get("value"), str):
        msg = "input 'part' (the STL model) is missing from the input file"
        raise BadInput(msg)
    entry = doc.get("units")
    units = entry.get("value") if isinstance(entry, dict) else "mm"  # optional; mm by default
    if not isinstance(units, str) or not units.strip():
        msg = f"parameter 'units' must be a non-empty string such as \"mm\", not {units!r}"
        raise BadInput(msg)
    return Path(part["value"]), units.strip()


def parse_stl(data: bytes) -> tuple[str, list[Triangle]]:
    """('binary' | 'ascii', triangles); BadInput says why the bytes are not a usable STL."""
    if _is_binary(data):
        triangles, kind = _parse_binary(data), "binary"
    elif data.lstrip()[:5].lower() == b"solid":
        triangles, kind = _parse_ascii(data), "ascii"
    elif len(data) >= BINARY_HEADER + 4:
        (count,) = struct.unpack_from("<I", data, BINARY_HEADER)
        need = BINARY_HEADER + 4 + BINARY_RECORD * count
        msg = f"binary STL declares {count} triangles ({need} bytes) but has {len(data)} bytes"
        raise BadInput(msg)
    else:
        msg = f"not an STL file: {len(data)} bytes, and it does not start with 'solid'"
        raise BadInput(msg)
    if not triangles:
        msg = "the STL file holds no triangles"
        raise BadInput(msg)
    if not all(math.isfinite(c) for tri in triangles for v in tri for c in v):
        msg = "the STL file has a vertex that is not a finite number"
        raise BadInput(msg)
    return kind, triangles


def _is_binary(data: bytes) -> bool:
    # An ASCII file may start with "solid" and so may a binary header: the size decides.
    if len(data) < BINARY_HEADER + 4:
        return False
    count: int = struct.unpack_from("<I", data, BINARY_HEADER)[0]
    return len(data) == BINARY_HEADER + 4 + BINARY_RECORD * count


def _parse_binary(data: bytes) -> list[Triangle]:
    (count,) = struct.unpack_from("<I", data, BINARY_HEADER)
    triangles: list[Triangle] = []
    for i in range(count):
        f = struct.unpack_from("<12f", data, BINARY_HEADER + 4 + BINARY_RECORD * i)
        triangles.append(((f[3], f[4], f[5]), (f[6], f[7], f[8]), (f[9], f[10], f[11])))
    return triangles


def _parse_ascii(data: bytes) -> list[Triangle]:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as e:
        msg = f"ASCII STL has a non-ASCII byte at offset {e.start}"
        raise BadInput(msg) from None
    triangles: list[Triangle] = []
    facet: list[Vec] | None = None
    ended = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        keyword = words[0].lower()
        if keyword not in ASCII_KEYWORDS:
            msg = f"line {lineno}: unexpected {words[0][:20]!r} in an ASCII STL"
            raise BadInput(msg)
        if keyword == "facet":
            facet = []
        elif keyword == "vertex":
            _add_vertex(facet, words, lineno)
        elif keyword == "endfacet":
            triangles.append(_close_facet(facet, lineno))
            facet = None
        ended = keyword == "endsolid"
    if facet is not None or not ended:
        msg = "ASCII STL does not end with 'endsolid' (is the file truncated?)"
        raise BadInput(msg)
    return triangles


def _add_vertex(facet: list[Vec] | None, words: list[str], lineno: int) -> None:
    if facet is None:
        msg = f"line {lineno}: 'vertex' outside a facet"
        raise BadInput(msg)
    try:
        x, y, z = (float(w) for w in words[1:])
    except ValueError:
        msg = f"line {lineno}: a vertex needs three numbers, got {' '.join(words[1:])!r}"
        raise BadInput(msg) from None
    facet.append((x, y, z))


def _close_facet(facet: list[Vec] | None, lineno: int) -> Triangle:
    if facet is None or len(facet) != 3:
        found = 0 if facet is None else len(facet)
        msg = f"line {lineno}: a facet needs exactly 3 vertices, found {found}"
        raise BadInput(msg)
    return facet[0], facet[1], facet[2]


def _sub(a: Vec, b: Vec) -> Vec:
    return a[0] - b[0], a[1] - b[1], a[2] - b[2]


def _cross(a: Vec, b: Vec) -> Vec:
    return a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]


def _dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def edge_report(triangles: list[Triangle]) -> dict[str, int]:
    """Counts of open, non-manifold and inconsistently wound edges (all 0 for a closed shell)."""
    directed: Counter[tuple[Vec, Vec]] = Counter()
    for tri in triangles:
        a, b, c = (_key(v) for v in tri)
        directed.update(e for e in ((a, b), (b, c), (c, a)) if e[0] != e[1])
    undirected: Counter[tuple[Vec, Vec]] = Counter()
    for (p, q), n in directed.items():
        undirected[min(p, q), max(p, q)] += n
    return {
        "open": sum(1 for n in undirected.values() if n == 1),
        "non_manifold": sum(1 for n in undirected.values() if n > 2),
        "inconsistent_winding": sum(1 for n in directed.values() if n > 1),
    }


def _key(v: Vec) -> Vec:
    return round(v[0], VERTEX_DIGITS), round(v[1], VERTEX_DIGITS), round(v[2], VERTEX_DIGITS)


def summarize(triangles: list[Triangle], units: str) -> dict[str, Any]:
    """The summary document: size, area, signed volume and a watertightness guess."""
    points = [v for tri in triangles for v in tri]
    lo = [min(p[i] for p in points) for i in range(3)]
    hi = [max(p[i] for p in points) for i in range(3)]
    area = sum(0.5 * math.sqrt(_dot(n, n)) for n in (_normal(t) for t in triangles))
    # Divergence theorem: tetrahedra from the origin; positive when normals point outward.
    volume = sum(_dot(a, _cross(b, c)) for a, b, c in triangles) / 6.0
    edges = edge_report(triangles)
    size = [hi[i] - lo[i] for i in range(3)]
    return {
        "units": units,
        "triangles": len(triangles),
        "bounding_box": {"min": lo, "max": hi, "size": size},
        "surface_area": area,
        "volume": volume,
        "watertight": edges["open"] == 0 and edges["non_manifold"] == 0,
        "edges": edges,
    }


def _normal(tri: Triangle) -> Vec:
    return _cross(_sub(tri[1], tri[0]), _sub(tri[2], tri[0]))


def render_top_view(triangles: list[Triangle], size: int) -> bytearray:
    """A size x size grayscale silhouette of the mesh seen from +z (+y up, +x right)."""
    pixels = bytearray([BACKGROUND]) * (size * size)
    xs = [v[0] for tri in triangles for v in tri]
    ys = [v[1] for tri in triangles for v in tri]
    x0, y0, width, height = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    scale = (size - 2 * PREVIEW_MARGIN) / (max(width, height) or 1.0)
    left, bottom = (size - width * scale) / 2, (size - height * scale) / 2  # centred

    def project(v: Vec) -> Point:
        return left + (v[0] - x0) * scale, size - bottom - (v[1] - y0) * scale

    for tri in triangles:
        _fill_triangle(pixels, size, (project(tri[0]), project(tri[1]), project(tri[2])))
    return pixels


def _fill_triangle(pixels: bytearray, size: int, tri: tuple[Point, Point, Point]) -> None:
    # Scanline fill: a pixel is inked when its centre lies inside the projected triangle.
    ys = [p[1] for p in tri]
    first = max(0, math.ceil(min(ys) - 0.5))
    last = min(size - 1, math.floor(max(ys) - 0.5))
    for row in range(first, last + 1):
        span = _row_span(tri, row + 0.5)
        if span is None:
            continue
        x0 = max(0, math.ceil(span[0] - 0.5))
        x1 = min(size - 1, math.floor(span[1] - 0.5))
        if x1 >= x0:
            pixels[row * size + x0 : row * size + x1 + 1] = bytes([INK]) * (x1 - x0 + 1)


def _row_span(tri: tuple[Point, Point, Point], y: float) -> Point | None:
    xs = []
    for (x1, y1), (x2, y2) in ((tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0])):
        if min(y1, y2) <= y < max(y1, y2):
            xs.append(x1 + (y - y1) * (x2 - x1) / (y2 - y1))
    return (min(xs), max(xs)) if len(xs) >= 2 else None


def png_bytes(pixels: bytes | bytearray, width: int, height: int) -> bytes:
    """An 8-bit grayscale PNG of `pixels` (row-major, one byte each)."""
    rows = b"".join(b"\x00" + bytes(pixels[r * width : (r + 1) * width]) for r in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    image = _chunk(b"IDAT", zlib.compress(rows, 9))
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + image + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def run(input_file: Path, temp_dir: Path) -> list[dict[str, str]]:
    """Do the work; returns the output document's entries."""
    stl_path, units = load_inputs(input_file)
    try:
        data = stl_path.read_bytes()
    except OSError as e:
        msg = f"cannot read the STL file {stl_path}: {e.strerror}"
        raise BadInput(msg) from None
    kind, triangles = parse_stl(data)
    summary = {"file": stl_path.name, "format": kind, **summarize(triangles, units)}
    temp_dir.mkdir(parents=True, exist_ok=True)
    summary_path = temp_dir.resolve() / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    preview_path = temp_dir.resolve() / "preview.png"
    pixels = render_top_view(triangles, PREVIEW_SIZE)
    preview_path.write_bytes(png_bytes(pixels, PREVIEW_SIZE, PREVIEW_SIZE))
    return [
        {"name": "summary", "type": "file", "path": str(summary_path)},
        {"name": "preview", "type": "file", "path": str(preview_path)},
    ]


def main(argv: list[str]) -> int:
    """Entry point: the process exit status (0 done, 2 bad input)."""
    if len(argv) != 4:
        print("usage: stl_summary.py INPUT_FILE OUTPUT_FILE TEMP_DIR", file=sys.stderr)
        return EXIT_BAD_INPUT
    input_file, output_file, temp_dir = (Path(a) for a in argv[1:])
    try:
        outputs = run(input_file, temp_dir)
    except BadInput as e:
        print(f"stl_summary: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    output_file.write_text(json.dumps(outputs, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
