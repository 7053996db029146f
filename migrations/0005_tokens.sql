-- A token issued from another token (Keystone's "token" auth method)
-- records its parent: it keeps the parent's expiry and is revoked with it
-- (issue 16, finding 6). NULL for tokens issued from a password. No
-- foreign key: a child never outlives its parent's expiry, so the purge of
-- expired tokens removes both.
ALTER TABLE tokens ADD COLUMN parent_hash TEXT;
CREATE INDEX tokens_parent_hash ON tokens (parent_hash);
