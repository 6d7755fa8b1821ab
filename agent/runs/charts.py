"""Small SVG charts for the dashboard, drawn on the server (pure functions, no script).

Every text a chart shows is escaped here: callers pass plain strings. A chart is a string of
inline SVG that sizes itself to its container (`viewBox`, width 100%); colours come from the
page's CSS classes (`status-*`, `.line`, `.axis`), so the charts carry no style of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 720  # viewBox units; the SVG scales to its container
LEFT = 130  # room for a timeline's phase names
ROW = 22  # a timeline row's height


@dataclass(frozen=True)
class Bar:
    """One run in a chart of durations."""

    label: str  # shown on hover
    seconds: float
    css: str  # the bar's class (its status colour)
    href: str | None = None  # where a click on it goes


@dataclass(frozen=True)
class Span:
    """One phase on a timeline, in seconds from the run's start."""

    label: str
    start: float
    end: float


def duration(seconds: float) -> str:
    """A duration for people: 850 ms, 12.3 s, 4 min 05 s, 2 h 03 min (pure)."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _svg(height: float, label: str, body: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height:.0f}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


def _text(x: float, y: float, text: str, anchor: str = "start") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(text)}</text>'


def _empty(label: str) -> str:
    return _svg(40, label, _text(WIDTH / 2, 24, "nothing recorded yet", "middle"))


def bars(items: Sequence[Bar], label: str, height: float = 160) -> str:
    """Vertical bars, one per item in the given order, scaled to the longest."""
    if not items:
        return _empty(label)
    top, bottom = 18.0, height - 18
    longest = max(b.seconds for b in items) or 1.0
    step = (WIDTH - 60) / len(items)
    parts = [
        _text(0, 12, duration(longest)),
        _text(0, bottom, "0"),
        f'<line class="axis" x1="56" y1="{bottom:.1f}" x2="{WIDTH}" y2="{bottom:.1f}"/>',
    ]
    for i, b in enumerate(items):
        h = max(1.0, (bottom - top) * b.seconds / longest)
        rect = (
            f'<rect class="{escape(b.css)}" x="{60 + i * step + step * 0.1:.1f}" '
            f'y="{bottom - h:.1f}" width="{max(1.0, step * 0.8):.1f}" height="{h:.1f}">'
            f"<title>{escape(b.label)}: {escape(duration(b.seconds))}</title></rect>"
        )
        parts.append(f'<a href="{escape(b.href)}">{rect}</a>' if b.href else rect)
    parts.append(_text(WIDTH, height - 2, "oldest left, newest right", "end"))
    return _svg(height, label, "".join(parts))


def timeline(spans: Sequence[Span], label: str) -> str:
    """One horizontal bar per span, placed by its start and length on a shared time axis."""
    if not spans:
        return _empty(label)
    total = max(s.end for s in spans) or 1.0
    scale = (WIDTH - LEFT - 90) / total
    parts = []
    for i, s in enumerate(spans):
        y = 4 + i * ROW
        x, w = LEFT + s.start * scale, max(1.0, (s.end - s.start) * scale)
        parts += [
            _text(LEFT - 6, y + 14, s.label, "end"),
            f'<rect class="phase" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{ROW - 6}">'
            f"<title>{escape(s.label)}: {escape(duration(s.end - s.start))}</title></rect>",
            _text(x + w + 4, y + 14, duration(s.end - s.start)),
        ]
    bottom = 4 + len(spans) * ROW
    parts += [
        f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{WIDTH - 90}" y2="{bottom}"/>',
        _text(LEFT, bottom + 14, "0"),
        _text(WIDTH - 90, bottom + 14, duration(total), "end"),
    ]
    return _svg(bottom + 20, label, "".join(parts))


def line(points: Sequence[tuple[float, float]], label: str, unit: str, height: float = 120) -> str:
    """A value over time (seconds from the start) as a line, its largest value marked."""
    if not points:
        return _empty(label)
    top, bottom, left = 18.0, height - 18, 60.0
    t_end = max(t for t, _ in points) or 1.0
    peak = max(v for _, v in points) or 1.0

    at = [
        (left + (WIDTH - left) * t / t_end, bottom - (bottom - top) * v / peak) for t, v in points
    ]
    drawn = (
        f'<polyline class="line" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in at)}"/>'
        if len(at) > 1
        else f'<circle class="dot" r="3" cx="{at[0][0]:.1f}" cy="{at[0][1]:.1f}"/>'
    )
    return _svg(
        height,
        label,
        _text(0, 12, f"{peak:.4g} {unit}")
        + _text(0, bottom, f"0 {unit}")
        + f'<line class="axis" x1="{left}" y1="{bottom}" x2="{WIDTH}" y2="{bottom}"/>'
        + drawn
        + _text(left, height - 2, "0 s")
        + _text(WIDTH, height - 2, duration(t_end), "end"),
    )
