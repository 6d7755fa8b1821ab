"""Sizes and durations for people: 1.5 GiB, 640 KiB, 12 B; 40 s, 3 min 5 s (pure)."""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(n: float) -> str:
    """`n` bytes in the largest binary unit that keeps the number at least 1."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError  # pragma: no cover - the loop returns at its last unit


def human_seconds(s: float) -> str:
    """A duration: '40 s', '3 min 5 s', '2 h 4 min'."""
    whole = max(0, round(s))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
