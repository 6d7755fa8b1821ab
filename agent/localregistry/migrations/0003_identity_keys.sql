-- Version 3: identity-service mode. An agent's ES384 public key, registered with
-- POST /api/v2/key/agent, under a client id made for it; a client assertion signed by the
-- private half is exchanged at the token endpoint for a short-lived access token.
CREATE TABLE identity_keys (
    client_id TEXT NOT NULL, key_id TEXT NOT NULL, user_id TEXT NOT NULL,
    public_key_pem TEXT NOT NULL, key_name TEXT NOT NULL, display_name TEXT NOT NULL,
    expires INTEGER NOT NULL, created TEXT NOT NULL, created_by_id TEXT,
    PRIMARY KEY (client_id, key_id)
);
