"""What the tests share besides fixtures: real parts to run them against, and waits on them.

Test modules and conftests import from here, never from one another. Fixtures more than one
test directory uses are in tests/conftest.py; tests/tools/ is the test module installed into
agents (its own layout).

- `registry`: the local registry as a child process (`RegistryProcess`,
  `start_registry_process`, `stop_registry_process`); an agent and jobs on any registry over
  HTTP (`agent_with_module`, `submit_jobs`, `MANIFEST`, `FUNCTION`).
- `agent_harness`: a real agent in the test's event loop (`AgentHarness`, `serving`,
  `wait_for_status`).
- `agentcli`: the agent's CLI as a child process (`agent_env`, `agent`, `running_agent`,
  `AgentProcess`, `submit_job`).
- `gated`: `gate` jobs against a registry process and a real agent that runs them (`Setup`,
  `Gated`).
- `push`: agent settings for a broker (`mqtt_settings`), `PUSH_ONLY` poll intervals, and waits
  that show a claim came by push (`settled`, `claimed_by_push`).
- `processes`: whether a process is `gone`, and the `processes_in` a work directory.
- `logwatch`: structlog events a test waits for (`watch_logs`, `LogWatch`, `eventually`,
  `until`).
- `mosquitto`: a real broker on a free port (`Mosquitto`, `free_port`); `certs`: a throwaway
  CA (`make_pki`, `Pki`); `faultproxy`: an HTTP proxy that injects faults (`FaultProxy`,
  `Fault`); `slurm`: a real single-node Slurm (`Slurm`, `missing`).
- `runs_site`: run records served by the agent's HTTP listener (`Site`, `populate`, `serving`).
- `compat`: the example module the compat suite publishes through the SDK (`EXAMPLE_MANIFEST`).
"""
