"""The agent's HTTP listener against DNS rebinding, other local users and a public bind.

A web page whose name is rebound to 127.0.0.1 reaches the listener with its own name in the
Host header; a local user (or that page) has no token. Each test runs a real agent with its
listener on a free loopback port, after a real job, and tries what they would.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from multidict import CIMultiDict

from agent.daemon import Mode
from agent.errors import AgentError
from agent.httpaccess import HostRule
from agent.registry.models import Job
from tests.support.agent_harness import AgentHarness, serving
from tests.support.logwatch import LogWatch, watch_logs

AGENT = Path(sys.executable).parent / "istari-agent"
EVIL = "evil.example"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: CIMultiDict[str]
    body: str


@dataclass(frozen=True)
class Listener:
    """A serving agent's listener, and the finished job whose run it holds."""

    url: str
    port: int
    token_path: Path
    logs: LogWatch
    job: Job

    @property
    def token(self) -> str:
        return self.token_path.read_text().strip()

    async def ask(
        self,
        method: str,
        path: str,
        *,
        host: str | None = None,
        token: str | None = None,
        scheme: str = "Bearer",
        cookie: str | None = None,
    ) -> Answer:
        """One request as a browser page or a local user would send it (no redirect followed)."""
        headers = {"Host": host} if host is not None else {}
        if token is not None:
            headers["Authorization"] = f"{scheme} {token}"
        if cookie is not None:
            headers["Cookie"] = cookie
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path, headers=headers, allow_redirects=False) as r,
        ):
            return Answer(r.status, CIMultiDict(r.headers), await r.text())

    async def login(self) -> str:
        """The dashboard's cookie, as a browser gets it from the dashboard's link."""
        answer = await self.ask("GET", f"/dashboard?token={quote(self.token, safe='')}")
        assert answer.status == 303, answer
        (name, morsel), *_ = SimpleCookie(answer.headers["Set-Cookie"]).items()
        return f"{name}={morsel.value}"


@asynccontextmanager
async def listening(harness: AgentHarness, **overrides: Any) -> AsyncIterator[Listener]:
    """A serving agent with its listener on a free loopback port, once a job has finished."""
    job = await harness.submit("echo", {"label": "a run the listener serves"})
    settings = {"http_address": "127.0.0.1:0", "keep_work_dirs": "never", **overrides}
    with watch_logs() as logs:
        async with serving(harness, **settings):
            url = (await logs.wait_for("http.listening"))["url"]
            await logs.wait_for("job.finished", job_id=job.id)
            port = int(url.rpartition(":")[2])
            yield Listener(url, port, harness.settings(**settings).http_token_path, logs, job)


def routes(job: Job) -> list[tuple[str, str]]:
    run = f"/runs/{job.id}"
    gets = ["/healthz", "/readyz", "/metrics", "/runs", run, f"{run}/log", f"{run}/steps.csv",
            f"{run}/plot", "/dashboard", f"/dashboard/runs/{job.id}", "/no-such-route"]  # fmt: skip
    return [("GET", p) for p in gets] + [("DELETE", run)]


async def test_a_rebinding_page_gets_nothing_from_any_route(harness: AgentHarness) -> None:
    async with listening(harness) as agent:
        host = f"{EVIL}:{agent.port}"  # the page's own name, now resolving to 127.0.0.1
        for method, path in routes(agent.job):
            answer = await agent.ask(method, path, host=host)
            assert answer.status == 421, (method, path, answer)
            assert "http_allowed_hosts" in answer.body
        for method, path in routes(agent.job):  # the Host check holds even with the token
            answer = await agent.ask(method, path, host=host, token=agent.token)
            assert answer.status == 421, (method, path, answer)
        kept = await agent.ask("GET", f"/runs/{agent.job.id}", token=agent.token)
        assert kept.status == 200


