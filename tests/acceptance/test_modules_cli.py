"""`istari-agent modules publish PATH`: the stand-in for the platform's `stari client publish`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.agentcli import agent
from tests.support.registry import RegistryProcess
from tests.tools import module


def _env(reg: RegistryProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISTARI_")}
    return {**env, "ISTARI_REGISTRY_URL": reg.url, "ISTARI_REGISTRY_AUTH_TOKEN": reg.token}


def test_publish_makes_the_functions_submittable(
    registry_process: RegistryProcess, tmp_path: Path
) -> None:
    env = _env(registry_process)
    model = tmp_path / "part.txt"
    model.write_text("model")
    before = agent(env, "submit", str(model), "--function", module.fn("echo"))
    assert before.returncode == 1, before.stderr  # nobody published it yet
    directory = module.install(tmp_path / "modules")

    done = agent(env, "modules", "publish", str(directory / "module_manifest.json"))

    assert done.returncode == 0, done.stderr
    key = module.manifest()["module_key"]
    assert f"published {key} {module.manifest()['module_version']}" in done.stdout
    after = agent(env, "submit", str(model), "--function", module.fn("echo"))
    assert after.returncode == 0, after.stderr
    again = agent(env, "modules", "publish", str(directory))  # the same version: a no-op
    assert again.returncode == 0, again.stderr


def test_a_broken_manifest_is_named_and_nothing_is_sent(
    registry_process: RegistryProcess, tmp_path: Path
) -> None:
    directory = module.install(tmp_path / "modules")
    manifest = json.loads((directory / "module_manifest.json").read_text())
    manifest["module_version"] = "soon"
    (directory / "module_manifest.json").write_text(json.dumps(manifest))

    done = agent(_env(registry_process), "modules", "publish", str(directory))

    assert done.returncode == 2
    assert "module_version" in done.stderr
    other = agent(_env(registry_process), "modules", "publish", str(directory / "behave.py"))
    assert other.returncode == 2
    assert "module_manifest.json" in other.stderr
