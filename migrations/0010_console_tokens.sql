-- Serial console tokens (issue 13): the one-time token of an
-- os-getSerialConsole URL. A table rather than memory because the API may
-- run as several replicas: the one that hands out the URL need not be the
-- one the websocket reaches.
--
-- token_hash: SHA-256 (hex) of the token; the token itself is only in the
-- URL given to the user. A row is deleted when the token is used (single
-- use) and purged once expired; it works only for instance_id.

CREATE TABLE console_tokens (
    token_hash    TEXT PRIMARY KEY,
    instance_id   TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    console_type  TEXT NOT NULL,
    expires_at    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE INDEX console_tokens_expires_at ON console_tokens (expires_at);
