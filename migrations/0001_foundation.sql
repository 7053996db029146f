-- Foundation schema: identity, flavors, keypairs, images, networks, quotas.
--
-- Portable SQL: the same file runs on PostgreSQL and SQLite (see
-- docs/adr/0001-one-store-two-backends.md). Conventions:
--   * ids are TEXT (UUIDs hyphenated, Keystone ids as 32 hex digits);
--   * times are BIGINT microseconds since the Unix epoch;
--   * booleans are INTEGER 0/1;
--   * lists and maps that are only read whole are JSON in TEXT.

CREATE TABLE domains (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL
);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    domain_id   TEXT NOT NULL REFERENCES domains(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    domain_id           TEXT NOT NULL REFERENCES domains(id),
    name                TEXT NOT NULL,
    password_hash       TEXT NOT NULL,
    enabled             INTEGER NOT NULL DEFAULT 1,
    default_project_id  TEXT REFERENCES projects(id) ON DELETE SET NULL,
    email               TEXT,
    created_at          BIGINT NOT NULL,
    UNIQUE (domain_id, name)
);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE role_assignments (
    project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id     TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (project_id, user_id, role_id)
);
CREATE INDEX role_assignments_user ON role_assignments (user_id);

-- Tokens are stored as the SHA-256 of the secret: a stolen database dump
-- holds no usable token.
CREATE TABLE tokens (
    hash        TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id  TEXT REFERENCES projects(id) ON DELETE CASCADE,
    audit_id    TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE flavors (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    vcpus         BIGINT NOT NULL,
    ram_mb        BIGINT NOT NULL,
    disk_gb       BIGINT NOT NULL,
    swap_mb       BIGINT NOT NULL DEFAULT 0,
    ephemeral_gb  BIGINT NOT NULL DEFAULT 0,
    rxtx_factor   DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    is_public     INTEGER NOT NULL DEFAULT 1,
    disabled      INTEGER NOT NULL DEFAULT 0,
    description   TEXT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE flavor_extra_specs (
    flavor_id   TEXT NOT NULL REFERENCES flavors(id) ON DELETE CASCADE,
    spec_key    TEXT NOT NULL,
    spec_value  TEXT NOT NULL,
    PRIMARY KEY (flavor_id, spec_key)
);

CREATE TABLE flavor_projects (
    flavor_id   TEXT NOT NULL REFERENCES flavors(id) ON DELETE CASCADE,
    project_id  TEXT NOT NULL,
    PRIMARY KEY (flavor_id, project_id)
);

CREATE TABLE keypairs (
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    id           BIGINT NOT NULL,
    public_key   TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    key_type     TEXT NOT NULL DEFAULT 'ssh',
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (user_id, name)
);

CREATE TABLE images (
    id                TEXT PRIMARY KEY,
    owner             TEXT NOT NULL,
    name              TEXT,
    status            TEXT NOT NULL,
    disk_format       TEXT,
    container_format  TEXT,
    visibility        TEXT NOT NULL,
    size              BIGINT,
    virtual_size      BIGINT,
    checksum          TEXT,
    os_hash_algo      TEXT,
    os_hash_value     TEXT,
    min_disk          BIGINT NOT NULL DEFAULT 0,
    min_ram           BIGINT NOT NULL DEFAULT 0,
    protected         INTEGER NOT NULL DEFAULT 0,
    os_hidden         INTEGER NOT NULL DEFAULT 0,
    properties        TEXT NOT NULL DEFAULT '{}',
    tags              TEXT NOT NULL DEFAULT '[]',
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX images_owner ON images (owner);
CREATE INDEX images_created ON images (created_at, id);

CREATE TABLE networks (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    admin_state_up  INTEGER NOT NULL DEFAULT 1,
    shared          INTEGER NOT NULL DEFAULT 0,
    external        INTEGER NOT NULL DEFAULT 0,
    mtu             BIGINT NOT NULL DEFAULT 1500,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    revision        BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX networks_project ON networks (project_id);

CREATE TABLE subnets (
    id                TEXT PRIMARY KEY,
    network_id        TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    project_id        TEXT NOT NULL,
    name              TEXT NOT NULL DEFAULT '',
    description       TEXT NOT NULL DEFAULT '',
    cidr              TEXT NOT NULL,
    ip_version        BIGINT NOT NULL DEFAULT 4,
    gateway_ip        TEXT,
    enable_dhcp       INTEGER NOT NULL DEFAULT 1,
    dns_nameservers   TEXT NOT NULL DEFAULT '[]',
    allocation_pools  TEXT NOT NULL DEFAULT '[]',
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    revision          BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX subnets_network ON subnets (network_id);

CREATE TABLE security_groups (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    is_default   INTEGER NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    revision     BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX security_groups_project ON security_groups (project_id);
-- Exactly one default group per project, even under concurrent first use.
CREATE UNIQUE INDEX security_groups_one_default ON security_groups (project_id) WHERE is_default = 1;

CREATE TABLE security_group_rules (
    id                 TEXT PRIMARY KEY,
    security_group_id  TEXT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
    project_id         TEXT NOT NULL,
    direction          TEXT NOT NULL,
    ethertype          TEXT NOT NULL,
    protocol           TEXT,
    port_range_min     BIGINT,
    port_range_max     BIGINT,
    remote_ip_prefix   TEXT,
    remote_group_id    TEXT,
    description        TEXT NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL
);
CREATE INDEX security_group_rules_group ON security_group_rules (security_group_id);

CREATE TABLE ports (
    id              TEXT PRIMARY KEY,
    network_id      TEXT NOT NULL REFERENCES networks(id),
    project_id      TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    mac_address     TEXT NOT NULL UNIQUE,
    device_id       TEXT,
    device_owner    TEXT NOT NULL DEFAULT '',
    admin_state_up  INTEGER NOT NULL DEFAULT 1,
    status          TEXT NOT NULL DEFAULT 'DOWN',
    binding_host    TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    revision        BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX ports_network ON ports (network_id);
CREATE INDEX ports_device ON ports (device_id);

-- IPAM: the primary key is what guarantees that no address is handed out
-- twice, whatever the concurrency.
CREATE TABLE ip_allocations (
    subnet_id   TEXT NOT NULL REFERENCES subnets(id) ON DELETE CASCADE,
    ip_address  TEXT NOT NULL,
    port_id     TEXT NOT NULL REFERENCES ports(id) ON DELETE CASCADE,
    network_id  TEXT NOT NULL,
    PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX ip_allocations_port ON ip_allocations (port_id);

CREATE TABLE port_security_groups (
    port_id            TEXT NOT NULL REFERENCES ports(id) ON DELETE CASCADE,
    security_group_id  TEXT NOT NULL REFERENCES security_groups(id),
    PRIMARY KEY (port_id, security_group_id)
);

-- Per-project overrides of the configured default limits.
CREATE TABLE quota_limits (
    project_id  TEXT NOT NULL,
    resource    TEXT NOT NULL,
    hard_limit  BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource)
);
