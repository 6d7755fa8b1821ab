"""The example modules: manifests the agent accepts, and tools run as real child programs."""

from __future__ import annotations

import csv
import importlib.util
import json
import statistics
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from xml.etree import ElementTree

import pytest

from agent.protocol.manifest import FunctionVariant, Manifest, parse_manifest
from agent.protocol.placeholders import build_argv

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODULES = EXAMPLES / "modules"
DATA = EXAMPLES / "data"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_generator() -> ModuleType:
    """examples/data/generate.py as a module, for the dimensions the data was made from."""
    spec = importlib.util.spec_from_file_location("example_data_generate", DATA / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = load_generator()


def load_manifest(module_dir: Path) -> Manifest:
    path = module_dir / "module_manifest.json"
    return parse_manifest(json.loads(path.read_text(encoding="utf-8")), str(path))


@dataclass(frozen=True)
class ToolRun:
    """One finished tool process and what it said it produced."""

    returncode: int
    stderr: str
    temp_dir: Path
    outputs: dict[str, Path]
    types: dict[str, str]


def run_tool(module: str, inputs: dict[str, Any], tmp_path: Path) -> ToolRun:
    """Run a module's only function the way the agent does: its run_command, its argv."""
    module_dir = MODULES / module
    manifest = load_manifest(module_dir)
    [variants] = manifest.functions.values()
    variant: FunctionVariant = variants[0]
    work = tmp_path / "work"
    temp_dir = work / "tmp"
    temp_dir.mkdir(parents=True)
    input_file, output_file = work / "input.json", work / "output.json"
    input_file.write_text(json.dumps(inputs), encoding="utf-8")
    argv = build_argv(
        variant.run_command,
        {
            "entrypoint": str(module_dir / variant.entrypoint),
            "input_file": str(input_file),
            "output_file": str(output_file),
            "temp_dir": str(temp_dir),
        },
    )
    assert argv[0] == "python3"
    argv[0] = sys.executable
    proc = subprocess.run(
        argv, cwd=temp_dir, capture_output=True, text=True, timeout=60, check=False
    )
    entries: list[dict[str, str]] = []
    if proc.returncode == 0:
        entries = json.loads(output_file.read_text(encoding="utf-8"))
    else:
        assert not output_file.exists(), "a failing tool must not write its output file"
    return ToolRun(
        proc.returncode,
        proc.stderr,
        temp_dir,
        {e["name"]: Path(e["path"]) for e in entries},
        {e["name"]: e["type"] for e in entries},
    )


def check_against_schema(module: str, run: ToolRun) -> None:
    """Every produced output is declared with its type, every required one is there."""
    [variants] = load_manifest(MODULES / module).functions.values()
    declared = {o.name: o for o in variants[0].function_schema.outputs}
    assert set(run.outputs) <= set(declared)
    assert {n for n, o in declared.items() if o.required} <= set(run.outputs)
    for name, path in run.outputs.items():
        assert path.is_absolute()
        assert path.is_relative_to(run.temp_dir.resolve())
        assert run.types[name] == declared[name].type
        assert path.is_dir() == (declared[name].type == "directory")


def model(path: Path) -> dict[str, Any]:
    return {"type": "user_model", "value": str(path)}


def param(value: Any) -> dict[str, Any]:
    return {"type": "parameter", "value": value}


# --- manifests ---------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["stl_summary", "csv_stats"])
def test_example_manifest_parses_and_points_at_its_entrypoint(module: str) -> None:
    manifest = load_manifest(MODULES / module)
    assert manifest.module_version == "1.0.0"
    assert manifest.module_type == "function"
    assert manifest.tool_versions == ["1.0"]
    for variants in manifest.functions.values():
        for variant in variants:
            assert (MODULES / module / variant.entrypoint).is_file()
            assert manifest.variant_oses(variant) == manifest.operating_systems


def test_every_example_directory_is_a_module() -> None:
    found = sorted(p.parent.name for p in MODULES.glob("*/module_manifest.json"))
    assert found == ["csv_stats", "stl_summary"]
    keys = {load_manifest(MODULES / m).key() for m in found}
    assert keys == {"@example:stl_tools", "@example:csv_tools"}


def test_optional_inputs_are_declared_optional() -> None:
    [stl] = load_manifest(MODULES / "stl_summary").functions["@example:stl_summary"]
    [csv_] = load_manifest(MODULES / "csv_stats").functions["@example:csv_stats"]
    stl_inputs, csv_inputs = stl.function_schema.inputs, csv_.function_schema.inputs
    assert not stl_inputs["part"].optional
    assert stl_inputs["units"].optional
    assert stl_inputs["units"].validation_types == ["@string"]
    assert not csv_inputs["table"].optional
    assert csv_inputs["columns"].optional
    assert csv_inputs["delimiter"].optional


# --- data --------------------------------------------------------------------------------


def test_generator_reproduces_the_committed_data(tmp_path: Path) -> None:
    paths = GEN.write_all(tmp_path)
    assert {p.name for p in paths} == {"bracket.stl", "sensors.csv"}
    for path in paths:
        committed = DATA / path.name
        assert path.read_bytes() == committed.read_bytes(), f"regenerate {committed}"
        assert committed.stat().st_size < 50_000


# --- stl_summary -------------------------------------------------------------------------


def summarize(stl: Path, tmp_path: Path, **params: Any) -> tuple[ToolRun, dict[str, Any]]:
    inputs = {"part": model(stl)} | {k: param(v) for k, v in params.items()}
    run = run_tool("stl_summary", inputs, tmp_path)
    assert run.returncode == 0, run.stderr
    check_against_schema("stl_summary", run)
    return run, json.loads(run.outputs["summary"].read_text(encoding="utf-8"))


def assert_bracket(summary: dict[str, Any]) -> None:
    size = [GEN.BRACKET_WIDTH, GEN.BRACKET_DEPTH, GEN.BRACKET_HEIGHT]
    assert summary["triangles"] == len(GEN.bracket_triangles())
    assert summary["bounding_box"]["min"] == pytest.approx([0.0, 0.0, 0.0])
    assert summary["bounding_box"]["max"] == pytest.approx(size)
    assert summary["bounding_box"]["size"] == pytest.approx(size)
    assert summary["volume"] == pytest.approx(GEN.bracket_volume(), rel=1e-6)
    assert summary["surface_area"] == pytest.approx(GEN.bracket_area(), rel=1e-6)
    assert summary["watertight"] is True
    assert summary["edges"] == {"open": 0, "non_manifold": 0, "inconsistent_winding": 0}


def test_stl_summary_measures_the_ascii_bracket(tmp_path: Path) -> None:
    _, summary = summarize(DATA / "bracket.stl", tmp_path, units="in")
    assert summary["format"] == "ascii"
    assert summary["units"] == "in"
    assert_bracket(summary)


def write_binary_stl(path: Path, triangles: list[Any]) -> None:
    # The header starts with "solid" on purpose: readers must go by size, not by that word.
    with path.open("wb") as f:
        f.write(b"solid but binary".ljust(80, b" "))
        f.write(struct.pack("<I", len(triangles)))
        for tri in triangles:
            f.write(struct.pack("<3f", 0.0, 0.0, 0.0))
            for vertex in tri:
                f.write(struct.pack("<3f", *vertex))
            f.write(b"\0\0")


def test_stl_summary_reads_binary_stl_the_same_way(tmp_path: Path) -> None:
    stl = tmp_path / "bracket_bin.stl"
    write_binary_stl(stl, GEN.bracket_triangles())
    _, summary = summarize(stl, tmp_path)
    assert summary["format"] == "binary"
    assert summary["units"] == "mm"
    assert_bracket(summary)


def test_open_or_inside_out_mesh_is_reported(tmp_path: Path) -> None:
    triangles = GEN.bracket_triangles()
    flipped = [(a, c, b) for a, b, c in triangles]
    stl = tmp_path / "flipped.stl"
    write_binary_stl(stl, flipped[:-1])
    _, summary = summarize(stl, tmp_path)
    assert summary["watertight"] is False
    assert summary["edges"]["open"] == 3
    assert summary["volume"] < 0


def png_chunks(data: bytes) -> dict[bytes, bytes]:
    """Chunk type -> data (IDAT joined), checking every CRC on the way."""
    assert data.startswith(PNG_SIGNATURE)
    chunks: dict[bytes, bytes] = {}
    pos = len(PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    return chunks


def test_stl_summary_preview_is_a_256_pixel_png_silhouette(tmp_path: Path) -> None:
    run, _ = summarize(DATA / "bracket.stl", tmp_path)
    chunks = png_chunks(run.outputs["preview"].read_bytes())
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (width, height, depth, colour) == (256, 256, 8, 0)
    raw = zlib.decompress(chunks[b"IDAT"])
    rows = [raw[r * 257 : (r + 1) * 257] for r in range(256)]
    assert all(row[0] == 0 for row in rows)
    pixels = b"".join(row[1:] for row in rows)
    inked = sum(1 for p in pixels if p != 0xFF)
    # Seen from above the bracket is its 60 x 25 footprint, scaled to fit 240 pixels.
    footprint = 240 * (240 * GEN.BRACKET_DEPTH / GEN.BRACKET_WIDTH)
    assert inked == pytest.approx(footprint, rel=0.05)
    assert pixels[128 * 256 + 128] != 0xFF
    assert pixels[0] == 0xFF


BROKEN_STL = {
    "vertex_missing": b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\n"
    b"endloop\nendfacet\nendsolid x\n",
    "not_a_number": b"solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 zero\n",
    "garbage": b"\x00\x01\x02 this is not an STL file",
    "empty": b"",
}


@pytest.mark.parametrize("case", sorted(BROKEN_STL))
def test_broken_stl_exits_2_with_a_message(case: str, tmp_path: Path) -> None:
    stl = tmp_path / "broken.stl"
    stl.write_bytes(BROKEN_STL[case])
    run = run_tool("stl_summary", {"part": model(stl)}, tmp_path)
    assert run.returncode == 2
    assert run.stderr.startswith("stl_summary: ")
    assert len(run.stderr.strip().splitlines()) == 1


def test_truncated_binary_and_ascii_stl_are_refused(tmp_path: Path) -> None:
    binary = tmp_path / "cut.stl"
    write_binary_stl(binary, GEN.bracket_triangles())
    binary.write_bytes(b"\0" * 80 + binary.read_bytes()[80:-10])
    run = run_tool("stl_summary", {"part": model(binary)}, tmp_path / "bin")
    assert run.returncode == 2
    assert "declares 20 triangles" in run.stderr
    text = (DATA / "bracket.stl").read_text(encoding="ascii")
    after_a_facet = text.index("endfacet") + len("endfacet\n")
    inside_a_keyword = text.index("facet", after_a_facet) + 3
    before_the_end = text.rindex("endsolid")
    for i, cut in enumerate([after_a_facet, inside_a_keyword, len(text) // 2, before_the_end]):
        ascii_ = tmp_path / f"cut_ascii_{i}.stl"
        ascii_.write_text(text[:cut], encoding="ascii")
        run = run_tool("stl_summary", {"part": model(ascii_)}, tmp_path / f"ascii{i}")
        assert run.returncode == 2, f"cut at {cut}"
        assert run.stderr.startswith("stl_summary: ")


def test_stl_units_must_be_a_string(tmp_path: Path) -> None:
    inputs = {"part": model(DATA / "bracket.stl"), "units": param(25.4)}
    run = run_tool("stl_summary", inputs, tmp_path)
    assert run.returncode == 2
    assert "units" in run.stderr


# --- csv_stats ---------------------------------------------------------------------------


def read_columns(path: Path, delimiter: str = ",") -> dict[str, list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=delimiter))
    return {name: [row[name] for row in rows] for name in rows[0]}


def csv_stats(inputs: dict[str, Any], tmp_path: Path) -> tuple[ToolRun, dict[str, Any]]:
    run = run_tool("csv_stats", inputs, tmp_path)
    assert run.returncode == 0, run.stderr
    check_against_schema("csv_stats", run)
    return run, json.loads(run.outputs["stats"].read_text(encoding="utf-8"))


def test_csv_stats_match_the_statistics_module(tmp_path: Path) -> None:
    _, stats = csv_stats({"table": model(DATA / "sensors.csv")}, tmp_path)
    columns = read_columns(DATA / "sensors.csv")
    assert stats["rows"] == GEN.SENSOR_ROWS
    assert list(stats["columns"]) == list(GEN.SENSOR_COLUMNS)
    for name in ("temperature_c", "humidity_pct", "pressure_hpa"):
        values = [float(v) for v in columns[name] if v]
        got = stats["columns"][name]
        assert got["kind"] == "numeric"
        assert got["count"] == len(values)
        assert got["missing"] == len(columns[name]) - len(values)
        assert got["mean"] == pytest.approx(statistics.mean(values))
        assert got["stddev"] == pytest.approx(statistics.stdev(values))
        assert (got["min"], got["max"]) == (min(values), max(values))
    assert stats["columns"]["humidity_pct"]["missing"] > 0
    for name in ("timestamp", "sensor", "status"):
        assert stats["columns"][name]["kind"] == "text"
        assert stats["columns"][name]["distinct"] == len(set(columns[name]))


def test_csv_histograms_hold_one_svg_per_numeric_column(tmp_path: Path) -> None:
    run, stats = csv_stats({"table": model(DATA / "sensors.csv")}, tmp_path)
    numeric = {n for n, s in stats["columns"].items() if s["kind"] == "numeric"}
    folder = run.outputs["histograms"]
    assert {p.stem for p in folder.iterdir()} == numeric
    assert {p.suffix for p in folder.iterdir()} == {".svg"}
    for name in numeric:
        svg = ElementTree.parse(folder / f"{name}.svg").getroot()
        bars = svg.findall("{http://www.w3.org/2000/svg}rect")
        assert len(bars) == 10
        assert sum(int(b.attrib["data-count"]) for b in bars) == stats["columns"][name]["count"]


def test_csv_columns_and_delimiter_parameters(tmp_path: Path) -> None:
    table = tmp_path / "semi.csv"
    table.write_text("name;load;site\na;1.5;x\nb;2.5;y\nc;;x\nd;4;z\n", encoding="utf-8")
    inputs = {"table": model(table), "columns": param(["site", "load"]), "delimiter": param(";")}
    run, stats = csv_stats(inputs, tmp_path)
    assert stats["delimiter"] == ";"
    assert list(stats["columns"]) == ["site", "load"]
    assert stats["columns"]["load"]["mean"] == pytest.approx(statistics.mean([1.5, 2.5, 4.0]))
    assert stats["columns"]["site"] == {
        "kind": "text", "count": 4, "missing": 0, "distinct": 3,
        "most_common": {"value": "x", "count": 2},
    }  # fmt: skip
    assert [p.name for p in run.outputs["histograms"].iterdir()] == ["load.svg"]


def test_csv_text_only_table_has_no_histograms_output(tmp_path: Path) -> None:
    table = tmp_path / "words.csv"
    table.write_text("word\nalpha\nbeta\n", encoding="utf-8")
    run, stats = csv_stats({"table": model(table)}, tmp_path)
    assert stats["columns"]["word"]["distinct"] == 2
    assert set(run.outputs) == {"stats"}
    assert list(run.temp_dir.iterdir()) == [run.temp_dir / "stats.json"]


def test_csv_missing_column_exits_2_naming_it(tmp_path: Path) -> None:
    inputs = {"table": model(DATA / "sensors.csv"), "columns": param(["sensor", "wind_speed"])}
    run = run_tool("csv_stats", inputs, tmp_path)
    assert run.returncode == 2
    assert run.stderr.startswith("csv_stats: ")
    assert "'wind_speed' not in the table" in run.stderr


@pytest.mark.parametrize(
    ("content", "params", "expected"),
    [
        ("a,b\n1,2\n3\n", {}, "record 3 has 1 fields"),
        ("", {}, "is empty"),
        ("a,a\n1,2\n", {}, "more than once: a"),
        ("a,b\n1,2\n", {"delimiter": ";;"}, "one character"),
        ("a,b\n1,2\n", {"columns": "a"}, "list of column names"),
    ],
)
def test_csv_bad_input_exits_2_with_a_message(
    content: str, params: dict[str, Any], expected: str, tmp_path: Path
) -> None:
    table = tmp_path / "bad.csv"
    table.write_text(content, encoding="utf-8")
    inputs = {"table": model(table)} | {k: param(v) for k, v in params.items()}
    run = run_tool("csv_stats", inputs, tmp_path)
    assert run.returncode == 2
    assert expected in run.stderr
