-- Server locks (issue 13): a locked server refuses actions from non-admins.
-- A row of its own rather than columns of instances: only locked servers
-- have one, and reading a server's lock is needed only when it is acted on.
--
-- locked_by: 'owner' (someone of the server's project took it) or 'admin'
-- (an admin of another project did), as Nova's instances.locked_by.

CREATE TABLE instance_locks (
    instance_id  TEXT PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    locked_by    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    reason       TEXT,
    created_at   BIGINT NOT NULL
);