async def test_only_the_listening_address_localhost_and_allowed_hosts_are_answered(
    harness: AgentHarness,
) -> None:
    allowed = ("Proxy.Example", "pinned.example:8443", "[fd00::1]")
    async with listening(harness, http_allowed_hosts=allowed) as agent:
        p = agent.port
        answered = [f"127.0.0.1:{p}", f"localhost:{p}", f"LocalHost:{p}", f"[::1]:{p}",
                    "proxy.example", f"proxy.example:{p}", "PROXY.example:443",
                    "pinned.example:8443", "[fd00::1]", "[FD00::1]:8080"]  # fmt: skip
        refused = [f"localhost:{p + 1}", "localhost", f"127.0.0.1:{p + 1}", f"127.0.0.2:{p}",
                   f"{EVIL}:{p}", EVIL, "pinned.example", f"pinned.example:{p}",
                   f"proxy.example.{EVIL}:{p}", f"{EVIL}#proxy.example", f"::1:{p}",
                   f"[::2]:{p}", f"0.0.0.0:{p}", str(p), f"localhost:{p}:{p}",
                   f"127.0.0.1:{p}@{EVIL}", "[fd00::1]x"]  # fmt: skip
        for host in answered:
            assert (await agent.ask("GET", "/healthz", host=host)).status == 200, host
        for host in refused:
            assert (await agent.ask("GET", "/healthz", host=host)).status == 421, host


async def test_reading_runs_logs_pages_and_metrics_needs_the_token(harness: AgentHarness) -> None:
    async with listening(harness) as agent:
        run = f"/runs/{agent.job.id}"
        protected = [p for m, p in routes(agent.job) if m == "GET" and p not in OPEN]
        for path in protected:
            answer = await agent.ask("GET", path)
            assert answer.status == 401, (path, answer)
            assert answer.headers["WWW-Authenticate"].startswith("Bearer")
            assert str(agent.token_path) in answer.body  # where the token is, never the token
        token = agent.token
        wrong = [token[:-1] + ("x" if token[-1] != "x" else "y"), token + "x", token[:16], "",
                 f"{token} {token}", "\u00e9" * 43]  # fmt: skip
        for path in protected:
            for guess in wrong:
                answer = await agent.ask("GET", path, token=guess)
                assert answer.status == 401, (path, guess)
                assert token not in answer.body
            answer = await agent.ask("GET", path, token=token, scheme="Basic")
            assert answer.status == 401
        for scheme in ("Bearer", "bearer", "BEARER"):
            answer = await agent.ask("GET", "/runs", token=token, scheme=scheme)
            assert answer.status == 200 and agent.job.id in answer.body
        assert (await agent.ask("GET", f"{run}/log", token=token)).status == 200
        for path in OPEN:
            assert (await agent.ask("GET", path)).status == 200, path


OPEN = ("/healthz", "/readyz")


async def test_deleting_a_run_needs_the_token_itself(harness: AgentHarness) -> None:
    async with listening(harness) as agent:
        run = f"/runs/{agent.job.id}"
        assert (await agent.ask("DELETE", run)).status == 401
        token = agent.token
        assert (await agent.ask("GET", run, token=token)).status == 200  # still there
        cookie = await agent.login()
        assert (await agent.ask("GET", run, cookie=cookie)).status == 200
        # A browser sends its cookie with any page's request: the cookie never deletes.
        assert (await agent.ask("DELETE", run, cookie=cookie)).status == 401
        assert (await agent.ask("GET", run, token=token)).status == 200
        assert (await agent.ask("DELETE", run, token=token)).status == 204
        assert (await agent.ask("GET", run, token=token)).status == 404


async def test_metrics_are_open_only_with_http_metrics_open(harness: AgentHarness) -> None:
    async with listening(harness, http_metrics_open=True) as agent:
        assert (await agent.ask("GET", "/metrics")).status == 200
        assert (await agent.ask("GET", "/runs")).status == 401
        assert (await agent.ask("GET", "/metrics", host=f"{EVIL}:{agent.port}")).status == 421


