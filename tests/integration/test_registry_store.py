"""The local registry's store: a data directory of the previous release opens in this one
(migrated, its data served), one of a later release is refused untouched, and a page of jobs
costs the same number of SQL statements whatever its length."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.localregistry.app import RegistrySettings
from agent.localregistry.datadir import SetupRefused
from agent.localregistry.db import MIGRATIONS, SCHEMA_VERSION, SchemaTooNew, connect
from agent.localregistry.server import RunningRegistry, running
from agent.protocol.states import AgentStatus, JobStatus
from agent.registry.client import RegistryClient
from tests.support.registry import agent_with_module, submit_jobs

FIXTURE = Path(__file__).parent.parent / "fixtures" / "registry-v1.sql"
V1_TOKEN = "registry-v1-fixture-admin-token-not-a-secret"  # its hash is in the fixture
V1_TABLES_ADDED_LATE = (  # tables version-1 releases added after the first one
    "blob_candidates", "credentials", "job_credentials", "systems", "workflow_entries",
    "workflow_outputs",
)  # fmt: skip


def v1_data_dir(root: Path, *, drop: tuple[str, ...] = ()) -> Path:
    """A data directory as the previous release left it: its database and admin token."""
    data = root / "registry"
    data.mkdir(mode=0o700)
    with closing(sqlite3.connect(data / "registry.sqlite3")) as db:
        db.executescript(FIXTURE.read_text())
        for table in drop:
            db.execute(f"DROP TABLE {table}")
    (data / "admin-token").write_text(V1_TOKEN + "\n")
    (data / "admin-token").chmod(0o600)
    return data


@asynccontextmanager
async def serving(data: Path) -> AsyncIterator[tuple[RunningRegistry, Callable[..., Any]]]:
    """The registry on `data` and a GET answering the JSON of a 200."""
    async with (
        running(RegistrySettings(data_dir=data)) as reg,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {reg.token}"}) as http,
    ):

        async def get(path: str) -> Any:
            async with http.get(reg.url + path) as r:
                assert r.status == 200, await r.text()
                return await r.json()

        yield reg, get


def recorded_version(db: Path) -> int:
    with closing(sqlite3.connect(db)) as conn:
        return int(
            conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
        )


def schema_of(db: Path) -> dict[str, Any]:
    """Each table's columns and each index's columns, as SQLite reports them."""
    with closing(sqlite3.connect(db)) as conn:
        names = conn.execute("SELECT type, name, tbl_name FROM sqlite_master ORDER BY name")
        shape: dict[str, Any] = {}
        for kind, name, table in names.fetchall():
            if kind == "table":
                shape[name] = conn.execute(f"PRAGMA table_info({name})").fetchall()
            elif kind == "index":
                shape[name] = (table, conn.execute(f"PRAGMA index_info({name})").fetchall())
        return shape


async def test_a_data_dir_of_the_previous_release_opens_with_its_data(tmp_path: Path) -> None:
    data = v1_data_dir(tmp_path)
    assert recorded_version(data / "registry.sqlite3") == 1
    async with serving(data) as (reg, get):
        assert reg.token == V1_TOKEN  # the data dir's own admin token still opens it
        jobs = (await get("/api/v2/jobs?size=100"))["items"]
        ended = [j for j in jobs if j["status_history"][-1]["name"] == JobStatus.FAILED]
        assert (len(jobs), len(ended)) == (5, 3)
        agent_id = ended[0]["agent_id"]
        for job in ended:
            history = [s["name"] for s in job["status_history"]]
            assert history == ["Created", "Pending", "Claimed", "Validating", "Failed"]
            assert "missing required parameter" in job["status_history"][-1]["message"]
            # The holder's display name, set by the previous release, now read with the job.
            assert job["agent_information"] == {
                "agent_id": agent_id,
                "display_name": "lab-runner-1",
            }
            assert job["function"]["name"] == "@test:echo"
            assert job["file"]["revisions"][0]["name"] == "parameters.json"
            assert await get(f"/api/v2/jobs/{job['id']}") == job
            model = await get(f"/api/v2/models/{job['model_id']}")
            assert [r["name"] for r in model["file"]["revisions"]] == ["part.txt"]
            assert model["artifacts"] == []
        agent = await get(f"/api/v2/agents/{agent_id}")
        assert [s["name"] for s in agent["status_history"]] == ["Idle", "Paused"]
        assert agent["display_name_history"][-1]["display_name"] == "lab-runner-1"
        assert (
            agent["modules_history"][-1]["module_versions"][0]["module_name"] == "@test:behaviours"
        )
        (pool,) = (await get("/api/v2/agent_pools"))["items"]
        assert [m["agent_id"] for m in pool["agent_memberships"]] == [agent_id]
        # The agent stopped (Paused): nothing is offered to it until it starts again and
        # says Idle, as a restarted agent does first.
        offered = await get(f"/api/v2/agents/{agent_id}/available_jobs")
        assert offered["total"] == 0
        async with RegistryClient(reg.url, reg.token) as client:
            await client.set_agent_status(agent_id, AgentStatus.IDLE)
        offered = await get(f"/api/v2/agents/{agent_id}/available_jobs")
        assert offered["total"] == 2
    assert recorded_version(data / "registry.sqlite3") == SCHEMA_VERSION


async def test_an_output_an_older_release_linked_to_its_job_is_found_by_it(tmp_path: Path) -> None:
    """Migration 0004: a resource's first revision takes the job that created it."""
    data = v1_data_dir(tmp_path)
    with closing(sqlite3.connect(data / "registry.sqlite3")) as db, db:
        job_id, model_id = db.execute("SELECT id, model_id FROM jobs LIMIT 1").fetchone()
        db.execute("UPDATE resources SET source_job_id = ? WHERE id = ?", (job_id, model_id))
    async with serving(data) as (_, get):
        found = await get(f"/api/v2/models?source_job_id={job_id}")
        assert [m["id"] for m in found["items"]] == [model_id]
        assert len((await get("/api/v2/models?size=100"))["items"]) == 5


