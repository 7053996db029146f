-- Layer 3: which hosts run routers (the network role).
ALTER TABLE compute_nodes ADD COLUMN network_node INTEGER NOT NULL DEFAULT 0;

-- Routers. Their interfaces and gateway are ports (device_owner
-- 'network:router_interface' / 'network:router_gateway', device_id = the
-- router's id) bound to the router's host; the gateway's external network
-- is its port's network. host: the network node running the router (NULL
-- while none was available). routes: JSON list of {"destination": CIDR,
-- "nexthop": IP} (the extraroute extension).
CREATE TABLE routers (
    id              TEXT PRIMARY KEY,
    project_id      TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    admin_state_up  INTEGER NOT NULL DEFAULT 1,
    status          TEXT NOT NULL DEFAULT 'ACTIVE',
    gw_port_id      TEXT REFERENCES ports(id) ON DELETE SET NULL,
    enable_snat     INTEGER NOT NULL DEFAULT 1,
    routes          TEXT NOT NULL DEFAULT '[]',
    host            TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    revision        BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX routers_project ON routers (project_id);
CREATE INDEX routers_host ON routers (host);

-- Floating IPs. The address is held by a port of the external network
-- ('network:floatingip', device_id = the floating IP's id, unbound).
-- The association (port_id, fixed_subnet_id, fixed_ip_address, router_id)
-- goes away by itself with the associated port: deleting a port deletes
-- its address allocations, which nulls the fixed address here, and nulls
-- port_id; readers treat a floating IP without port_id as disassociated.
CREATE TABLE floatingips (
    id                   TEXT PRIMARY KEY,
    project_id           TEXT NOT NULL,
    floating_network_id  TEXT NOT NULL REFERENCES networks(id),
    floating_ip_address  TEXT NOT NULL,
    floating_port_id     TEXT NOT NULL REFERENCES ports(id) ON DELETE CASCADE,
    port_id              TEXT REFERENCES ports(id) ON DELETE SET NULL,
    fixed_subnet_id      TEXT,
    fixed_ip_address     TEXT,
    router_id            TEXT REFERENCES routers(id),
    status               TEXT NOT NULL DEFAULT 'DOWN',
    description          TEXT NOT NULL DEFAULT '',
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    revision             BIGINT NOT NULL DEFAULT 1,
    FOREIGN KEY (fixed_subnet_id, fixed_ip_address)
        REFERENCES ip_allocations (subnet_id, ip_address) ON DELETE SET NULL
);
CREATE INDEX floatingips_project ON floatingips (project_id);
CREATE INDEX floatingips_router ON floatingips (router_id);
CREATE UNIQUE INDEX floatingips_address ON floatingips (floating_network_id, floating_ip_address);
-- A fixed IP has at most one floating IP, whatever the concurrency (NULLs,
-- the disassociated ones, never collide).
CREATE UNIQUE INDEX floatingips_fixed ON floatingips (port_id, fixed_ip_address);
