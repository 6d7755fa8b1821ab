"""The run records as web pages on the agent's HTTP listener: `/dashboard` and one run's page.

`GET /dashboard` lists runs (the filters and paging of `GET /runs`; a bad one is a 422 page)
with a chart of their durations; `GET /dashboard/runs/{id}` shows one run (an unknown one is a
404 page). The pages are rendered by pages.py; they run no script, load nothing from
elsewhere (the Content-Security-Policy says so to the browser too) and reload themselves
while a run they show is unfinished. Who may see them is the listener's business
(agent/health.py: a person opens `/dashboard?token=...` once, from the address
`istari-agent dashboard-url` prints, and a cookie does the rest).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from agent.logtail import read_tail
from agent.runs import pages
from agent.runs.model import RunFilter
from agent.runs.store import RunRecords

LOG_TAIL = 16 * 1024  # bytes of a run's kept log shown on its page (its end)

# No script, no fetches: inline styles and the page's own images (inline SVG) only.
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'"


def add_routes(app: web.Application, records: RunRecords) -> None:
    """Serve the dashboard of `records` under /dashboard on `app`."""
    dashboard = Dashboard(records)
    app.router.add_get("/dashboard", dashboard.runs)
    app.router.add_get("/dashboard/runs/{run_id}", dashboard.run)


class Dashboard:
    """The page handlers, over one state path's records."""

    def __init__(self, records: RunRecords) -> None:
        self.records = records

    async def runs(self, request: web.Request) -> web.Response:
        try:
            f = RunFilter.parse(request.query)
        except ValueError as e:
            return _html(422, pages.problem_page("Not a filter", str(e)))
        found, total = self.records.list(f), self.records.count(f)
        return _html(200, pages.runs_page(found, f, total, time.time()))

    async def run(self, request: web.Request) -> web.Response:
        run_id = request.match_info["run_id"]
        run = self.records.get(run_id)
        if run is None:
            return _html(404, pages.problem_page("No such run", f"no run {run_id}"))
        samples = self.records.samples(run.id)
        tail = log_tail(self.records.log_path(run.id), LOG_TAIL)
        return _html(200, pages.run_page(run, samples, tail, time.time()))


def problem(
    status: int, title: str, detail: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A page that says what went wrong, as an answer (the listener's 401 for pages too)."""
    return _html(status, pages.problem_page(title, detail), headers)


def log_tail(path: Path, size: int) -> str | None:
    """The last `size` bytes of a log as text, from its first whole line; None if none is kept."""
    try:
        text, cut = read_tail(path, size)
    except FileNotFoundError:
        return None
    return text.partition("\n")[2] if cut else text  # a cut first line: from the next one


def _html(status: int, text: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=text,
        content_type="text/html",
        headers={"Content-Security-Policy": POLICY, "Cache-Control": "no-store", **(headers or {})},
    )
