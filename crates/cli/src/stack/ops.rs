//! The cloud side of a stack: reading what exists (refresh), turning a
//! desired resource into its create request, updating and deleting.

use crate::app::App;
use crate::exit::{CliError, CliResult};
use crate::stack::l3;
use crate::stack::plan::Live;
use crate::stack::spec::{Desired, ResKind, Stack};
use crate::stack::state::{Entry, Pending, State};
use base64::Engine;
use cloud_client::{
    FLAVOR, FLOATING_IP, IMAGE, KEYPAIR, Kind, NETWORK, PORT, ROUTER, SECURITY_GROUP,
    SECURITY_GROUP_RULE, SERVER, SERVER_GROUP, SUBNET, ValueExt,
};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The API collection of a stack kind.
pub fn kind_of(k: ResKind) -> Kind {
    match k {
        ResKind::Keypair => KEYPAIR,
        ResKind::ServerGroup => SERVER_GROUP,
        ResKind::SecurityGroup => SECURITY_GROUP,
        ResKind::SecurityGroupRule => SECURITY_GROUP_RULE,
        ResKind::Network => NETWORK,
        ResKind::Subnet => SUBNET,
        ResKind::Router => ROUTER,
        ResKind::RouterInterface => PORT,
        ResKind::Server => SERVER,
        ResKind::FloatingIp => FLOATING_IP,
    }
}

/// Looks at every recorded resource: gone, or there (with servers'
/// status).
pub async fn refresh(app: &App, state: &State) -> CliResult<BTreeMap<String, Live>> {
    let mut live = BTreeMap::new();
    for (key, e) in &state.resources {
        if e.pending.is_some() || e.id.is_empty() {
            continue;
        }
        let seen = match app.client.get(kind_of(e.kind), &e.id).await {
            Ok(v) => Live::Present(v["status"].as_str().map(str::to_owned)),
            Err(err) if err.status() == Some(404) => Live::Missing,
            Err(err) => return Err(err.into()),
        };
        live.insert(key.clone(), seen);
    }
    Ok(live)
}

/// Checks that what the file takes from the cloud exists (flavors,
/// images, resources it does not declare), so a plan fails early and
/// clearly rather than half way through an apply.
pub async fn check_external(app: &App, stack: &Stack) -> CliResult {
    let declared = |k: ResKind, n: &str| {
        stack
            .resources
            .iter()
            .any(|d| d.addr.kind == k && d.addr.name == n)
    };
    let mut seen = std::collections::BTreeSet::new();
    for d in stack
        .resources
        .iter()
        .filter(|d| d.addr.kind == ResKind::Server)
    {
        let i = &d.inputs;
        let mut wanted: Vec<(Kind, String)> = vec![
            (FLAVOR, i.text("flavor").to_owned()),
            (IMAGE, i.text("image").to_owned()),
        ];
        for n in i["networks"].as_array().into_iter().flatten() {
            wanted.push((NETWORK, n.text("network").to_owned()));
        }
        for g in i["security_groups"].as_array().into_iter().flatten() {
            wanted.push((SECURITY_GROUP, g.as_str().unwrap_or("").to_owned()));
        }
        if let Some(g) = i["server_group"].as_str() {
            wanted.push((SERVER_GROUP, g.to_owned()));
        }
        if let Some(k) = i["key_name"].as_str() {
            wanted.push((KEYPAIR, k.to_owned()));
        }
        for (kind, name) in wanted {
            let local = [
                (NETWORK, ResKind::Network),
                (SECURITY_GROUP, ResKind::SecurityGroup),
                (SERVER_GROUP, ResKind::ServerGroup),
                (KEYPAIR, ResKind::Keypair),
            ]
            .iter()
            .any(|(k, rk)| *k == kind && declared(*rk, &name));
            if local || !seen.insert((kind.label, name.clone())) {
                continue;
            }
            app.client.find(kind, &name).await.map_err(|e| {
                let c = CliError::from(e);
                CliError::new(c.code, format!("{}: {}", d.addr, c.message))
            })?;
        }
    }
    for d in &stack.resources {
        for used in l3::uses(d) {
            if declared(used.kind, &used.name)
                || !seen.insert((used.kind.label(), used.name.clone()))
            {
                continue;
            }
            let named = |e: CliError| CliError::new(e.code, format!("{}: {}", d.addr, e.message));
            if used.kind == ResKind::Network {
                l3::check_external_network(app, &used.name)
                    .await
                    .map_err(named)?;
            } else {
                app.client
                    .find(kind_of(used.kind), &used.name)
                    .await
                    .map_err(|e| named(e.into()))?;
            }
        }
    }
    Ok(())
}

