"""Push wake-ups over MQTT: broker connections and the agent's listener.

The notices themselves (topics, payloads) are the shared contract's: agent/protocol/push.py.
"""
