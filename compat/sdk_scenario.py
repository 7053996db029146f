"""openstacksdk scenario for the compatibility tests (compat/).

Connects through clouds.yaml (OS_CLIENT_CONFIG_FILE / OS_CLOUD), creates a
network, a subnet, a keypair and a server, waits for the server to become
ACTIVE, lists servers, deletes everything and waits for the server to be
gone. Prints one JSON object with what it saw, which the Rust test asserts
on; any SDK exception fails the script (non-zero exit, traceback on stderr).

Usage: python sdk_scenario.py IMAGE FLAVOR PREFIX
"""

import json
import sys

import openstack


def main() -> None:
    image_name, flavor_name, prefix = sys.argv[1:4]
    conn = openstack.connect()
    seen = {"compute_version": None}

    net = conn.network.create_network(name=f"{prefix}-net")
    subnet = conn.network.create_subnet(
        name=f"{prefix}-subnet",
        network_id=net.id,
        ip_version=4,
        cidr="10.77.0.0/24",
    )
    keypair = conn.compute.create_keypair(name=f"{prefix}-key")
    image = conn.image.find_image(image_name, ignore_missing=False)
    flavor = conn.compute.find_flavor(flavor_name, ignore_missing=False)

    server = conn.compute.create_server(
        name=f"{prefix}-vm",
        image_id=image.id,
        flavor_id=flavor.id,
        networks=[{"uuid": net.id}],
        key_name=keypair.name,
    )
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=120, interval=1)
    seen["server"] = {
        "id": server.id,
        "name": server.name,
        "status": server.status,
        "key_name": server.key_name,
        "addresses": server.addresses,
    }
    seen["listed"] = sorted(s.name for s in conn.compute.servers())
    seen["subnet"] = {"cidr": subnet.cidr, "gateway_ip": subnet.gateway_ip}
    seen["keypair"] = {"name": keypair.name, "has_private_key": bool(keypair.private_key)}
    # What microversion the SDK negotiated for compute (None: no header).
    seen["compute_version"] = conn.compute.get_endpoint_data().max_microversion

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=120, interval=1)
    seen["after_delete"] = sorted(s.name for s in conn.compute.servers())
    conn.compute.delete_keypair(keypair)
    conn.network.delete_subnet(subnet)
    conn.network.delete_network(net)
    seen["networks_left"] = [n.name for n in conn.network.networks(name=f"{prefix}-net")]
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
