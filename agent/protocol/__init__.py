"""The contract the agent and the local registry share, pure: both sides import it, it imports
neither.

- `states`: job and agent states, and the job state table (who may move a job where);
- `content`: content addressing (salted SHA-384 blob addresses, file properties);
- `envelope`: the credential envelope a job's secrets travel in, sealed to an agent's key;
- `manifest`, `placeholders`: the module contract (`module_manifest.json`, `run_command`);
- `push`: the push protocol's topics and payloads (MQTT notices, v1);
- `osnames`: the registry's operating-system names.
"""