/// The id of the resource a stack refers to by `name`: the stack's own
/// (from the state), else an existing one of the cloud.
pub async fn resolve(app: &App, state: &State, kind: ResKind, name: &str) -> CliResult<String> {
    if let Some(e) = state.resources.get(&format!("{}.{name}", kind.label()))
        && !e.id.is_empty()
    {
        return Ok(e.id.clone());
    }
    Ok(app.client.find_id(kind_of(kind), name).await?)
}

/// The create request (wrapped body) of `d`, references resolved to ids.
pub async fn create_body(app: &App, state: &State, d: &Desired) -> CliResult<Value> {
    let i = &d.inputs;
    let name = &d.addr.name;
    Ok(match d.addr.kind {
        ResKind::Keypair => json!({"keypair": {"name": name, "public_key": i["public_key"]}}),
        ResKind::ServerGroup => {
            json!({"server_group": {"name": name, "policies": [i["policy"]]}})
        }
        ResKind::SecurityGroup => {
            json!({"security_group": {"name": name, "description": i["description"]}})
        }
        ResKind::SecurityGroupRule => {
            let group = resolve(app, state, ResKind::SecurityGroup, i.text("group")).await?;
            let mut r = json!({
                "security_group_id": group, "direction": i["direction"], "ethertype": i["ethertype"],
            });
            if i.text("protocol") != "any" {
                r["protocol"] = i["protocol"].clone();
            }
            for k in ["port_range_min", "port_range_max", "remote_ip_prefix"] {
                if !i[k].is_null() {
                    r[k] = i[k].clone();
                }
            }
            if let Some(g) = i["remote_group"].as_str() {
                r["remote_group_id"] = json!(resolve(app, state, ResKind::SecurityGroup, g).await?);
            }
            json!({ "security_group_rule": r })
        }
        ResKind::Network => json!({"network": {
            "name": name, "description": i["description"], "admin_state_up": i["admin_state_up"],
        }}),
        ResKind::Subnet => {
            let net = resolve(app, state, ResKind::Network, i.text("network")).await?;
            let cidr = i.text("cidr");
            let mut s = json!({
                "name": name, "network_id": net, "cidr": cidr,
                "ip_version": if cidr.contains(':') { 6 } else { 4 },
                "enable_dhcp": i["enable_dhcp"], "description": i["description"],
            });
            if !i["gateway_ip"].is_null() {
                s["gateway_ip"] = i["gateway_ip"].clone();
            }
            if i["dns_nameservers"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                s["dns_nameservers"] = i["dns_nameservers"].clone();
            }
            json!({ "subnet": s })
        }
        ResKind::Server => server_body(app, state, d).await?,
        ResKind::Router | ResKind::RouterInterface | ResKind::FloatingIp => {
            l3::create_body(app, state, d).await?
        }
    })
}

/// Sends the create request `body` of a `kind` with its idempotency key.
pub async fn send_create(
    app: &App,
    kind: ResKind,
    body: Value,
    key: &str,
) -> cloud_client::Result<Value> {
    match kind {
        ResKind::Router | ResKind::RouterInterface | ResKind::FloatingIp => {
            l3::send_create(app, kind, body, key).await
        }
        _ => app.client.create(kind_of(kind), body, Some(key)).await,
    }
}

/// The id of what pending create `p` of `e` made, found by name (or what
/// it was made for) rather than by its idempotency key; "" if nothing.
pub async fn find_made(app: &App, e: &Entry, p: &Pending) -> CliResult<String> {
    if matches!(
        e.kind,
        ResKind::Router | ResKind::RouterInterface | ResKind::FloatingIp
    ) {
        return l3::find_made(app, e, p).await;
    }
    match app.client.find(kind_of(e.kind), &e.name).await {
        Ok(v) => Ok(created_id(e.kind, &v, &e.name)),
        Err(err) if err.is_not_found() => Ok(String::new()),
        Err(err) => Err(err.into()),
    }
}

