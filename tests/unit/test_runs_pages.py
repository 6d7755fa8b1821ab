"""The dashboard's pages: what they show, that nothing a tool wrote becomes markup, and when
they reload themselves."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from agent.runs import pages
from agent.runs.dashboard import log_tail
from agent.runs.model import Entry, Run, RunFilter, Sample, Step

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'
T0 = 1_746_090_000.0


class Parsed(HTMLParser):
    """The elements, attributes and text of a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[str] = []
        self.attributes: list[str] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append(tag)
        self.attributes += [name for name, _ in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def run(ended: float | None = T0 + 9, evil: str = "") -> Run:
    """A run; with `evil`, every string a tool, a module or a user chose carries it."""
    return Run(
        id=f"run-1{evil}", job_id=f"job-1{evil}", agent_id=f"agent{evil}",
        function=f"@m:extract{evil}", module=f"@m{evil}", module_version=f"1.0{evil}",
        started=T0, ended=ended, status=f"Completed{evil}", reason=f"completed{evil}",
        message=f"done{evil}", exit_code=0,
        inputs=[{"name": f"part{evil}", "type": f"user_model{evil}", "file": f"a.stp{evil}",
                 "size": 3, "sha256": f"ab{evil}"}],
        outputs=[{"name": f"mesh{evil}", "kind": f"artifact{evil}",
                  "resource_id": f"art-1{evil}", "file_name": f"mesh.vtk{evil}"}],
        wall_s=8.0, cpu_s=7.0, peak_rss_kb=2048, progress=50.0,
        steps=[Step(f"Validating{evil}", T0, T0 + 1), Step("Running", T0 + 1, ended)],
        entries=[Entry(T0 + 2, f"WARN{evil}", f"thin wall{evil}", {f"k{evil}": f"v{evil}"}, 50.0)],
    )  # fmt: skip


SAMPLES = [Sample(T0 + 1 + n, 10.0 * n, 1024 * (n + 1)) for n in range(5)]


def test_a_run_page_shows_the_run() -> None:
    html = pages.run_page(run(), SAMPLES, "line one\nline two\n", now=T0 + 60)
    text = " ".join(Parsed(html).text)
    for shown in ("@m:extract", "run-1", "job-1", "Validating", "thin wall", "art-1",
                  "mesh.vtk", "part", "line two", "8.0 s", "2.0 MiB", "k=\"v\""):  # fmt: skip
        assert shown in text, shown
    assert html.count("<svg") == 3  # the phases, CPU and memory
    assert 'href="/runs/run-1/steps.csv"' in html


def test_nothing_a_tool_or_a_user_wrote_becomes_markup() -> None:
    hostile = run(evil=EVIL)
    html = pages.run_page(hostile, SAMPLES, f"log {EVIL}\n", now=T0 + 60)
    listing = pages.runs_page(
        [hostile], RunFilter(status=EVIL, keyword=EVIL, limit=1), total=2, now=T0
    )
    for page in (html, listing, pages.problem_page(EVIL, EVIL)):
        parsed = Parsed(page)
        assert "script" not in parsed.elements and "img" not in parsed.elements
        assert "onerror" not in parsed.attributes
        assert EVIL in "".join(parsed.text)  # shown, as text


def test_an_unfinished_run_reloads_every_2_s_and_a_finished_one_does_not() -> None:
    assert '<meta http-equiv="refresh" content="2">' in pages.run_page(run(None), [], None, T0)
    assert 'http-equiv="refresh"' not in pages.run_page(run(), [], None, T0)
    assert 'content="5"' in pages.runs_page([run(None), run()], RunFilter(), 2, T0)
    assert 'http-equiv="refresh"' not in pages.runs_page([run()], RunFilter(), 1, T0)


def test_an_unfinished_run_shows_how_long_so_far() -> None:
    text = " ".join(Parsed(pages.run_page(run(None), [], None, now=T0 + 30)).text)
    assert "30.0 s so far" in text and "not yet" in text


def test_the_listing_pages_keep_the_filter() -> None:
    html = pages.runs_page([run()], RunFilter(status="Failed", limit=1, page=2), total=3, now=T0)
    assert 'href="/dashboard?status=Failed&amp;limit=1&amp;page=1"' in html
    assert 'href="/dashboard?status=Failed&amp;limit=1&amp;page=3"' in html
    assert '<option value="Failed" selected>' in html
    assert "3 runs with status Failed" in " ".join(Parsed(html).text)


def test_an_empty_listing_says_so() -> None:
    text = " ".join(Parsed(pages.runs_page([], RunFilter(), 0, T0)).text)
    assert "0 runs" in text and "nothing recorded yet" in text and "None." in text


def test_the_log_tail_starts_at_a_whole_line(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_bytes(b"first line\nsecond line\nthird \xff\n")
    assert log_tail(log, 100) == "first line\nsecond line\nthird \ufffd\n"
    assert log_tail(log, 16) == "third \ufffd\n"  # the cut line is left out
    assert log_tail(tmp_path / "none.log", 100) is None
