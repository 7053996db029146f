-- Layer 3: which hosts run routers (the network role).
ALTER TABLE compute_nodes ADD COLUMN network_node INTEGER NOT NULL DEFAULT 0;
