"""openstacksdk scenario for the compatibility tests (compat/).

Connects through clouds.yaml (OS_CLIENT_CONFIG_FILE / OS_CLOUD), uploads an
image, creates a network, a subnet, a keypair and a server, waits for the
server to become ACTIVE, lists servers, tries a server with an unknown
flavor (the API's message is recorded), then deletes everything and waits
for the server to be gone. Prints one JSON object with what it saw, which
the Rust test asserts on; any unexpected SDK exception fails the script
(non-zero exit, traceback on stderr).

Usage: python sdk_scenario.py PREFIX IMAGE_FILE
"""

import json
import sys

import openstack
from openstack import exceptions


def main() -> None:
    prefix, image_file = sys.argv[1:3]
    conn = openstack.connect()
    seen = {}

    image = conn.image.create_image(
        name=f"{prefix}-image",
        filename=image_file,
        disk_format="qcow2",
        container_format="bare",
        wait=True,
    )
    image = conn.image.get_image(image.id)
    seen["image"] = {"status": image.status, "size": image.size}
    net = conn.network.create_network(name=f"{prefix}-net")
    subnet = conn.network.create_subnet(
        name=f"{prefix}-subnet",
        network_id=net.id,
        ip_version=4,
        cidr="10.77.0.0/24",
    )
    seen["subnet"] = {"cidr": subnet.cidr, "gateway_ip": subnet.gateway_ip}
    keypair = conn.compute.create_keypair(name=f"{prefix}-key")
    seen["keypair"] = {
        "name": keypair.name,
        "has_private_key": bool(keypair.private_key),
        "fingerprint": keypair.fingerprint,
    }
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)

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
        "flavor_id": server.flavor.id,
        "image_id": server.image.id,
    }
    seen["listed"] = sorted(s.name for s in conn.compute.servers())
    # The microversion the SDK negotiated from the version document.
    seen["compute_microversion"] = list(
        conn.compute.get_endpoint_data().max_microversion or ()
    )

    try:
        conn.compute.create_server(
            name=f"{prefix}-bad",
            image_id=image.id,
            flavor_id="no-such-flavor",
            networks=[{"uuid": net.id}],
        )
        seen["unknown_flavor"] = None
    except exceptions.HttpException as e:
        seen["unknown_flavor"] = {"status": e.status_code, "message": str(e)}

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=120, interval=1)
    seen["after_delete"] = sorted(s.name for s in conn.compute.servers())
    conn.compute.delete_keypair(keypair)
    conn.network.delete_subnet(subnet)
    conn.network.delete_network(net)
    conn.image.delete_image(image)
    seen["networks_left"] = [n.name for n in conn.network.networks(name=f"{prefix}-net")]
    seen["images_left"] = [i.name for i in conn.image.images(name=f"{prefix}-image")]
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
