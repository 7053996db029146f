-- Servers and the control plane: instances and their actions, server
-- groups, placement (providers, inventories, allocations, pinned CPUs),
-- compute nodes and services, persisted workflows, quota usage and
-- idempotency keys. Same conventions as 0001 (portable SQL).

CREATE TABLE instances (
    id                  TEXT PRIMARY KEY,
    project_id          TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    name                TEXT NOT NULL,
    hostname            TEXT NOT NULL,
    vm_state            TEXT NOT NULL,
    task_state          TEXT,
    power_state         BIGINT NOT NULL DEFAULT 0,
    host                TEXT,
    node                TEXT,
    availability_zone   TEXT NOT NULL,
    flavor_id           TEXT NOT NULL,
    flavor              TEXT NOT NULL,
    vcpus               BIGINT NOT NULL,
    memory_mb           BIGINT NOT NULL,
    root_gb             BIGINT NOT NULL,
    image_id            TEXT NOT NULL,
    key_name            TEXT,
    key_data            TEXT,
    user_data           TEXT,
    metadata            TEXT NOT NULL DEFAULT '{}',
    tags                TEXT NOT NULL DEFAULT '[]',
    access_ipv4         TEXT NOT NULL DEFAULT '',
    access_ipv6         TEXT NOT NULL DEFAULT '',
    config_drive        TEXT NOT NULL DEFAULT '',
    launch_index        BIGINT NOT NULL DEFAULT 0,
    reservation_id      TEXT NOT NULL,
    server_group_id     TEXT,
    requested_networks  TEXT NOT NULL DEFAULT '[]',
    security_groups     TEXT NOT NULL DEFAULT '[]',
    numa_placement      TEXT,
    fault               TEXT,
    progress            BIGINT NOT NULL DEFAULT 0,
    -- Generation of the last state report applied (compute agents count up).
    state_gen           BIGINT NOT NULL DEFAULT 0,
    -- When the current task_state times out (the reconciler acts then).
    task_deadline       BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    launched_at         BIGINT,
    terminated_at       BIGINT,
    deleted_at          BIGINT
);
CREATE INDEX instances_project_created ON instances (project_id, created_at);
CREATE INDEX instances_created ON instances (created_at, id);
CREATE INDEX instances_host ON instances (host);
CREATE INDEX instances_task_deadline ON instances (task_deadline);

CREATE TABLE instance_actions (
    id           TEXT PRIMARY KEY,
    instance_id  TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    action       TEXT NOT NULL,
    project_id   TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    start_time   BIGINT NOT NULL,
    finish_time  BIGINT,
    message      TEXT
);
CREATE INDEX instance_actions_instance ON instance_actions (instance_id, start_time);

CREATE TABLE instance_action_events (
    id           TEXT PRIMARY KEY,
    action_id    TEXT NOT NULL REFERENCES instance_actions(id) ON DELETE CASCADE,
    event        TEXT NOT NULL,
    host         TEXT,
    start_time   BIGINT NOT NULL,
    finish_time  BIGINT,
    result       TEXT,
    details      TEXT
);
CREATE INDEX instance_action_events_action ON instance_action_events (action_id, start_time);

CREATE TABLE server_groups (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    name        TEXT NOT NULL,
    policy      TEXT NOT NULL,
    rules       TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL
);
CREATE INDEX server_groups_project ON server_groups (project_id);

CREATE TABLE server_group_members (
    group_id     TEXT NOT NULL REFERENCES server_groups(id) ON DELETE CASCADE,
    instance_id  TEXT NOT NULL,
    PRIMARY KEY (group_id, instance_id)
);
CREATE INDEX server_group_members_instance ON server_group_members (instance_id);

-- Placement. A provider per compute node; its generation is bumped by
-- every allocation change, which is what makes claims atomic.
CREATE TABLE resource_providers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    generation  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE inventories (
    provider_id       TEXT NOT NULL REFERENCES resource_providers(id) ON DELETE CASCADE,
    resource_class    TEXT NOT NULL,
    total             BIGINT NOT NULL,
    reserved          BIGINT NOT NULL DEFAULT 0,
    allocation_ratio  DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    -- Sum of the allocations against this inventory, maintained by every
    -- claim and release in the same transaction, so that checking capacity
    -- and prefiltering hosts never needs to aggregate allocations.
    used              BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (provider_id, resource_class)
);

