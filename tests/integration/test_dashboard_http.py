"""The dashboard on a real agent's HTTP listener, during and after a real job; 404 and 422.

The `report` tool (tests/tools/behave.py) reports entries and progress, then waits at a
gate: meanwhile its page shows them and reloads itself; once it has finished the page shows
the end of its log and stops reloading. The session logs in as a person does: it opens the
dashboard's link (`/dashboard?token=...`) once and keeps the cookie it is given.
"""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser

import aiohttp

from agent.runs.dashboard import POLICY
from agent.runs.pages import REFRESH_RUN
from tests.support.agent_harness import AgentHarness, serving
from tests.support.logwatch import watch_logs

RELOADS = f'<meta http-equiv="refresh" content="{REFRESH_RUN}">'


class Text(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.feed(html)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def __str__(self) -> str:
        return " ".join(" ".join(self.parts).split())


async def page(session: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    """A page's status, text and HTML; every page is HTML that may run no script."""
    async with session.get(url) as resp:
        assert resp.content_type == "text/html"
        assert resp.headers["Content-Security-Policy"] == POLICY
        html = await resp.text()
        return resp.status, str(Text(html)), html


async def shows(session: aiohttp.ClientSession, url: str, words: str) -> tuple[str, str]:
    """The page's text and HTML once it shows `words` (only seen by asking; 15 s at most)."""
    async with asyncio.timeout(15):
        while True:
            _, text, html = await page(session, url)
            if words in text:
                return text, html
            await asyncio.sleep(0.05)  # polling: the page changes only when asked again


async def test_the_agent_serves_the_dashboard_of_its_runs(harness: AgentHarness) -> None:
    job = await harness.submit("report", {"code": 0})
    gate = harness.workdir(job) / "tmp" / "go"
    with watch_logs() as logs:
        async with serving(harness, http_address="127.0.0.1:0", keep_work_dirs="never"):
            url = (await logs.wait_for("http.listening"))["url"]
            token = harness.settings().http_token_path.read_text().strip()
            jar = aiohttp.CookieJar(unsafe=True)  # unsafe: keeps cookies of an IP address
            async with aiohttp.ClientSession(cookie_jar=jar) as session:
                assert (await page(session, f"{url}/dashboard?token={token}"))[0] == 200
                run_page = f"{url}/dashboard/runs/{job.id}"
                text, html = await shows(session, run_page, "80 %")
                assert "meshing" in text and "cells=120" in text and "coarse mesh" in text
                assert "Running" in text and "so far" in text and RELOADS in html
                _, listing, _ = await page(session, f"{url}/dashboard?status=Running")
                assert "1 run with status Running" in listing and job.function.name in listing

                gate.touch()
                await logs.wait_for("job.finished", job_id=job.id)
                status, text, html = await page(session, run_page)
                assert status == 200 and "Completed" in text and RELOADS not in html
                assert "Validating" in text and "Uploading" in text
                assert "waiting at the gate" in text  # the end of the tool's log

                status, missing, _ = await page(session, f"{url}/dashboard/runs/no-such-run")
                assert status == 404 and "no run no-such-run" in missing
                status, bad, _ = await page(session, f"{url}/dashboard?page=0")
                assert status == 422 and "page must be a whole number" in bad
