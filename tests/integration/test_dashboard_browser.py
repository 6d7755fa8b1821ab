"""The dashboard as a browser shows it: headless Chromium loads the agent's pages over loopback.

Chromium renders the runs list and a run's page from records of real-looking runs, dumps the
DOM it built and takes screenshots. The DOM must show the run (id, function, status, phases,
a tool's entry message) with a tool's `<script>` as text, never as an element; the
screenshots must be real pictures. They are kept under test-output/ (git-ignored) for people
to look at. Chromium opens each page as a person does, from its link with the token: the
listener sets its cookie and redirects to the page without the token.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support.runs_site import HOSTILE, Site

CHROMIUM = shutil.which("chromium")
KEPT = Path(__file__).parents[2] / "test-output" / "dashboard"
DEADLINE = 90.0  # seconds for one Chromium run (a cold start on a small machine is slow)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed; run scripts/system-packages"
)


class Page(HTMLParser):
    """What a browser's DOM shows: its text, and every element's name."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.elements: set[str] = set()
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.add(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def shows(self, words: str) -> bool:
        return words in " ".join(" ".join(self.text).split())


async def chromium(home: Path, *args: str) -> str:
    """Run headless Chromium with its own profile under `home`; its standard output."""
    assert CHROMIUM is not None
    profile = home / f"profile-{len(list(home.glob('profile-*')))}"
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        f"--user-data-dir={profile}", "--window-size=1280,1600", *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )  # fmt: skip
    try:
        async with asyncio.timeout(DEADLINE):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


def picture(png: Path) -> tuple[int, int, int]:
    """A PNG's width, height and how many different byte values its pixel data holds."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    idat, at = b"", 8
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at : at + 4]), data[at + 4 : at + 8]
        if kind == b"IDAT":
            idat += data[at + 8 : at + 8 + length]
        at += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


async def look(site: Site, path: str, name: str, home: Path) -> Page:
    """The page's DOM as Chromium built it; its screenshot taken and kept."""
    link = f"{site.url}{path}{'&' if '?' in path else '?'}token={site.token}"
    dom = await chromium(home, "--dump-dom", link)
    shot = home / f"{name}.png"
    await chromium(home, f"--screenshot={shot}", link)
    width, height, shades = picture(shot)
    assert (width, height) == (1280, 1600)
    assert shades > 32, f"{shot} is nearly blank"
    KEPT.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, KEPT / shot.name)
    print(f"\nscreenshot of {path}: {shot} (kept as {KEPT / shot.name})")
    return Page(dom)


async def test_chromium_shows_the_runs_and_a_run(site: Site, tmp_path: Path) -> None:
    home = tmp_path / "chromium"
    home.mkdir()
    runs = site.runs

    listing = await look(site, "/dashboard", "dashboard", home)
    for words in ("@istari:extract", "@istari:mesh", "@istari:render", "Completed", "Failed"):
        assert listing.shows(words), words
    assert listing.shows("3 runs") and listing.shows("9.1 s")
    assert "svg" in listing.elements and "progress" in listing.elements

    run = await look(site, f"/dashboard/runs/{runs.done}", "run", home)
    for words in (runs.done, "@istari:extract Completed", "Validating", "Running", "Uploading",
                  "7.5 s", "reading bracket.stp", "art-7d1e", "bracket.stp", "extract: wrote",
                  f"thin wall near {HOSTILE}", 'face=17 mm=0.4 <b>="<i>"'):  # fmt: skip
        assert run.shows(words), words
    assert "script" not in run.elements  # the tool's <script> stayed text
    assert "i" not in run.elements and "b" not in run.elements
