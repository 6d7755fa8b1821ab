"""The `@example:csv_stats` tool: per-column statistics of a CSV table and SVG histograms.

Usage: python3 csv_stats.py INPUT_FILE OUTPUT_FILE TEMP_DIR (the agent's run_command).
A column is numeric when every non-empty cell is a finite number, text otherwise. Python 3.8+
and the standard library only; an input it cannot use is reported on stderr with exit status 2,
and no output file is written.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
import statistics
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2
SNIFF_DELIMITERS = ",;\t|"
HISTOGRAM_BINS = 10
SVG_WIDTH, SVG_HEIGHT, SVG_PAD = 400, 240, 30


class BadInput(Exception):
    """An input the tool cannot use; the message is what the user sees."""


@dataclass(frozen=True)
class Request:
    """What the job asked for."""

    table: Path
    columns: list[str] | None
    delimiter: str | None


@dataclass(frozen=True)
class Table:
    """A parsed CSV table: its header and its rows (each as long as the header)."""

    delimiter: str
    header: list[str]
    rows: list[list[str]]

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [row[i].strip() for row in self.rows]


def load_request(input_file: Path) -> Request:
    """The table path and the optional parameters from the agent's input document."""
    try:
        doc = json.loads(input_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        msg = f"cannot read the input file {input_file}: {e}"
        raise BadInput(msg) from None
    if not isinstance(doc, dict):
        msg = "the input file must hold a JSON object keyed by input name"
        raise BadInput(msg)
    table = _value(doc, "table")
    if not isinstance(table, str):
        msg = "input 'table' (the CSV model) is missing from the input file"
        raise BadInput(msg)
    columns, delimiter = _value(doc, "columns"), _value(doc, "delimiter")
    return Request(Path(table), _columns(columns), _delimiter(delimiter))


def _value(doc: dict[str, Any], name: str) -> Any:
    entry = doc.get(name)
    return entry.get("value") if isinstance(entry, dict) else None


def _columns(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(c, str) for c in value):
        msg = f"parameter 'columns' must be a non-empty list of column names, not {value!r}"
        raise BadInput(msg)
    return [c.strip() for c in value]


def _delimiter(value: Any) -> str | None:
    if value is None:
        return None
    if value in ("tab", "\\t"):
        return "\t"
    if not isinstance(value, str) or len(value) != 1 or value in '\r\n"':
        msg = f"parameter 'delimiter' must be one character (or \"tab\"), not {value!r}"
        raise BadInput(msg)
    return value


def load_table(path: Path, delimiter: str | None) -> Table:
    """Parse the CSV file; BadInput names the first problem (file, header or row)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        msg = f"cannot read the CSV file {path}: {e}"
        raise BadInput(msg) from None
    delimiter = delimiter or _sniff(text)
    try:
        records = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(r)]
    except csv.Error as e:
        msg = f"{path.name} is not valid CSV: {e}"
        raise BadInput(msg) from None
    if not records:
        msg = f"{path.name} is empty"
        raise BadInput(msg)
    header = [h.strip() for h in records[0]]
    _check_header(header)
    for number, row in enumerate(records[1:], start=2):
        if len(row) != len(header):
            msg = f"record {number} has {len(row)} fields; the header has {len(header)}"
            raise BadInput(msg)
    return Table(delimiter, header, records[1:])


def _sniff(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:4096], delimiters=SNIFF_DELIMITERS).delimiter
    except csv.Error:
        return ","


def _check_header(header: list[str]) -> None:
    if not all(header):
        msg = "the header has an empty column name"
        raise BadInput(msg)
    twice = sorted(n for n, k in Counter(header).items() if k > 1)
    if twice:
        msg = f"the header names these columns more than once: {', '.join(twice)}"
        raise BadInput(msg)


def select_columns(table: Table, wanted: list[str] | None) -> list[str]:
    """The columns to describe: the requested ones (all must exist), else every column."""
    if wanted is None:
        return list(table.header)
    missing = [c for c in wanted if c not in table.header]
    if missing:
        msg = (
            f"column(s) {', '.join(map(repr, missing))} not in the table; "
            f"it has: {', '.join(table.header)}"
        )
        raise BadInput(msg)
    return list(dict.fromkeys(wanted))


def as_numbers(cells: list[str]) -> list[float] | None:
    """The non-empty cells as floats, or None when any of them is not a finite number."""
    numbers = []
    for cell in cells:
        if not cell:
            continue
        try:
            number = float(cell)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        numbers.append(number)
    return numbers or None


def describe(cells: list[str]) -> dict[str, Any]:
    """Statistics of one column: numeric (stddev is the sample one) or text."""
    numbers = as_numbers(cells)
    present = [c for c in cells if c]
    missing = len(cells) - len(present)
    if numbers is None:
        top = Counter(present).most_common(1)
        return {
            "kind": "text",
            "count": len(present),
            "missing": missing,
            "distinct": len(set(present)),
            "most_common": {"value": top[0][0], "count": top[0][1]} if top else None,
        }
    return {
        "kind": "numeric",
        "count": len(numbers),
        "missing": missing,
        "mean": statistics.fmean(numbers),
        "min": min(numbers),
        "max": max(numbers),
        "stddev": statistics.stdev(numbers) if len(numbers) > 1 else 0.0,
    }


def histogram(numbers: list[float], bins: int = HISTOGRAM_BINS) -> list[int]:
    """Counts in `bins` equal-width bins from min to max (one bin when all values are equal)."""
    lo, hi = min(numbers), max(numbers)
    if hi == lo:
        return [len(numbers)]
    counts = [0] * bins
    for x in numbers:
        counts[min(int((x - lo) / (hi - lo) * bins), bins - 1)] += 1
    return counts


def histogram_svg(title: str, numbers: list[float]) -> str:
    """A bar chart of the column's histogram; each bar carries its count in `data-count`."""
    counts = histogram(numbers)
    plot_w, plot_h = SVG_WIDTH - 2 * SVG_PAD, SVG_HEIGHT - 2 * SVG_PAD
    bar_w, tallest = plot_w / len(counts), max(counts)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SVG_WIDTH}" height="{SVG_HEIGHT}">',
        f'<text x="{SVG_PAD}" y="20" font-size="14">{html.escape(title)}</text>',
    ]
    for i, count in enumerate(counts):
        h = plot_h * count / tallest
        x, y = SVG_PAD + i * bar_w, SVG_HEIGHT - SVG_PAD - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
            f'fill="#4a7ab5" data-count="{count}"/>'
        )
    base = SVG_HEIGHT - SVG_PAD + 16
    parts.append(f'<text x="{SVG_PAD}" y="{base}" font-size="12">{min(numbers):g}</text>')
    parts.append(
        f'<text x="{SVG_WIDTH - SVG_PAD}" y="{base}" font-size="12" text-anchor="end">'
        f"{max(numbers):g}</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _file_stem(name: str, used: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "column"
    candidate, n = stem, 2
    while candidate in used:
        candidate, n = f"{stem}_{n}", n + 1
    used.add(candidate)
    return candidate


def numeric_columns(table: Table, columns: list[str]) -> dict[str, list[float]]:
    """The numeric columns among `columns`, with their values."""
    found = {name: as_numbers(table.column(name)) for name in columns}
    return {name: numbers for name, numbers in found.items() if numbers is not None}


def write_histograms(numeric: dict[str, list[float]], out: Path) -> None:
    """One SVG per numeric column in the directory `out`."""
    out.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for name, numbers in numeric.items():
        path = out / f"{_file_stem(name, used)}.svg"
        path.write_text(histogram_svg(name, numbers), encoding="utf-8")


def run(input_file: Path, temp_dir: Path) -> list[dict[str, str]]:
    """Do the work; returns the output document's entries."""
    request = load_request(input_file)
    table = load_table(request.table, request.delimiter)
    columns = select_columns(table, request.columns)
    stats = {
        "table": request.table.name,
        "rows": len(table.rows),
        "delimiter": table.delimiter,
        "columns": {name: describe(table.column(name)) for name in columns},
    }
    temp = temp_dir.resolve()
    temp.mkdir(parents=True, exist_ok=True)
    stats_path = temp / "stats.json"
    stats_path.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    outputs = [{"name": "stats", "type": "file", "path": str(stats_path)}]
    numeric = numeric_columns(table, columns)
    if numeric:  # optional output: only when there is something to draw
        folder = temp / "histograms"
        write_histograms(numeric, folder)
        outputs.append({"name": "histograms", "type": "directory", "path": str(folder)})
    return outputs


def main(argv: list[str]) -> int:
    """Entry point: the process exit status (0 done, 2 bad input)."""
    if len(argv) != 4:
        print("usage: csv_stats.py INPUT_FILE OUTPUT_FILE TEMP_DIR", file=sys.stderr)
        return EXIT_BAD_INPUT
    input_file, output_file, temp_dir = (Path(a) for a in argv[1:])
    try:
        outputs = run(input_file, temp_dir)
    except BadInput as e:
        print(f"csv_stats: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    output_file.write_text(json.dumps(outputs, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