async def test_the_dashboard_link_sets_a_private_cookie_and_leaves_the_address(
    harness: AgentHarness,
) -> None:
    async with listening(harness) as agent:
        assert (await agent.ask("GET", "/dashboard")).status == 401
        token = agent.token
        answer = await agent.ask("GET", f"/dashboard?status=Completed&token={token}")
        assert answer.status == 303
        assert answer.headers["Location"] == "/dashboard?status=Completed"  # the token is gone
        assert token not in answer.headers["Set-Cookie"]  # the cookie holds a MAC of it
        (name, morsel), *_ = SimpleCookie(answer.headers["Set-Cookie"]).items()
        assert morsel["httponly"] and morsel["samesite"] == "Strict" and morsel["path"] == "/"
        cookie = f"{name}={morsel.value}"
        page = await agent.ask("GET", "/dashboard?status=Completed", cookie=cookie)
        assert page.status == 200 and agent.job.function.name in page.body
        assert token not in page.body
        one = await agent.ask("GET", f"/dashboard/runs/{agent.job.id}", cookie=cookie)
        assert one.status == 200
        assert (await agent.ask("GET", f"/runs/{agent.job.id}/log", cookie=cookie)).status == 200

        bad = await agent.ask("GET", f"/dashboard?token={token}x")
        assert bad.status == 401 and "Set-Cookie" not in bad.headers
        assert "istari-agent dashboard-url" in bad.body
        assert (await agent.ask("GET", "/dashboard", cookie=f"{name}=forged")).status == 401
        assert (await agent.ask("GET", "/dashboard", cookie=f"{name}={token}")).status == 401
        assert (await agent.ask("GET", "/runs?token=" + token)).status == 401  # pages only


async def test_the_token_file_is_made_private_once_and_kept(harness: AgentHarness) -> None:
    path = harness.settings().http_token_path
    assert not path.exists()
    async with listening(harness) as agent:
        assert agent.token_path == path
        first = agent.token
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(first) >= 32
    await harness.run(Mode.UNTIL_IDLE, http_address="127.0.0.1:0")
    assert path.read_text().strip() == first
    assert [p.name for p in path.parent.iterdir() if "http_token" in p.name] == ["http_token"]


async def test_a_token_file_others_may_read_stops_the_start(harness: AgentHarness) -> None:
    path = harness.settings().http_token_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_urlsafe(32))
    for mode in (0o640, 0o604, 0o620, 0o644):
        path.chmod(mode)
        with pytest.raises(AgentError, match=re.escape(f"chmod 600 {path}")):
            await harness.run(Mode.UNTIL_IDLE, http_address="127.0.0.1:0")
    path.chmod(0o400)
    _acl(path, os.getuid() + 1)  # 0440 as systemd's credential, but for another user
    with pytest.raises(AgentError, match=re.escape(f"chmod 600 {path}")):
        await harness.run(Mode.UNTIL_IDLE, http_address="127.0.0.1:0")


async def test_a_public_listener_needs_a_token_made_on_purpose(
    harness: AgentHarness, tmp_path: Path
) -> None:
    public: dict[str, Any] = {"http_address": "127.0.0.1:0", "http_public": True}
    with pytest.raises(AgentError, match=r"http_public = true needs .* http_token_file"):
        await harness.run(Mode.UNTIL_IDLE, **public)
    assert not harness.settings().http_token_path.exists()  # nothing was made for it
    mine = tmp_path / "my-http-token"
    with pytest.raises(AgentError, match=re.escape(f"{mine} does not exist")):
        await harness.run(Mode.UNTIL_IDLE, **public, http_token_file=mine)
    _private(mine, "too-short-" * 3)
    with pytest.raises(AgentError, match="at least 32 characters"):
        await harness.run(Mode.UNTIL_IDLE, **public, http_token_file=mine)
    token = secrets.token_urlsafe(32)
    mine.write_text(token + "\n")
    async with listening(harness, http_public=True, http_token_file=mine) as agent:
        assert (await agent.ask("GET", "/runs", token=token)).status == 200


