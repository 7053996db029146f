//! Helpers shared by the cloud-api integration tests: ids out of replies,
//! fault assertions, the networks and ports that network scenarios start
//! from, and the conductor queue's casts. Each test binary uses some of
//! them.

#![allow(dead_code)]

use cloud_bus::Consumer;
use cloud_rpc::ConductorMsg;
pub use cloud_test_utils::create_network as network;
use cloud_test_utils::{Client, Reply};
use serde_json::{Value, json};
use std::time::Duration;

/// The id of the `key` object in `r`'s body.
#[track_caller]
pub fn id(r: &Reply, key: &str) -> String {
    r.body[key]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no {key}.id in {:?}", r.body))
        .to_owned()
}

/// Asserts a Neutron fault with `status` whose message contains `needle`.
#[track_caller]
pub fn assert_fault(r: &Reply, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert!(r.body["NeutronError"]["type"].is_string(), "{:?}", r.body);
    assert_error(r, status, needle);
}

/// Asserts a fault of any API (Nova's or Neutron's format) with `status`
/// whose message contains `needle`.
#[track_caller]
pub fn assert_error(r: &Reply, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    let msg = r.error_message();
    assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
}

/// The aliases in `GET /extensions`'s reply `r`.
#[track_caller]
pub fn aliases(r: &Reply) -> Vec<&str> {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["alias"].as_str().unwrap())
        .collect()
}

/// An external network named `name` with a subnet on `cidr`; (network,
/// subnet).
pub async fn external_network(c: &Client, name: &str, cidr: &str) -> (String, String) {
    network(c, name, cidr, json!({"router:external": true})).await
}

/// `POST /ports` with `body`.
pub async fn post_port(c: &Client, body: Value) -> Reply {
    c.post("/network/v2.0/ports", json!({ "port": body })).await
}

/// `PUT /ports/{port}` with `body`.
pub async fn put_port(c: &Client, port: &str, body: Value) -> Reply {
    c.put(
        &format!("/network/v2.0/ports/{port}"),
        json!({ "port": body }),
    )
    .await
}

/// The conductor queue of the API's bus, read by the test.
pub struct ConductorQueue(pub Consumer);

impl ConductorQueue {
    /// The next `NetworkChanged` (within 5 s, with a request id), as
    /// (networks, security groups, hosts) rendered as strings.
    pub async fn next_changed(&mut self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let d = tokio::time::timeout(Duration::from_secs(5), self.0.next())
            .await
            .expect("no NetworkChanged within 5 s")
            .expect("bus closed");
        let msg: ConductorMsg = cloud_rpc::decode(&d.envelope).expect("a conductor message");
        assert!(d.envelope.request_id.starts_with("req-"));
        d.ack().await.unwrap();
        match msg {
            ConductorMsg::NetworkChanged {
                networks,
                security_groups,
                hosts,
            } => (
                networks.iter().map(ToString::to_string).collect(),
                security_groups.iter().map(ToString::to_string).collect(),
                hosts,
            ),
            other => panic!("expected NetworkChanged, got {other:?}"),
        }
    }

    /// The next `NetworkChanged` as (networks, hosts).
    pub async fn next_networks_and_hosts(&mut self) -> (Vec<String>, Vec<String>) {
        let (networks, _, hosts) = self.next_changed().await;
        (networks, hosts)
    }

    /// Reads and drops what was cast so far.
    pub async fn drain(&mut self) {
        while let Ok(Some(d)) =
            tokio::time::timeout(Duration::from_millis(200), self.0.next()).await
        {
            d.ack().await.unwrap();
        }
    }

    /// Asserts nothing more was cast.
    pub async fn assert_quiet(&mut self) {
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(200), self.0.next()).await {
            panic!("unexpected cast: {:?}", d.envelope);
        }
    }
}

/// POSTs `body` to `path` with an `Idempotency-Key` header: the call every
/// idempotency test repeats.
pub async fn post_with_key(c: &Client, path: &str, key: &str, body: &Value) -> Reply {
    Client::finish(
        c.request("POST", path)
            .header("Idempotency-Key", key)
            .json(body),
    )
    .await
}

/// The claim of key `k` by user `u` of scope `p` as process `owner` holds
/// it: the store tests of the idempotency table race two owners on it.
pub fn idempotency_hold(owner: &str) -> cloud_store::IdempotencyHold {
    cloud_store::IdempotencyHold {
        key: cloud_store::IdempotencyKey {
            scope: "p".into(),
            user: "u".into(),
            key: "k".into(),
        },
        owner: owner.into(),
    }
}
