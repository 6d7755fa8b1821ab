"""`istari-agent registry serve` and `istari-agent submit` as real processes."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
from pathlib import Path

import aiomqtt
import pytest

from agent.protocol import push as protocol
from agent.protocol.push import State
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.transfer import download_revision, upload_revision
from tests.support.mosquitto import Mosquitto
from tests.support.registry import (
    FUNCTION,
    MANIFEST,
    RegistryProcess,
    agent_with_module,
    start_registry_process,
    stop_registry_process,
)


def _serve_with_generated_token(data_dir: Path) -> RegistryProcess:
    env = {k: v for k, v in os.environ.items() if k != "ISTARI_LOCAL_REGISTRY_TOKEN"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent",
            "registry",
            "serve",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, line
    assert "admin-token" in line  # it says where the token is, never the token itself
    token = (data_dir / "admin-token").read_text().strip()
    assert token not in line
    return RegistryProcess(line.split("listening on ")[1].split()[0], token, data_dir, proc)


def test_generated_token_is_private_and_data_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = _serve_with_generated_token(data_dir)
    try:
        assert stat.S_IMODE((data_dir / "admin-token").stat().st_mode) == 0o600
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        model_file = tmp_path / "part.stl"
        model_file.write_bytes(os.urandom(300_000))
        model_id = asyncio.run(_upload(first, model_file))
    finally:
        stop_registry_process(first)

    second = _serve_with_generated_token(data_dir)
    try:
        assert second.token == first.token
        copy = tmp_path / "copy.stl"
        asyncio.run(_download(second, model_id, copy))
        assert copy.read_bytes() == model_file.read_bytes()
    finally:
        stop_registry_process(second)


async def _upload(reg: RegistryProcess, path: Path) -> str:
    async with RegistryClient(reg.url, reg.token) as client:
        return (await client.create_model(await upload_revision(client, path))).id


async def _download(reg: RegistryProcess, model_id: str, dest: Path) -> None:
    async with RegistryClient(reg.url, reg.token) as client:
        model = await client.get_model(model_id)
        await download_revision(client, model.file.current, dest)


def test_env_token_is_used_and_no_token_file_is_written(tmp_path: Path) -> None:
    reg = start_registry_process(tmp_path / "data", "a-token-from-the-environment-" + "x" * 8)
    try:
        assert not (tmp_path / "data" / "admin-token").exists()
        health = asyncio.run(_readiness(reg))
        assert health["healthy"] is True
    finally:
        stop_registry_process(reg)


async def _readiness(reg: RegistryProcess) -> dict[str, object]:
    async with RegistryClient(reg.url, reg.token) as client:
        return await client.readiness()


def _submit(reg: RegistryProcess, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ISTARI_REGISTRY_URL": reg.url, "ISTARI_REGISTRY_AUTH_TOKEN": reg.token}
    return subprocess.Popen(
        [sys.executable, "-m", "agent", "submit", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_submit_uploads_the_model_and_parameters(
    registry_process: RegistryProcess, tmp_path: Path
) -> None:
    asyncio.run(_publish(registry_process))
    model_file = tmp_path / "wing.txt"
    model_file.write_text("a wing")
    proc = _submit(
        registry_process,
        str(model_file),
        "--function",
        FUNCTION,
        "--param",
        "span=12.5",
        "--param",
        "name=left",
        "--param",
        'tags=["a","b"]',
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    job_id = out.split("submitted job ")[1].split()[0]
    params = asyncio.run(_parameters(registry_process, job_id, tmp_path / "p.json"))
    assert params == {"span": 12.5, "name": "left", "tags": ["a", "b"]}


def test_submit_wait_follows_the_job_and_exits_with_its_outcome(
    registry_process: RegistryProcess, tmp_path: Path
) -> None:
    asyncio.run(_publish(registry_process))
    model_file = tmp_path / "wing.txt"
    model_file.write_text("a wing")
    proc = _submit(registry_process, str(model_file), "--function", FUNCTION, "--wait")
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the job exists once this line is printed
    job_id = first.split("submitted job ")[1].split()[0]
    asyncio.run(_fail(registry_process, job_id))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "Failed: the tool crashed" in out


def test_submit_with_a_bad_param_says_what_is_wrong(
    registry_process: RegistryProcess, tmp_path: Path
) -> None:
    model_file = tmp_path / "m.txt"
    model_file.write_text("x")
    proc = _submit(registry_process, str(model_file), "--function", FUNCTION, "--param", "oops")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "--param takes key=value" in err


async def _publish(reg: RegistryProcess) -> None:
    async with RegistryClient(reg.url, reg.token) as client:
        await client.publish_module(MANIFEST)


async def _parameters(reg: RegistryProcess, job_id: str, dest: Path) -> object:
    async with RegistryClient(reg.url, reg.token) as client:
        job = await client.get_job(job_id)
        await download_revision(client, job.file.current, dest)
        return json.loads(dest.read_text())


async def _fail(reg: RegistryProcess, job_id: str) -> None:
    async with RegistryClient(reg.url, reg.token) as client:
        agent = await agent_with_module(client)
        await client.update_job_status(job_id, JobStatus.CLAIMED, agent)
        await client.update_job_status(job_id, JobStatus.FAILED, agent, "the tool crashed")


def test_debug_logs_of_a_registry_hold_no_token_or_signature(tmp_path: Path) -> None:
    token = "tok-" + "x" * 30
    env = {**os.environ, "ISTARI_LOCAL_REGISTRY_TOKEN": token}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "--log-level", "debug", "registry", "serve",
         "--port", "0", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    url = proc.stdout.readline().split("listening on ")[1].split()[0]
    reg = RegistryProcess(url, token, tmp_path / "data", proc)
    model_file = tmp_path / "m.bin"
    model_file.write_bytes(b"content")
    signatures = asyncio.run(_upload_and_collect_signatures(reg, model_file))
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert "registry.request" in err  # the access log did run
    assert token not in err
    assert signatures and not any(sig in err for sig in signatures)


async def _upload_and_collect_signatures(reg: RegistryProcess, path: Path) -> list[str]:
    from urllib.parse import parse_qs, urlsplit

    from agent.protocol.content import digest_file
    from agent.registry.models import NewRevision, Token
    from agent.registry.transfer import upload_bytes

    async with RegistryClient(reg.url, reg.token) as client:
        digest = digest_file(path)
        target = await client.upload_url(digest.sha)
        assert target is not None
        await client.put_blob(target.url, path)  # the signed PUT that the access log records
        props = await upload_bytes(client, b"{}")
        content = Token(sha=digest.sha, salt=digest.salt)  # served once a revision verifies it
        revision = NewRevision(
            content_token=content, properties_token=props, name=path.name, size=digest.size
        )
        await client.create_model(revision)
        download = await client.download_url(digest.sha)
        await client.get_blob(download.url, path.with_suffix(".back"), digest.sha, digest.salt)
        return [parse_qs(urlsplit(u).query)["signature"][0] for u in (target.url, download.url)]


def test_a_bad_mqtt_url_is_a_one_line_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agent", "registry", "serve", "--port", "0",
         "--data-dir", str(tmp_path / "data"), "--mqtt-url", "http://broker:1883"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert error == ["Error: MQTT URL must start with mqtt:// or mqtts://, not 'http'"]
    assert not (tmp_path / "data").exists()  # refused before anything was set up


async def test_serve_with_mqtt_url_says_offline_on_sigterm_and_its_will_does_on_a_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Mosquitto(tmp_path / "mosquitto") as broker:
        monkeypatch.setenv("ISTARI_LOCAL_REGISTRY_MQTT_USERNAME", broker.username)
        monkeypatch.setenv("ISTARI_LOCAL_REGISTRY_MQTT_PASSWORD", broker.password)
        async with aiomqtt.Client(
            broker.host, broker.port, username=broker.username, password=broker.password
        ) as watcher:
            await watcher.subscribe(protocol.REGISTRY_PRESENCE, qos=1)
            for stop in (signal.SIGTERM, signal.SIGKILL):  # a clean goodbye, then the will
                reg = start_registry_process(
                    tmp_path / "data", secrets.token_urlsafe(32), "--mqtt-url", broker.url
                )
                try:
                    assert await _presence(watcher) is State.ONLINE
                    reg.process.send_signal(stop)
                    assert await _presence(watcher) is State.OFFLINE
                    assert reg.process.wait(timeout=10) == (0 if stop is signal.SIGTERM else -9)
                finally:
                    stop_registry_process(reg)


async def _presence(watcher: aiomqtt.Client) -> State | None:
    async with asyncio.timeout(10):
        message = await anext(watcher.messages)
    assert isinstance(message.payload, bytes)
    return protocol.decode(message.payload).state
