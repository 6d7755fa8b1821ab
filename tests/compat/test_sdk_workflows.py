"""External workflow logs through the official SDK against a real local registry process.

The SDK's `V3Client` records a run the way the platform's docs show it (outputs from files,
then one entry), and reads back what `istari-agent record` wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.registry import RegistryProcess


@pytest.fixture(scope="module")
def v3(registry_process: RegistryProcess) -> Any:
    """The SDK's v3 client pointed at the registry process."""
    istari = pytest.importorskip("istari_digital_client")
    os.environ.pop("ISTARI_DIGITAL_API_URL", None)
    config = istari.Configuration(
        registry_url=registry_process.url, registry_auth_token=registry_process.token
    )
    return istari.V3Client(config)


@pytest.fixture
def system(sdk: Any) -> Any:
    from istari_digital_client.legacy.v2.models.new_system import NewSystem

    return sdk.create_system(NewSystem(name="Bracket", description="external runs"))


def test_systems_round_trip_through_the_sdk(sdk: Any, system: Any) -> None:
    again = sdk.get_system(system.id)
    assert (again.name, again.description, again.archive_status) == (
        "Bracket",
        "external runs",
        "Active",
    )
    assert system.id in {s.id for s in sdk.list_systems(size=100).items}


def test_the_documented_flow_outputs_then_one_entry(v3: Any, system: Any, tmp_path: Path) -> None:
    from istari_digital_client.v3.models import WorkflowLogEntryCreateDto

    paths = [tmp_path / "results.xml", tmp_path / "plot.png"]
    paths[0].write_text("<testsuite tests='3' failures='1'/>")
    paths[1].write_bytes(os.urandom(50_000))
    outputs = [v3.create_workflow_output(system_id=system.id, path=p) for p in paths]
    assert [o.name for o in outputs] == ["results.xml", "plot.png"]
    assert [o.size for o in outputs] == [p.stat().st_size for p in paths]

    entry = v3.create_workflow_log_entry(
        system_id=system.id,
        workflow_log_entry_create_dto=WorkflowLogEntryCreateDto(
            title="Design verification — iter-1",
            status="FAILED",
            workflow_output_ids=[o.id for o in outputs],
        ),
    )
    assert (entry.status, entry.workflow_type, entry.file_count) == ("FAILED", "external", 2)
    assert entry.total_file_size == sum(p.stat().st_size for p in paths)

    page = v3.list_workflow_log_entries(system_id=system.id)
    assert [(e.id, e.title) for e in page.items] == [(entry.id, "Design verification — iter-1")]
    detail = v3.get_workflow_log_entry(system_id=system.id, entry_id=entry.id)
    assert [o.id for o in detail.workflow_outputs] == [o.id for o in outputs]
    assert [v3.get_content(o) for o in detail.workflow_outputs] == [p.read_bytes() for p in paths]

    v3.archive_workflow_log_entry(system_id=system.id, entry_id=entry.id)
    assert v3.list_workflow_log_entries(system_id=system.id).items == []
    assert not v3.restore_workflow_log_entry(system_id=system.id, entry_id=entry.id).archived


def test_sdk_filters_and_pages(v3: Any, system: Any) -> None:
    from istari_digital_client.v3.models import WorkflowLogEntryCreateDto

    for i in range(5):
        v3.create_workflow_log_entry(
            system_id=system.id,
            workflow_log_entry_create_dto=WorkflowLogEntryCreateDto(
                title=f"nightly {i}", status="SUCCESS" if i % 2 else "FAILED"
            ),
        )
    first = v3.list_workflow_log_entries(system_id=system.id, size=2)
    assert (len(first.items), first.total) == (2, 5)
    rest = v3.list_workflow_log_entries(system_id=system.id, size=10, cursor=first.next_page)
    assert len(rest.items) == 3 and rest.next_page is None
    failed = v3.list_workflow_log_entries(system_id=system.id, status=["!SUCCESS"], title=["NIGHT"])
    assert sorted(e.title for e in failed.items) == ["nightly 0", "nightly 2", "nightly 4"]


def test_sdk_errors_for_bad_input(v3: Any, system: Any) -> None:
    from istari_digital_client import ApiException
    from istari_digital_client.v3.models import WorkflowLogEntryCreateDto

    with pytest.raises(ApiException) as caught:
        v3.create_workflow_log_entry(
            system_id=system.id,
            workflow_log_entry_create_dto=WorkflowLogEntryCreateDto(
                branchless=True, configuration_id="00000000-0000-4000-8000-000000000000"
            ),
        )
    assert caught.value.status == 422
    with pytest.raises(ApiException) as caught:
        v3.list_workflow_log_entries(system_id="00000000-0000-4000-8000-000000000000")
    assert caught.value.status == 404


def test_the_sdk_reads_what_istari_agent_record_wrote(
    v3: Any, system: Any, registry_process: RegistryProcess, tmp_path: Path
) -> None:
    (tmp_path / "summary.json").write_text('{"passed": 3}')
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ISTARI")},
        "ISTARI_REGISTRY_URL": registry_process.url,
        "ISTARI_REGISTRY_AUTH_TOKEN": registry_process.token,
    }
    script = "print('all 3 checks passed')"
    done = subprocess.run(
        [
            sys.executable, "-m", "agent", "record", "--state-path", str(tmp_path / "state"),
            "--system", system.id, "--title", "checks", "--output", "summary.json",
            "--config", "tolerance=0.1", "--json", "--", sys.executable, "-c", script,
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    entry_id = json.loads(done.stdout.splitlines()[-1])["entry_id"]

    page = v3.list_workflow_log_entries(system_id=system.id, title=["checks"])
    assert [(e.id, e.status) for e in page.items] == [(entry_id, "SUCCESS")]
    detail = v3.get_workflow_log_entry(system_id=system.id, entry_id=entry_id)
    contents = {o.name: v3.get_content(o) for o in detail.workflow_outputs}
    assert contents == {
        "summary.json": b'{"passed": 3}',
        "configuration.json": b'{\n  "tolerance": "0.1"\n}\n',
        "command.log": b"all 3 checks passed\n",
    }
