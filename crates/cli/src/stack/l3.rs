//! Routers, their interfaces and floating IPs in a stack.
//!
//! ```yaml
//! routers:
//!   - {name: edge, external_network: public, interfaces: [app-v4]}
//! floating_ips:
//!   - {server: web-1, network: public}
//! ```
//!
//! A router is one resource (its gateway and SNAT change in place); each
//! of its interfaces is another (`router_interface edge/app-v4`, recorded
//! by the id of its port), so adding or removing a subnet from the list
//! touches that interface only. A floating IP is named by its server
//! (or `name`), created associated with the server's first port once the
//! server is ACTIVE, and keeps its address when the server is replaced:
//! it is re-associated in place.
//!
//! Order: routers after subnets, interfaces after routers, servers after
//! interfaces, floating IPs last; deletion in reverse (floating IPs first,
//! interfaces before their router and subnet).

use crate::app::App;
use crate::exit::{CliError, CliResult};
use crate::stack::file::StackFile;
use crate::stack::ops::resolve;
use crate::stack::spec::{Addr, Desired, Ref, ResKind};
use crate::stack::state::{Entry, Pending, State};
use cloud_client::{FLOATING_IP, Interface, PORT, ROUTER, ValueExt, gateway_info};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The routers, interfaces and floating IPs `f` declares. `names` holds
/// every `(kind, name)` the file declares, to tell the stack's own
/// resources from existing ones.
pub fn build(f: &StackFile, names: &BTreeSet<(ResKind, String)>) -> CliResult<Vec<Desired>> {
    let local = |kind: ResKind, name: &str, hard: bool| -> Option<Ref> {
        names.contains(&(kind, name.to_owned())).then(|| Ref {
            to: Addr::new(kind, name),
            hard,
        })
    };
    let mut out = Vec::new();
    for r in &f.routers {
        let refs = r
            .external_network
            .as_deref()
            .and_then(|n| local(ResKind::Network, n, true))
            .into_iter()
            .collect();
        out.push(Desired {
            addr: Addr::new(ResKind::Router, &r.name),
            inputs: json!({
                "external_network": r.external_network,
                "enable_snat": r.enable_snat,
                "description": r.description,
            }),
            refs,
        });
        for subnet in &r.interfaces {
            let mut refs = vec![Ref {
                to: Addr::new(ResKind::Router, &r.name),
                hard: true,
            }];
            refs.extend(local(ResKind::Subnet, subnet, true));
            out.push(Desired {
                addr: Addr::new(ResKind::RouterInterface, &format!("{}/{subnet}", r.name)),
                inputs: json!({"router": r.name, "subnet": subnet}),
                refs,
            });
        }
    }
    for fip in &f.floating_ips {
        let name = fip.name.as_deref().unwrap_or(&fip.server);
        // A replaced server keeps its floating IP (re-associated): the
        // reference is soft.
        let mut refs: Vec<Ref> = local(ResKind::Server, &fip.server, false)
            .into_iter()
            .collect();
        refs.extend(local(ResKind::Network, &fip.network, true));
        out.push(Desired {
            addr: Addr::new(ResKind::FloatingIp, name),
            inputs: json!({"server": fip.server, "network": fip.network}),
            refs,
        });
    }
    Ok(out)
}

/// What an L3 resource refers to, for the checks that the file still
/// declares what its resources use: `(kind, name)` pairs.
pub fn uses(d: &Desired) -> Vec<Addr> {
    let i = &d.inputs;
    let mut used = Vec::new();
    match d.addr.kind {
        ResKind::Router => {
            if let Some(n) = i["external_network"].as_str() {
                used.push(Addr::new(ResKind::Network, n));
            }
        }
        ResKind::RouterInterface => {
            used.push(Addr::new(ResKind::Subnet, i.text("subnet")));
        }
        ResKind::FloatingIp => {
            used.push(Addr::new(ResKind::Server, i.text("server")));
            used.push(Addr::new(ResKind::Network, i.text("network")));
        }
        _ => {}
    }
    used
}

/// The gateway of a router's inputs, its external network resolved.
async fn gateway(app: &App, state: &State, i: &Value) -> CliResult<Value> {
    Ok(match i["external_network"].as_str() {
        Some(n) => {
            let net = resolve(app, state, ResKind::Network, n).await?;
            gateway_info(&net, i["enable_snat"].as_bool().unwrap_or(true))
        }
        None => Value::Null,
    })
}

