"""Regenerate the example data (bracket.stl, sensors.csv) deterministically, byte for byte.

Usage: python3 generate.py [OUTPUT_DIR]   (default: the directory this script is in)

The bracket is an L-shaped profile in the x-z plane extruded along y: a closed, outward-facing
mesh whose volume and bounding box follow from the constants below (tests rely on them).
"""

from __future__ import annotations

import csv
import math
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

Vec = tuple[float, float, float]
Triangle = tuple[Vec, Vec, Vec]

BRACKET_WIDTH = 60.0  # x: length of the base flange
BRACKET_DEPTH = 25.0  # y: extrusion length
BRACKET_HEIGHT = 40.0  # z: height of the upright flange
BRACKET_THICKNESS = 5.0  # both flanges

SENSOR_ROWS = 36
SENSOR_SEED = 20240501
SENSOR_COLUMNS = ("timestamp", "sensor", "temperature_c", "humidity_pct", "pressure_hpa", "status")


def bracket_profile() -> list[tuple[float, float]]:
    """The L profile as (x, z) points, counter-clockwise seen from -y."""
    w, h, t = BRACKET_WIDTH, BRACKET_HEIGHT, BRACKET_THICKNESS
    return [(0.0, 0.0), (w, 0.0), (w, t), (t, t), (t, h), (0.0, h)]


def bracket_volume() -> float:
    """The exact volume of the bracket: profile area times depth."""
    t = BRACKET_THICKNESS
    return t * (BRACKET_WIDTH + BRACKET_HEIGHT - t) * BRACKET_DEPTH


def bracket_area() -> float:
    """The exact surface area: two end caps plus the extruded perimeter."""
    cap = bracket_volume() / BRACKET_DEPTH
    perimeter = 2 * (BRACKET_WIDTH + BRACKET_HEIGHT)
    return 2 * cap + perimeter * BRACKET_DEPTH


def bracket_triangles() -> list[Triangle]:
    """The closed bracket mesh, every triangle wound so its normal points outward."""
    profile = bracket_profile()
    front = [(x, 0.0, z) for x, z in profile]
    back = [(x, BRACKET_DEPTH, z) for x, z in profile]
    # Fan from the inner (reflex) corner, index 3: it sees every other vertex of the L.
    fan = [(3, 4, 5), (3, 5, 0), (3, 0, 1), (3, 1, 2)]
    triangles: list[Triangle] = [(front[a], front[b], front[c]) for a, b, c in fan]
    triangles += [(back[a], back[c], back[b]) for a, b, c in fan]
    for i in range(len(profile)):
        j = (i + 1) % len(profile)
        triangles.append((front[i], back[j], front[j]))
        triangles.append((front[i], back[i], back[j]))
    return triangles


def _normal(tri: Triangle) -> Vec:
    (ax, ay, az), (bx, by, bz), (cx, cy, cz) = tri
    ux, uy, uz = bx - ax, by - ay, bz - az
    vx, vy, vz = cx - ax, cy - ay, cz - az
    n = (uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx)
    length = math.sqrt(sum(c * c for c in n)) or 1.0
    return (n[0] / length + 0.0, n[1] / length + 0.0, n[2] / length + 0.0)


def _fmt(v: Vec) -> str:
    return " ".join(f"{c:.6f}" for c in v)


def ascii_stl(name: str, triangles: list[Triangle]) -> str:
    """The triangles as an ASCII STL document."""
    lines = [f"solid {name}"]
    for tri in triangles:
        lines += [f"  facet normal {_fmt(_normal(tri))}", "    outer loop"]
        lines += [f"      vertex {_fmt(v)}" for v in tri]
        lines += ["    endloop", "  endfacet"]
    lines.append(f"endsolid {name}")
    return "\n".join(lines) + "\n"


def sensor_rows() -> list[dict[str, str]]:
    """A day of readings from four sensors; a few humidity readings are missing."""
    rng = random.Random(SENSOR_SEED)
    start = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    rows = []
    for i in range(SENSOR_ROWS):
        temperature = 21.0 + 2.5 * math.sin(i / 5) + rng.uniform(-0.6, 0.6)
        humidity = 45.0 + 8.0 * math.cos(i / 7) + rng.uniform(-2.0, 2.0)
        pressure = 1013.0 + rng.uniform(-6.0, 6.0)
        rows.append(
            {
                "timestamp": (start + timedelta(minutes=20 * i)).isoformat(),
                "sensor": f"S{i % 4 + 1}",
                "temperature_c": f"{temperature:.2f}",
                "humidity_pct": "" if i % 11 == 5 else f"{humidity:.1f}",
                "pressure_hpa": f"{pressure:.1f}",
                "status": "warn" if temperature > 23.0 else "ok",
            }
        )
    return rows


def write_all(out: Path) -> list[Path]:
    """Write every data file into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    stl = out / "bracket.stl"
    stl.write_text(ascii_stl("bracket", bracket_triangles()), encoding="ascii", newline="\n")
    table = out / "sensors.csv"
    with table.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SENSOR_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sensor_rows())
    return [stl, table]


def main(argv: list[str]) -> int:
    """Entry point: write the files and name them."""
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    for path in write_all(out):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
