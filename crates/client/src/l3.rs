//! Neutron's L3 resources: routers (external gateway, interfaces) and
//! floating IPs (allocation on an external network, association with a
//! port), plus the server-side views a client needs around them (a
//! server's ports, the floating addresses its `addresses` show).
//!
//! Routers and floating IPs are plain [`Kind`]s, so the generic
//! [`Client::get`], [`Client::list`], [`Client::create`],
//! [`Client::delete`] and [`Client::find`] work on them; a floating IP is
//! found by its address or its id.

use crate::error::{Error, Result};
use crate::resource::{Kind, PORT, SERVER, ValueExt, encode_segment};
use crate::session::{Client, Request, Service};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Routers (Neutron).
pub const ROUTER: Kind = Kind {
    label: "router",
    service: Service::Network,
    path: "routers",
    list_path: "routers",
    list_query: &[],
    singular: Some("router"),
    plural: "routers",
    name_key: "name",
    name_filter: Some("name"),
    uuid_ids: true,
};

/// Floating IPs (Neutron): named by their address.
pub const FLOATING_IP: Kind = Kind {
    label: "floating IP",
    service: Service::Network,
    path: "floatingips",
    list_path: "floatingips",
    list_query: &[],
    singular: Some("floatingip"),
    plural: "floatingips",
    name_key: "floating_ip_address",
    name_filter: Some("floating_ip_address"),
    uuid_ids: true,
};

/// The `device_owner` of a router's interface ports.
pub const ROUTER_INTERFACE_OWNER: &str = "network:router_interface";

/// One interface of a router, as `add_router_interface` and
/// `remove_router_interface` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interface<'a> {
    /// The router takes the subnet's gateway address (by subnet id).
    Subnet(&'a str),
    /// The router takes this port (by port id).
    Port(&'a str),
}

impl Interface<'_> {
    fn body(self) -> Value {
        match self {
            Interface::Subnet(id) => json!({ "subnet_id": id }),
            Interface::Port(id) => json!({ "port_id": id }),
        }
    }
}

/// The `external_gateway_info` of a router with a gateway on external
/// network `network_id`, with SNAT on or off.
pub fn gateway_info(network_id: &str, enable_snat: bool) -> Value {
    json!({ "network_id": network_id, "enable_snat": enable_snat })
}

/// The floating addresses a server's `addresses` show
/// (`OS-EXT-IPS:type: floating`), in the order shown.
pub fn floating_addresses(server: &Value) -> Vec<String> {
    server["addresses"]
        .as_object()
        .into_iter()
        .flat_map(|nets| nets.values())
        .flat_map(|addrs| addrs.as_array().into_iter().flatten())
        .filter(|a| a.text("OS-EXT-IPS:type") == "floating")
        .map(|a| a.text("addr").to_owned())
        .collect()
}

impl Client {
    async fn router_put(&self, router_id: &str, verb: &str, body: Value) -> Result<Value> {
        let r = self
            .send(
                Request::new(
                    Method::PUT,
                    Service::Network,
                    format!("routers/{}/{verb}", encode_segment(router_id)),
                )
                .json(body),
            )
            .await?;
        r.json()
    }

    /// Attaches a subnet or port to router `router_id`; returns Neutron's
    /// answer (`port_id`, `subnet_id`, `network_id`, ...).
    pub async fn add_router_interface(&self, router_id: &str, to: Interface<'_>) -> Result<Value> {
        self.router_put(router_id, "add_router_interface", to.body())
            .await
    }

    /// Detaches a subnet or port from router `router_id` (its interface
    /// port goes); returns Neutron's answer.
    pub async fn remove_router_interface(
        &self,
        router_id: &str,
        from: Interface<'_>,
    ) -> Result<Value> {
        self.router_put(router_id, "remove_router_interface", from.body())
            .await
    }

    /// The interface ports of router `router_id` (its gateway port is not
    /// one).
    pub async fn router_interfaces(&self, router_id: &str) -> Result<Vec<Value>> {
        self.list(
            PORT,
            &[
                ("device_id", router_id),
                ("device_owner", ROUTER_INTERFACE_OWNER),
            ],
        )
        .await
    }