@pytest.mark.parametrize("drop", [(), V1_TABLES_ADDED_LATE], ids=["last-v1", "early-v1"])
def test_a_migrated_database_has_the_schema_of_a_new_one(
    tmp_path: Path, drop: tuple[str, ...]
) -> None:
    old = v1_data_dir(tmp_path, drop=drop) / "registry.sqlite3"
    connect(old).close()
    (tmp_path / "new").mkdir()
    connect(tmp_path / "new" / "registry.sqlite3").close()
    assert schema_of(old) == schema_of(tmp_path / "new" / "registry.sqlite3")
    assert recorded_version(old) == SCHEMA_VERSION


def test_migrations_are_shipped_and_numbered_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(2, SCHEMA_VERSION + 1))
    assert all(m.sql.strip() for m in MIGRATIONS)


async def test_a_database_of_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    data = tmp_path / "registry"
    data.mkdir(mode=0o700)
    connect(data / "registry.sqlite3").close()
    with closing(sqlite3.connect(data / "registry.sqlite3")) as db, db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
        db.execute("CREATE TABLE from_the_future (x)")
    before = schema_of(data / "registry.sqlite3")
    with pytest.raises(SchemaTooNew, match=r"newer release of istari-agent.*Upgrade istari-agent"):
        connect(data / "registry.sqlite3")
    with pytest.raises(SetupRefused, match=f"schema version {SCHEMA_VERSION + 1}"):
        async with running(RegistrySettings(data_dir=data)):
            pass
    assert schema_of(data / "registry.sqlite3") == before
    assert recorded_version(data / "registry.sqlite3") == SCHEMA_VERSION + 1


@asynccontextmanager
async def statements(reg: RunningRegistry) -> AsyncIterator[list[str]]:
    """The SQL statements the registry runs during the block."""
    seen: list[str] = []
    reg.registry.conn.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        reg.registry.conn.set_trace_callback(None)


async def page_costs(
    reg: RunningRegistry, client: RegistryClient, agent: str, job_id: str
) -> dict[str, int]:
    """Statements per request: the agent's offers, all jobs, one job; and the items seen."""
    costs = {}
    async with statements(reg) as seen:
        offered = await client.available_jobs(agent, size=100)
    costs["available"], costs["offered"] = len(seen), len(offered.items)
    async with statements(reg) as seen:
        listed = await client.list_jobs(size=100)
    costs["list"], costs["listed"] = len(seen), len(listed.items)
    async with statements(reg) as seen:
        await client.get_job(job_id)
    costs["read"] = len(seen)
    return costs


async def test_a_page_of_jobs_costs_the_same_statements_for_2_jobs_as_for_6(
    local_registry: RunningRegistry, client: RegistryClient, tmp_path: Path
) -> None:
    agent = await agent_with_module(client)
    first = await submit_jobs(client, tmp_path, 2)
    await client.update_job_status(first[0].id, JobStatus.CLAIMED, agent)
    small = await page_costs(local_registry, client, agent, first[0].id)
    more = await submit_jobs(client, tmp_path, 4)
    for job in more[:2]:  # longer histories, and holders to name
        for status in (JobStatus.CLAIMED, JobStatus.RUNNING):
            await client.update_job_status(job.id, status, agent)
    large = await page_costs(local_registry, client, agent, more[0].id)
    assert (small["offered"], small["listed"]) == (1, 2)
    assert (large["offered"], large["listed"]) == (3, 6)
    for request in ("available", "list", "read"):
        assert large[request] == small[request], request
