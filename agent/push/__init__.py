"""Push wake-ups over MQTT: the wire protocol, broker connections, the agent's listener."""