def test_the_systemd_credential_is_the_token_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = tmp_path / "agent.toml"
    config.write_text(
        'registry_api_url = "http://127.0.0.1:9"\nregistry_api_token = "registry-token"\n'
        f'http_address = "127.0.0.1:9464"\nstate_path = "{state}"\n'
    )
    config.chmod(0o600)
    refused = dashboard_url(config)  # the agent has not made its token yet
    assert refused.returncode == 1 and "start the agent" in refused.stderr
    assert not state.exists()  # dashboard-url only reads

    own = secrets.token_urlsafe(32)
    _private(state / "http_token", own)
    assert dashboard_url(config).stdout == f"http://127.0.0.1:9464/dashboard?token={own}\n"

    # systemd's credential: 0400 with an ACL entry for the service's user, so `ls` shows 0440
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    given = secrets.token_urlsafe(32)
    credential = credentials / "http-token"
    credential.write_text(given + "\n")
    credential.chmod(0o400)
    _acl(credential, os.getuid())
    shown = dashboard_url(config, CREDENTIALS_DIRECTORY=str(credentials))
    assert shown.stdout == f"http://127.0.0.1:9464/dashboard?token={given}\n", shown.stderr


def dashboard_url(config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    return subprocess.run(
        [str(AGENT), "dashboard-url", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**environ, **env},
        check=False,
        timeout=60,
    )


async def test_the_token_never_reaches_logs_errors_or_records(
    harness: AgentHarness, caplog: pytest.LogCaptureFixture
) -> None:
    async with listening(harness) as agent:
        token = agent.token
        answers = [
            await agent.ask("GET", "/runs", token=token),
            await agent.ask("GET", "/runs", token=token + "x"),
            await agent.ask("GET", f"/dashboard?token={token}"),
            await agent.ask("GET", f"/dashboard?token={token}x"),
            await agent.ask("GET", f"/dashboard/runs/{agent.job.id}?token={token}"),
            await agent.ask("GET", "/runs", host=EVIL, token=token),
            await agent.ask("DELETE", "/runs/no-such-run", token=token),
        ]
    assert agent.logs.find("http.listening")  # the log was captured
    assert token not in repr(agent.logs.entries)
    assert token not in caplog.text
    for answer in answers:
        assert token not in answer.body
        assert token not in answer.headers.get("Location", "")
    for f in harness.root.rglob("*"):  # state (journal, run records, kept logs), work, modules
        if f.is_file() and f != agent.token_path:
            assert token.encode() not in f.read_bytes(), f


def _private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)


_ACL = "system.posix_acl_access"


def _acl(path: Path, uid: int) -> None:
    """Give `path` the ACL systemd gives a credential: owner r, user `uid` r, mask r, no others."""
    entries = [(0x01, 4, 0xFFFFFFFF), (0x02, 4, uid), (0x04, 0, 0xFFFFFFFF),
               (0x10, 4, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF)]  # fmt: skip
    raw = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)
    try:
        os.setxattr(path, _ACL, raw)
    except OSError:
        pytest.skip("this file system keeps no POSIX ACLs")
    assert stat.S_IMODE(path.stat().st_mode) == 0o440


def test_a_wildcard_bind_answers_ip_addresses_and_loopback_names_never_other_names() -> None:
    rule = HostRule(("agent.lab",))
    rule.bound([("0.0.0.0", 9464), ("::", 9464)])
    for host in ("10.1.2.3:9464", "[fd00::7]:9464", "localhost:9464", "[::1]:9464", "agent.lab"):
        assert rule.allows(host), host
    for host in (f"{EVIL}:9464", "10.1.2.3:9465", "10.1.2.3", "lab:9464", ""):
        assert not rule.allows(host), host
    assert not rule.allows(None)  # no Host header at all
    named = HostRule(())
    named.bound([("10.0.0.17", 9464), ("node17.lab", 9464)])  # http_address = "node17.lab:9464"
    assert named.allows("node17.lab:9464") and named.allows("10.0.0.17:9464")
    assert not named.allows("node17.lab") and not named.allows("10.0.0.18:9464")
