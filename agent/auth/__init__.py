"""The agent's RSA key, which the credentials delivered with jobs are sealed to."""
