"""The dashboard's SVG charts: well-formed, to scale, and with every label escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from agent.runs import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    """The chart as XML (it must be well-formed to be parsed at all)."""
    return ET.fromstring(svg)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.0, "0 ms"), (0.85, "850 ms"), (12.34, "12.3 s"), (245, "4 min 05 s"),
     (7380, "2 h 03 min")],
)  # fmt: skip
def test_durations_read_as_people_say_them(seconds: float, shown: str) -> None:
    assert charts.duration(seconds) == shown


def test_bars_are_scaled_to_the_longest_and_their_labels_and_links_escaped() -> None:
    items = [
        charts.Bar("<b>short</b>", 1.0, "status-Failed", "/dashboard/runs/a?x=1&y=2"),
        charts.Bar("long", 4.0, "status-Completed"),
    ]
    svg = parse(charts.bars(items, "durations", height=160))
    rects = svg.findall(f".//{SVG}rect")
    heights = [float(r.attrib["height"]) for r in rects]
    assert heights[1] == pytest.approx(160 - 36) and heights[0] == pytest.approx(heights[1] / 4)
    assert [r.attrib["class"] for r in rects] == ["status-Failed", "status-Completed"]
    assert rects[0].findtext(f"{SVG}title") == "<b>short</b>: 1.0 s"
    (linked,) = svg.findall(f"{SVG}a")
    assert linked.attrib["href"] == "/dashboard/runs/a?x=1&y=2"
    assert svg.attrib["aria-label"] == "durations"


def test_a_timeline_places_each_phase_by_its_start_and_length() -> None:
    spans = [
        charts.Span("Validating", 0, 1),
        charts.Span("Running", 1, 9),
        charts.Span("<U>", 9, 10),
    ]
    svg = parse(charts.timeline(spans, "phases"))
    rects = svg.findall(f"{SVG}rect")
    xs = [float(r.attrib["x"]) for r in rects]
    widths = [float(r.attrib["width"]) for r in rects]
    scale = widths[0]  # the first phase lasts one second
    assert widths == pytest.approx([scale, 8 * scale, scale], abs=0.2)
    assert xs == pytest.approx([charts.LEFT, charts.LEFT + scale, charts.LEFT + 9 * scale], abs=0.2)
    texts = [t.text for t in svg.findall(f"{SVG}text")]
    assert "<U>" in texts and "8.0 s" in texts and "10.0 s" in texts  # the axis ends at the end


def test_a_line_has_a_point_per_sample_and_marks_its_peak() -> None:
    svg = parse(charts.line([(0, 10), (1, 50), (2, 25)], "cpu", "%"))
    points = svg.find(f"{SVG}polyline")
    assert points is not None and len(points.attrib["points"].split()) == 3
    assert [t.text for t in svg.findall(f"{SVG}text")][:2] == ["50 %", "0 %"]
    one = parse(charts.line([(0, 10)], "cpu", "%"))
    assert one.find(f"{SVG}circle") is not None


@pytest.mark.parametrize(
    "empty",
    [charts.bars([], "b"), charts.timeline([], "t"), charts.line([], "l", "%")],
    ids=["bars", "timeline", "line"],
)
def test_a_chart_of_nothing_says_so(empty: str) -> None:
    assert parse(empty).findtext(f"{SVG}text") == "nothing recorded yet"