    /// The interface port of router `router_id` on subnet `subnet_id`, if
    /// it has one.
    pub async fn router_interface_on(
        &self,
        router_id: &str,
        subnet_id: &str,
    ) -> Result<Option<Value>> {
        Ok(self
            .router_interfaces(router_id)
            .await?
            .into_iter()
            .find(|p| {
                p["fixed_ips"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|f| f.text("subnet_id") == subnet_id)
            }))
    }

    /// Sets (`Some`, see [`gateway_info`]) or removes (`None`) the external
    /// gateway of router `router_id`; returns the router.
    pub async fn set_router_gateway(
        &self,
        router_id: &str,
        gateway: Option<Value>,
    ) -> Result<Value> {
        let info = gateway.unwrap_or(Value::Null);
        self.update(
            ROUTER,
            router_id,
            json!({"router": {"external_gateway_info": info}}),
        )
        .await
    }

    /// The ports of server `server_id`, oldest first (its first NIC first).
    pub async fn server_ports(&self, server_id: &str) -> Result<Vec<Value>> {
        self.list(PORT, &[("device_id", server_id)]).await
    }

    /// Associates floating IP `fip_id` with port `port_id` (at its fixed
    /// address `fixed_ip`, or its first one); returns the floating IP.
    pub async fn associate_floating_ip(
        &self,
        fip_id: &str,
        port_id: &str,
        fixed_ip: Option<&str>,
    ) -> Result<Value> {
        let mut body = json!({ "port_id": port_id });
        if let Some(ip) = fixed_ip {
            body["fixed_ip_address"] = json!(ip);
        }
        self.update(FLOATING_IP, fip_id, json!({ "floatingip": body }))
            .await
    }

    /// Disassociates floating IP `fip_id` (it stays the project's);
    /// returns the floating IP.
    pub async fn disassociate_floating_ip(&self, fip_id: &str) -> Result<Value> {
        self.update(
            FLOATING_IP,
            fip_id,
            json!({"floatingip": {"port_id": null}}),
        )
        .await
    }

    /// The port of server `server_id` a floating IP goes to: the one
    /// holding `fixed_ip` when given, else its first port.
    pub async fn server_port_for(&self, server_id: &str, fixed_ip: Option<&str>) -> Result<Value> {
        let ports = self.server_ports(server_id).await?;
        let found = match fixed_ip {
            Some(ip) => ports.into_iter().find(|p| {
                p["fixed_ips"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|f| f.text("ip_address") == ip)
            }),
            None => ports.into_iter().next(),
        };
        found.ok_or_else(|| {
            Error::Invalid(match fixed_ip {
                Some(ip) => format!("server {server_id} has no port with fixed IP {ip}"),
                None => format!("server {server_id} has no port"),
            })
        })
    }

    /// Polls server `server_id` every `interval` until its `addresses` show
    /// floating address `address`; the server then, `None` if `timeout`
    /// passed first.
    pub async fn wait_for_floating_address(
        &self,
        server_id: &str,
        address: &str,
        interval: Duration,
        timeout: Duration,
    ) -> Result<Option<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.get(SERVER, server_id).await?;
            if floating_addresses(&s).iter().any(|a| a == address) {
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floating_addresses_of_a_server() {
        let s = json!({"addresses": {"web": [
            {"addr": "10.0.0.3", "OS-EXT-IPS:type": "fixed"},
            {"addr": "203.0.113.3", "OS-EXT-IPS:type": "floating"},
        ], "db": [{"addr": "10.1.0.3", "OS-EXT-IPS:type": "fixed"}]}});
        assert_eq!(floating_addresses(&s), ["203.0.113.3"]);
        assert!(floating_addresses(&json!({})).is_empty());
        assert_eq!(Interface::Subnet("s").body(), json!({"subnet_id": "s"}));
        assert_eq!(
            gateway_info("n", false),
            json!({"network_id": "n", "enable_snat": false})
        );
    }
}