async fn server_body(app: &App, state: &State, d: &Desired) -> CliResult<Value> {
    let i = &d.inputs;
    let flavor = app.client.find(FLAVOR, i.text("flavor")).await?.id_str();
    let image = app.client.find_id(IMAGE, i.text("image")).await?;
    let mut nets = Vec::new();
    for n in i["networks"].as_array().into_iter().flatten() {
        let mut nic =
            json!({"uuid": resolve(app, state, ResKind::Network, n.text("network")).await?});
        if let Some(ip) = n["fixed_ip"].as_str() {
            nic["fixed_ip"] = json!(ip);
        }
        nets.push(nic);
    }
    let mut s = json!({
        "name": d.addr.name, "flavorRef": flavor, "imageRef": image,
        "networks": if nets.is_empty() { json!("none") } else { Value::Array(nets) },
        "metadata": i["metadata"],
    });
    if let Some(k) = i["key_name"].as_str() {
        s["key_name"] = json!(k);
    }
    let mut groups = Vec::new();
    for g in i["security_groups"].as_array().into_iter().flatten() {
        let id = resolve(app, state, ResKind::SecurityGroup, g.as_str().unwrap_or("")).await?;
        groups.push(json!({ "name": id }));
    }
    if !groups.is_empty() {
        s["security_groups"] = Value::Array(groups);
    }
    if let Some(z) = i["availability_zone"].as_str() {
        s["availability_zone"] = json!(z);
    }
    if let Some(u) = i["user_data"].as_str() {
        s["user_data"] = json!(base64::engine::general_purpose::STANDARD.encode(u));
    }
    let mut body = json!({ "server": s });
    if let Some(g) = i["server_group"].as_str() {
        let id = resolve(app, state, ResKind::ServerGroup, g).await?;
        body["os:scheduler_hints"] = json!({ "group": id });
    }
    Ok(body)
}

/// The id a create answer gives (keypairs are known by name).
pub fn created_id(kind: ResKind, created: &Value, name: &str) -> String {
    match kind {
        ResKind::Keypair => name.to_owned(),
        _ => created.id_str(),
    }
}

/// Applies the in-place changes of `d` to the resource `entry` records.
pub async fn update(app: &App, state: &State, entry: &Entry, d: &Desired) -> CliResult {
    let (id, i) = (entry.id.as_str(), &d.inputs);
    let pick = |keys: &[&str]| -> Value {
        let m: Map<String, Value> = keys
            .iter()
            .map(|k| ((*k).to_owned(), i[*k].clone()))
            .collect();
        Value::Object(m)
    };
    match d.addr.kind {
        ResKind::Server => {
            app.client
                .server_metadata_replace(id, i["metadata"].clone())
                .await?;
        }
        ResKind::Network => {
            app.client
                .update(
                    NETWORK,
                    id,
                    json!({"network": pick(&["description", "admin_state_up"])}),
                )
                .await?;
        }
        ResKind::Subnet => {
            app.client
                .update(
                    SUBNET,
                    id,
                    json!({"subnet": pick(&["description", "enable_dhcp", "dns_nameservers", "gateway_ip"])}),
                )
                .await?;
        }
        ResKind::SecurityGroup => {
            app.client
                .update(
                    SECURITY_GROUP,
                    id,
                    json!({"security_group": pick(&["description"])}),
                )
                .await?;
        }
        ResKind::Router | ResKind::FloatingIp => l3::update(app, state, entry, d).await?,
        other => {
            return Err(CliError::failure(format!(
                "internal: {} cannot be updated in place",
                other.label()
            )));
        }
    }
    Ok(())
}

/// Deletes a recorded resource; one already gone counts as deleted.
pub async fn delete(app: &App, e: &Entry) -> CliResult {
    if e.id.is_empty() {
        return Ok(());
    }
    if e.kind == ResKind::RouterInterface {
        return l3::delete_interface(app, &e.id).await;
    }
    match app.client.delete(kind_of(e.kind), &e.id).await {
        Ok(()) => Ok(()),
        Err(err) if err.status() == Some(404) => Ok(()),
        Err(err) => Err(CliError::from(err)),
    }
}
