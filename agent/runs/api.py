"""The run records over HTTP, on the agent's health listener (the IvoryOS-style routes).

`GET /runs` (filters `status`, `keyword`, `since`, `until`; pages of `limit` 1..1000 runs,
`page` from 1; a bad one is a 422 saying why), `GET /runs/{id}` (with its steps and log
entries), `GET /runs/{id}/log`, `GET /runs/{id}/steps.csv`, `GET /runs/{id}/plot` (phase
durations and resource use over time, for charts), `DELETE /runs/{id}`. An unknown run is a
404. `{id}` is a run id, a job id, or a unique start of either, as for `istari-agent runs`.
The shapes are described in docs/runs-api.openapi.json. Every route needs the agent's token
(checked by the listener, agent/health.py, before any handler here runs).
"""

from __future__ import annotations

import json
from dataclasses import asdict

from aiohttp import web

from agent.runs.model import Run, RunFilter, phase_durations, steps_csv
from agent.runs.store import RunRecords

NOT_FOUND_HINT = "(give a run id, a job id, or a start of either that only one job has)"


def add_routes(app: web.Application, records: RunRecords) -> None:
    """Serve `records` under /runs on `app`."""
    api = RunsAPI(records)
    app.router.add_get("/runs", api.list_runs)
    app.router.add_get("/runs/{run_id}", api.show)
    app.router.add_get("/runs/{run_id}/log", api.log)
    app.router.add_get("/runs/{run_id}/steps.csv", api.steps)
    app.router.add_get("/runs/{run_id}/plot", api.plot)
    app.router.add_delete("/runs/{run_id}", api.delete)


class RunsAPI:
    """The handlers, over one state path's records."""

    def __init__(self, records: RunRecords) -> None:
        self.records = records

    def _one(self, request: web.Request) -> Run:
        run_id = request.match_info["run_id"]
        run = self.records.get(run_id)
        if run is None:
            raise web.HTTPNotFound(
                text=json.dumps({"detail": f"no run {run_id} {NOT_FOUND_HINT}"}),
                content_type="application/json",
            )
        return run

    async def list_runs(self, request: web.Request) -> web.Response:
        try:
            f = RunFilter.parse(request.query)
        except ValueError as e:
            return _problem(422, str(e))
        found, total = self.records.list(f), self.records.count(f)
        more = f.offset + len(found) < total
        return web.json_response({
            "items": [r.as_json() for r in found],
            "page": f.page,
            "limit": f.limit,
            "total": total,
            "next_page": f.page + 1 if more else None,
        })  # fmt: skip

    async def show(self, request: web.Request) -> web.Response:
        return web.json_response(self._one(request).as_json())

    async def log(self, request: web.Request) -> web.StreamResponse:
        path = self.records.log_path(self._one(request).id)
        if not path.exists():
            return _problem(404, "this run has no log kept")
        return web.FileResponse(path, headers={"Content-Type": "text/plain; charset=utf-8"})

    async def steps(self, request: web.Request) -> web.Response:
        return web.Response(text=steps_csv(self._one(request)), content_type="text/csv")

    async def plot(self, request: web.Request) -> web.Response:
        run = self._one(request)
        samples = [asdict(s) for s in self.records.samples(run.id)]
        return web.json_response(
            {"run_id": run.id, "phases": phase_durations(run), "resources": samples}
        )

    async def delete(self, request: web.Request) -> web.Response:
        self.records.delete(self._one(request).id)
        return web.Response(status=204)


def _problem(status: int, detail: str) -> web.Response:
    return web.json_response({"detail": detail}, status=status)
