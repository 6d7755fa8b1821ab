"""Inline credentials: the agent's RSA key, the delivery envelope, and credentials for a job."""
