"""docs/runs-api.openapi.json holds: every answer of the agent's listener is checked against it.

The document is valid OpenAPI 3.1; its schemas name exactly the record's fields; every route
the listener serves under /runs and /dashboard is in it; and real requests over loopback, to
records of real-looking runs, get answers whose status, content type, headers and body the
document allows, each documented answer (404s and 422s included) at least once. A request the
server refuses with 422 for a bound is refused by the document too, and so is one without the
token (401); every route answers a foreign Host header with 421 and the dashboard's link with
a 303 that sets its cookie.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import pytest
from openapi_core import Config, OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate

from agent.runs.model import Entry, Run, Sample, Step
from tests.support.runs_site import Runs, Site

DOC = Path(__file__).parents[2] / "docs" / "runs-api.openapi.json"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOC.read_text())
    return loaded


def documented() -> set[tuple[str, str, int]]:
    """Every (path, method, status) the document describes."""
    return {
        (path, method, int(status))
        for path, item in document()["paths"].items()
        for method, op in item.items()
        if method in METHODS
        for status in op["responses"]
    }


def template_of(path: str) -> str:
    """The documented path template that `path` falls under."""
    templates: list[str] = list(document()["paths"])
    for template in templates:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
            return template
    pytest.fail(f"{path} is under no documented path")


@dataclass
class Checker:
    """Requests over loopback, each request and answer checked against the document."""

    url: str
    session: aiohttp.ClientSession
    token: str
    openapi: OpenAPI = field(
        default_factory=lambda: OpenAPI.from_file_path(
            str(DOC),
            config=Config(extra_media_type_deserializers={"text/csv": lambda b, **_: b.decode()}),
        )
    )
    seen: set[tuple[str, str, int]] = field(default_factory=set)

    async def __call__(
        self,
        method: str,
        target: str,
        *,
        doc_allows: bool = True,
        auth: bool = True,
        host: str | None = None,
    ) -> bytes:
        """The body of the answer to `method target`, once the document has allowed it.

        The request carries the token unless `auth` is false, and `host` as its Host header.
        """
        sent = {"Authorization": f"Bearer {self.token}"} if auth else {}
        sent |= {"Host": host} if host else {}
        async with self.session.request(
            method, self.url + target, headers=sent, allow_redirects=False
        ) as resp:
            body = await resp.read()
            status, headers = resp.status, dict(resp.headers)
        url = urlsplit(target)
        args = dict(parse_qsl(url.query))
        request = MockRequest(self.url, method, url.path, args=args, headers=sent)
        if doc_allows:
            self.openapi.validate_request(request)
        else:  # the document states the bound the server enforces
            with pytest.raises(OpenAPIError):
                self.openapi.validate_request(request)
        answer = MockResponse(body, status, headers, content_type=headers.get("Content-Type", ""))
        self.openapi.validate_response(request, answer)
        self.seen.add((template_of(url.path), method.lower(), status))
        return body


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1.")
    validate(doc)  # raises, saying where, when it is not


@pytest.mark.parametrize("shape", [Run, Step, Entry, Sample], ids=lambda c: c.__name__)
def test_the_schemas_name_exactly_the_records_fields(shape: type) -> None:
    schema = document()["components"]["schemas"][shape.__name__]
    fields = {f.name for f in dataclasses.fields(shape)}
    assert set(schema["properties"]) == fields
    assert set(schema["required"]) == fields


async def test_every_route_served_under_runs_and_dashboard_is_documented(site: Site) -> None:
    served = {
        (route.resource.canonical, route.method.lower())
        for route in site.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith(("/runs", "/dashboard"))
        and route.method != "HEAD"  # aiohttp answers HEAD wherever it answers GET
    }
    described = {(path, method) for path, method, _ in documented()}
    assert served == described


async def test_every_answer_is_one_the_document_describes(site: Site) -> None:
    async with aiohttp.ClientSession() as session:
        check = Checker(site.url, session, site.token)
        await _refusals(check, site.runs)
        await _listing(check, site.runs)
        await _one_run(check, site.runs)
        await _dashboard(check, site.runs)
        assert b"no run" in await check("DELETE", "/runs/no-such-run")
        assert await check("DELETE", f"/runs/{site.runs.failed}") == b""
        assert b"no run" in await check("GET", f"/runs/{site.runs.failed}")  # gone
    assert check.seen == documented()


async def _refusals(check: Checker, runs: Runs) -> None:
    """Every route without the token, and with a rebinding page's Host; the dashboard's link."""
    for path, method, _ in sorted(documented()):
        target = path.replace("{run_id}", runs.done)
        assert b"http_token" in await check(method, target, auth=False, doc_allows=False)
        assert b"http_allowed_hosts" in await check(method, target, host="evil.example:80")
    for page in ("/dashboard?status=Completed", f"/dashboard/runs/{runs.done}?limit=1"):
        join = "&" if "?" in page else "?"
        assert await check("GET", f"{page}{join}token={check.token}", auth=False) == b""
    assert b"dashboard-url" in await check("GET", "/dashboard?token=not-it", auth=False)


async def _listing(check: Checker, runs: Runs) -> None:
    page = json.loads(await check("GET", "/runs"))
    assert [r["id"] for r in page["items"]] == [runs.running, runs.failed, runs.done]
    assert (page["total"], page["next_page"]) == (3, None)
    page = json.loads(await check("GET", "/runs?limit=1&page=2"))
    assert ([r["id"] for r in page["items"]], page["next_page"]) == ([runs.failed], 3)
    since = datetime.fromtimestamp(runs.t0 - 60, UTC).isoformat()  # ISO 8601 and epoch seconds
    query = urlencode({"status": "Completed", "keyword": "extract", "since": since,
                       "until": runs.t0 + 30})  # fmt: skip
    page = json.loads(await check("GET", f"/runs?{query}"))
    assert [r["id"] for r in page["items"]] == [runs.done]
    for bad in ("limit=0", "limit=1001", "page=0", "limit=x"):
        problem = json.loads(await check("GET", f"/runs?{bad}", doc_allows=False))
        assert bad.partition("=")[0] in problem["detail"]
    for bad in ("since=yesterday", "colour=red"):  # the document cannot say these; the server does
        assert "detail" in json.loads(await check("GET", f"/runs?{bad}"))


async def _one_run(check: Checker, runs: Runs) -> None:
    for ref in (runs.done, runs.done_job, runs.done[:8]):
        run = json.loads(await check("GET", f"/runs/{ref}"))
        assert run["id"] == runs.done
    assert [e["level"] for e in run["entries"]] == ["INFO", "DEBUG", "WARN", "INFO"]
    assert json.loads(await check("GET", f"/runs/{runs.running}"))["ended"] is None
    assert b"wrote mesh.vtk" in await check("GET", f"/runs/{runs.done}/log")
    await check("GET", f"/runs/{runs.failed}/log")  # no log kept: 404
    assert (await check("GET", f"/runs/{runs.done}/steps.csv")).count(b"\n") == 4
    plot = json.loads(await check("GET", f"/runs/{runs.done}/plot"))
    assert [p["phase"] for p in plot["phases"]] == ["Validating", "Running", "Uploading"]
    assert len(plot["resources"]) == 15
    await check("GET", f"/runs/{runs.running}/plot")
    for tail in ("", "/log", "/steps.csv", "/plot"):
        assert "no run" in json.loads(await check("GET", f"/runs/no-such-run{tail}"))["detail"]


async def _dashboard(check: Checker, runs: Runs) -> None:
    assert b"@istari:extract" in await check("GET", "/dashboard")
    assert b"@istari:mesh" in await check("GET", "/dashboard?status=Failed&keyword=mesh")
    await check("GET", "/dashboard?limit=0", doc_allows=False)
    await check("GET", f"/dashboard/runs/{runs.done}")
    await check("GET", f"/dashboard/runs/{runs.running}")
    assert b"No such run" in await check("GET", "/dashboard/runs/no-such-run")
