-- Idempotency keys belong to a user and are held by a live owner
-- (issue 16, security finding 7 and fault survival 2).
--
-- * A key is the caller's: (project, user, key). Another user of the
--   project sending the same key runs its own request.
-- * A claim is held by one request (`owner`, random per request) for as
--   long as its API renews `lease_until`; a claim whose owner died lapses
--   within seconds and is taken over by a retry.
-- * A server create records its answer here in the transaction that
--   creates the server, so a retry after a crash finds the server.
--
-- The old table is dropped, not converted: its rows name no user (they
-- could only ever be replayed to the wrong one) and their stored answers
-- may hold generated passwords in plain text, which must not survive.
DROP TABLE idempotency_keys;

CREATE TABLE idempotency_keys (
    project_id    TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    owner         TEXT NOT NULL,
    lease_until   BIGINT NOT NULL,
    status        BIGINT,
    response      TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (project_id, user_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