/// The create request of an L3 resource. Router interfaces are no API
/// resource: theirs is `{router_id, subnet_id}`, which [`send_create`]
/// turns into `add_router_interface`.
pub async fn create_body(app: &App, state: &State, d: &Desired) -> CliResult<Value> {
    let i = &d.inputs;
    Ok(match d.addr.kind {
        ResKind::Router => {
            let mut r = json!({"name": d.addr.name, "description": i["description"]});
            let gw = gateway(app, state, i).await?;
            if !gw.is_null() {
                r["external_gateway_info"] = gw;
            }
            json!({ "router": r })
        }
        ResKind::RouterInterface => json!({
            "router_id": resolve(app, state, ResKind::Router, i.text("router")).await?,
            "subnet_id": resolve(app, state, ResKind::Subnet, i.text("subnet")).await?,
        }),
        ResKind::FloatingIp => {
            let net = resolve(app, state, ResKind::Network, i.text("network")).await?;
            let port = server_port(app, state, i.text("server")).await?;
            json!({"floatingip": {"floating_network_id": net, "port_id": port}})
        }
        other => {
            return Err(CliError::failure(format!(
                "internal: {} is no L3 resource",
                other.label()
            )));
        }
    })
}

/// The id of the first port of the stack's (or an existing) server `name`.
async fn server_port(app: &App, state: &State, name: &str) -> CliResult<String> {
    let server = resolve(app, state, ResKind::Server, name).await?;
    let port = app
        .client
        .server_port_for(&server, None)
        .await
        .map_err(|e| {
            let c = CliError::from(e);
            CliError::new(c.code, format!("server {name}: {}", c.message))
        })?;
    Ok(port.id_str())
}

/// Sends the create of an L3 resource with its idempotency key. A router
/// interface is attached unless the router already has one on the subnet
/// (an interrupted apply attached it): the answer is `{"id": port}`.
pub async fn send_create(
    app: &App,
    kind: ResKind,
    body: Value,
    key: &str,
) -> cloud_client::Result<Value> {
    match kind {
        ResKind::RouterInterface => {
            let (router, subnet) = (body.text("router_id"), body.text("subnet_id"));
            if let Some(p) = app.client.router_interface_on(router, subnet).await? {
                return Ok(json!({ "id": p.id_str() }));
            }
            let answer = app
                .client
                .add_router_interface(router, Interface::Subnet(subnet))
                .await?;
            Ok(json!({ "id": answer.text("port_id") }))
        }
        ResKind::Router => app.client.create(ROUTER, body, Some(key)).await,
        _ => app.client.create(FLOATING_IP, body, Some(key)).await,
    }
}

/// The id of what a pending create made, when its idempotency key can no
/// longer be trusted: found by what it was made for. "" if nothing.
pub async fn find_made(app: &App, e: &Entry, p: &Pending) -> CliResult<String> {
    let found = match e.kind {
        ResKind::RouterInterface => app
            .client
            .router_interface_on(p.body.text("router_id"), p.body.text("subnet_id"))
            .await?
            .map(|v| v.id_str()),
        ResKind::FloatingIp => {
            let port = p.body["floatingip"].text("port_id");
            app.client
                .list(FLOATING_IP, &[("port_id", port)])
                .await?
                .first()
                .map(ValueExt::id_str)
        }
        _ => match app.client.find(ROUTER, &e.name).await {
            Ok(v) => Some(v.id_str()),
            Err(err) if err.is_not_found() => None,
            Err(err) => return Err(err.into()),
        },
    };
    Ok(found.unwrap_or_default())
}

/// Applies in place what changed of an L3 resource since `entry` was
/// recorded: a router's gateway or description, a floating IP's server
/// (re-associated with its first port, also when that server was
/// replaced or the association was lost).
pub async fn update(app: &App, state: &State, entry: &Entry, d: &Desired) -> CliResult {
    let (old, new) = (&entry.inputs, &d.inputs);
    match d.addr.kind {
        ResKind::Router => {
            let mut r = serde_json::Map::new();
            if old["description"] != new["description"] {
                r.insert("description".into(), new["description"].clone());
            }
            if old["external_network"] != new["external_network"]
                || old["enable_snat"] != new["enable_snat"]
            {
                r.insert(
                    "external_gateway_info".into(),
                    gateway(app, state, new).await?,
                );
            }
            if !r.is_empty() {
                app.client
                    .update(ROUTER, &entry.id, json!({ "router": r }))
                    .await?;
            }
        }
        ResKind::FloatingIp => {
            let port = server_port(app, state, new.text("server")).await?;
            app.client
                .associate_floating_ip(&entry.id, &port, None)
                .await?;
        }
        other => {
            return Err(CliError::failure(format!(
                "internal: {} cannot be updated in place",
                other.label()
            )));
        }
    }
    Ok(())
}

/// Removes a recorded router interface: its port names the router.
/// Already gone counts as removed.
pub async fn delete_interface(app: &App, port_id: &str) -> CliResult {
    let port = match app.client.get(PORT, port_id).await {
        Ok(p) => p,
        Err(e) if e.status() == Some(404) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let router = port.text("device_id");
    if router.is_empty() {
        return Ok(());
    }
    match app
        .client
        .remove_router_interface(router, Interface::Port(port_id))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.status() == Some(404) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Checks that the existing network `name` a stack takes floating IPs or
/// a gateway from is external.
pub async fn check_external_network(app: &App, name: &str) -> CliResult {
    crate::commands::floating_ips::external_network(app, name)
        .await
        .map(|_| ())
}
