"""The official SDK submits a job, our agent runs it, and the SDK reads the artifacts back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.registry import RegistryProcess

# The SDK's v2 calls warn that they are deprecated (see test_sdk.py).
pytestmark = pytest.mark.filterwarnings(r"ignore:.* is deprecated\.?:DeprecationWarning")

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_sdk_reads_what_the_agent_uploaded(
    sdk: Any, registry_process: RegistryProcess, tmp_path: Path
) -> None:
    from istari_digital_client.legacy.v2.models.manifest import Manifest

    manifest = json.loads((EXAMPLES / "modules/stl_summary/module_manifest.json").read_text())
    sdk.create_module(Manifest.from_dict(manifest))
    model = sdk.add_model(EXAMPLES / "data/bracket.stl")
    job = sdk.add_job(model.id, function="@example:stl_summary", parameters={"units": "mm"})

    env = {k: v for k, v in os.environ.items() if not k.startswith("ISTARI_")}
    env |= {
        "ISTARI_DIGITAL_AGENT_REGISTRY_API_URL": registry_process.url,
        "ISTARI_DIGITAL_AGENT_REGISTRY_API_TOKEN": registry_process.token,
        "ISTARI_DIGITAL_AGENT_MODULES_PATH": str(EXAMPLES / "modules"),
        "ISTARI_DIGITAL_AGENT_OUTPUT_PATH": str(tmp_path / "work"),
        "ISTARI_DIGITAL_AGENT_STATE_PATH": str(tmp_path / "state"),
        "ISTARI_DIGITAL_AGENT_HOST_OS": "Ubuntu 22.04",
    }
    done = subprocess.run(
        [sys.executable, "-m", "agent", "run", "--until-idle"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    final = sdk.get_job(job.id)
    assert final.status_history[-1].name == "Completed"
    artifacts = {a.file.revisions[-1].name: a for a in sdk.list_model_artifacts(model.id).items}
    assert {"summary.json", "preview.png", f"job-{job.id}.log"} <= set(artifacts)
    summary = json.loads(sdk.get_artifact(artifacts["summary.json"].id).file.read_bytes())
    assert summary["units"] == "mm"
    assert summary["triangles"] > 0
    png = artifacts["preview.png"].file.revisions[-1].read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