CREATE TABLE allocations (
    provider_id     TEXT NOT NULL REFERENCES resource_providers(id) ON DELETE CASCADE,
    consumer_id     TEXT NOT NULL,
    resource_class  TEXT NOT NULL,
    used            BIGINT NOT NULL,
    PRIMARY KEY (provider_id, consumer_id, resource_class)
);
CREATE INDEX allocations_consumer ON allocations (consumer_id);

-- A pinned host CPU belongs to one instance: the primary key makes sharing
-- impossible whatever the schedulers do.
CREATE TABLE cpu_pins (
    provider_id  TEXT NOT NULL REFERENCES resource_providers(id) ON DELETE CASCADE,
    cpu          BIGINT NOT NULL,
    consumer_id  TEXT NOT NULL,
    PRIMARY KEY (provider_id, cpu)
);
CREATE INDEX cpu_pins_consumer ON cpu_pins (consumer_id);

-- Huge pages used per NUMA cell and page size.
CREATE TABLE hugepage_allocations (
    provider_id  TEXT NOT NULL REFERENCES resource_providers(id) ON DELETE CASCADE,
    consumer_id  TEXT NOT NULL,
    cell         BIGINT NOT NULL,
    page_kb      BIGINT NOT NULL,
    pages        BIGINT NOT NULL,
    PRIMARY KEY (provider_id, consumer_id, cell, page_kb)
);

-- What each compute host reported about itself.
CREATE TABLE compute_nodes (
    host                TEXT PRIMARY KEY,
    provider_id         TEXT NOT NULL REFERENCES resource_providers(id),
    hypervisor_type     TEXT NOT NULL,
    hypervisor_version  BIGINT NOT NULL DEFAULT 0,
    cpu_arch            TEXT NOT NULL,
    vcpus               BIGINT NOT NULL,
    memory_mb           BIGINT NOT NULL,
    disk_gb             BIGINT NOT NULL,
    numa_topology       TEXT NOT NULL DEFAULT '[]',
    availability_zone   TEXT NOT NULL DEFAULT 'nova',
    host_ip             TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE services (
    id               BIGINT PRIMARY KEY,
    uuid             TEXT NOT NULL UNIQUE,
    host             TEXT NOT NULL,
    binary_name      TEXT NOT NULL,
    disabled         INTEGER NOT NULL DEFAULT 0,
    disabled_reason  TEXT,
    forced_down      INTEGER NOT NULL DEFAULT 0,
    last_seen_up     BIGINT,
    report_count     BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (host, binary_name)
);

-- Build hosts that failed recently (for the build-failure weigher).
CREATE TABLE host_failures (
    host         TEXT NOT NULL,
    instance_id  TEXT NOT NULL,
    failed_at    BIGINT NOT NULL,
    PRIMARY KEY (host, instance_id)
);

-- A multi-step operation owned by a conductor; another conductor takes it
-- over when the lease expires.
CREATE TABLE workflows (
    id            TEXT PRIMARY KEY,
    instance_id   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    step          TEXT NOT NULL,
    data          TEXT NOT NULL DEFAULT '{}',
    owner         TEXT,
    lease_until   BIGINT NOT NULL DEFAULT 0,
    attempts      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    finished_at   BIGINT
);
CREATE INDEX workflows_open ON workflows (finished_at, lease_until);
CREATE INDEX workflows_instance ON workflows (instance_id);

-- Quota usage counters, changed only by conditional updates so that
-- concurrent creates can never exceed a limit.
CREATE TABLE quota_usages (
    project_id  TEXT NOT NULL,
    resource    TEXT NOT NULL,
    in_use      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, resource)
);

CREATE TABLE idempotency_keys (
    project_id    TEXT NOT NULL,
    idem_key      TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status        BIGINT,
    response      TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (project_id, idem_key)
);
