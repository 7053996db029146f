-- The host data plane: segments of networks, port security, allowed
-- address pairs, host routes. Runs on PostgreSQL and SQLite alike.

-- A network's segment. physical_network is '' (not NULL) for VXLAN so the
-- unique index below covers it: NULLs never collide in a unique index.
-- A flat network records segmentation_id 0, so a physical network holds
-- at most one flat network (as in Neutron); the API shows it as null.
ALTER TABLE networks ADD COLUMN network_type TEXT NOT NULL DEFAULT 'vxlan';
ALTER TABLE networks ADD COLUMN physical_network TEXT NOT NULL DEFAULT '';
ALTER TABLE networks ADD COLUMN segmentation_id BIGINT;
ALTER TABLE networks ADD COLUMN port_security_enabled INTEGER NOT NULL DEFAULT 1;

-- Networks made before segments existed become VXLAN networks with VNIs
-- 1..N in creation order, and an MTU that fits the overlay.
UPDATE networks SET segmentation_id = (
    SELECT COUNT(*) FROM networks n2
    WHERE n2.created_at < networks.created_at
       OR (n2.created_at = networks.created_at AND n2.id <= networks.id)
);
UPDATE networks SET mtu = 1450 WHERE mtu > 1450;

-- Never two networks on one segment, whatever the concurrency: the VNI
-- allocator inserts the lowest free id and retries on a conflict here.
CREATE UNIQUE INDEX networks_segment
    ON networks (network_type, physical_network, segmentation_id);

ALTER TABLE ports ADD COLUMN port_security_enabled INTEGER NOT NULL DEFAULT 1;
-- JSON list of {"ip_address": CIDR, "mac_address": MAC}.
ALTER TABLE ports ADD COLUMN allowed_address_pairs TEXT NOT NULL DEFAULT '[]';
CREATE INDEX ports_binding_host ON ports (binding_host);

-- JSON list of {"destination": CIDR, "nexthop": IP}.
ALTER TABLE subnets ADD COLUMN host_routes TEXT NOT NULL DEFAULT '[]';

CREATE INDEX port_security_groups_group ON port_security_groups (security_group_id);
CREATE INDEX security_group_rules_remote ON security_group_rules (remote_group_id);
