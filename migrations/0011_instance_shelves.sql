-- Shelved servers (issue 13, shelve): the snapshot image a shelve uploads
-- and unshelve boots (Nova keeps it as shelved_image_id in the server's
-- system metadata), and when the server was shelved (shelved_at: the
-- periodic offload of servers shelved longer than shelved_offload_time).
-- A row exists from the shelve request until the unshelve (or the delete)
-- removed the image; shelved_at is NULL until the host reported the shelve.

CREATE TABLE instance_shelves (
    instance_id  TEXT PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    image_id     TEXT NOT NULL,
    shelved_at   BIGINT
);
CREATE INDEX instance_shelves_shelved_at ON instance_shelves (shelved_at);
