-- Conductors announce that they are alive (ADR 0009), so that another
-- conductor takes over a dead one's workflows at once instead of waiting
-- for their leases to run out (issue 16, fault survival).
--
-- alive_until: the last heartbeat plus the conductor's liveness timeout
-- (each conductor writes its own); 0 once it stopped cleanly.
-- session: on PostgreSQL, the server process id of the connection that
-- writes the heartbeat. That connection lives as long as the conductor: a
-- conductor that is killed loses it at once, and a session no longer in
-- pg_stat_activity means a dead conductor without waiting for alive_until.
-- NULL on SQLite.
CREATE TABLE conductors (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    session       BIGINT,
    started_at    BIGINT NOT NULL,
    alive_until   BIGINT NOT NULL
);
