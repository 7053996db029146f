//! The metadata service as guests see it: `http://169.254.169.254/` in
//! each network's namespace. The proxy there knows which network it serves
//! and the guest's source address, finds the instance that holds that
//! address on that network on this host, and forwards the request to the
//! API's metadata endpoint with the instance id signed with the shared
//! secret. The API trusts nothing else, and anti-spoofing on the host is
//! what makes the source address trustworthy.
//!
//! The listeners are sockets of the agent's process opened inside the
//! namespaces, so no extra process runs per network; they go away with the
//! agent and are reopened by its first apply after a restart.

use crate::network::METADATA_IP;
use crate::{MetadataProxyConfig, netns};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cloud_driver::{HostNetwork, metadata};
use cloud_model::InstanceId;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// The port guests connect to.
const PORT: u16 = 80;
/// How long the API gets to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// Which instance holds an address on a network, for the ports of this
/// host.
type Addresses = HashMap<(String, Ipv4Addr), InstanceId>;

/// The proxies of this host, one per network.
pub(crate) struct Proxies {
    config: MetadataProxyConfig,
    addresses: Arc<RwLock<Addresses>>,
    running: Mutex<HashMap<String, JoinHandle<()>>>,
    client: reqwest::Client,
}

#[derive(Clone)]
struct Shared {
    network: String,
    config: MetadataProxyConfig,
    addresses: Arc<RwLock<Addresses>>,
    client: reqwest::Client,
}

impl Proxies {
    /// Proxies forwarding to `config.api_url`.
    pub(crate) fn new(config: MetadataProxyConfig) -> Proxies {
        Proxies {
            config,
            addresses: Arc::new(RwLock::new(HashMap::new())),
            running: Mutex::new(HashMap::new()),
            client: reqwest::Client::builder()
                .timeout(UPSTREAM_TIMEOUT)
                // The API's answer is passed on, never followed elsewhere.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    /// Serves the networks of `desired` (whose namespaces exist) and only
    /// those, answering for its ports.
    pub(crate) fn sync(&self, desired: &HostNetwork, namespace_of: impl Fn(&str) -> String) {
        let table: Addresses = desired
            .ports
            .iter()
            .filter_map(|p| Some((p, p.instance_id?)))
            .flat_map(|(p, id)| {
                p.fixed_ips
                    .iter()
                    .map(move |ip| ((p.network_id.clone(), *ip), id))
            })
            .collect();
        *self.addresses.write().unwrap_or_else(|p| p.into_inner()) = table;
        let wanted: BTreeSet<&str> = desired.networks.iter().map(|n| n.id.as_str()).collect();
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|net, task| {
            let keep = wanted.contains(net.as_str()) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for net in wanted {
            if running.contains_key(net) {
                continue;
            }
            match self.start(net, &namespace_of(net)) {
                Ok(task) => {
                    running.insert(net.to_owned(), task);
                }
                Err(e) => {
                    tracing::warn!(network = net, error = %format!("{e:#}"), "cannot start the metadata proxy")
                }
            }
        }
    }

    fn start(&self, network: &str, namespace: &str) -> anyhow::Result<JoinHandle<()>> {
        let std_listener = netns::listen_in(namespace, SocketAddr::from((METADATA_IP, PORT)))?;
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let shared = Shared {
            network: network.to_owned(),
            config: self.config.clone(),
            addresses: self.addresses.clone(),
            client: self.client.clone(),
        };
        let app = Router::new().fallback(forward).with_state(shared);
        let net = network.to_owned();
        tracing::info!(network, namespace, "metadata proxy listening");
        Ok(tokio::spawn(async move {
            let served = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
            if let Err(e) = served {
                tracing::warn!(network = %net, error = %e, "metadata proxy stopped");
            }
        }))
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        for task in self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            task.abort();
        }
    }
}

/// The API URL a guest's request target maps to: the metadata base plus
/// the path, or `None` when the path could leave the base (dot segments,
/// encoded or not, backslashes) — guests reach the metadata endpoint and
/// nothing else of the API.
fn upstream_url(base: &str, target: &str) -> Option<reqwest::Url> {
    let (path, _query) = target.split_once('?').unwrap_or((target, ""));
    if !path.starts_with('/') {
        return None;
    }
    let decoded = percent_decoded(path)?;
    if decoded.contains('\\')
        || decoded
            .split('/')
            .any(|seg| seg == "." || seg == ".." || seg.contains('\0'))
    {
        return None;
    }
    let base = reqwest::Url::parse(base.trim_end_matches('/')).ok()?;
    let url = reqwest::Url::parse(&format!("{base}{target}")).ok()?;
    let same_origin = url.origin() == base.origin();
    (same_origin && url.path().starts_with(base.path())).then_some(url)
}

/// `%XX` decoded (twice encoded stays encoded once, which the dot check
/// then still sees as text, not as a dot); `None` for invalid UTF-8.
fn percent_decoded(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain")],
        body.to_owned(),
    )
        .into_response()
}

async fn forward(
    State(s): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "Only GET and HEAD are allowed.\n",
        );
    }
    let IpAddr::V4(source) = peer.ip() else {
        return text(StatusCode::NOT_FOUND, "No instance found.\n");
    };
    let instance = s
        .addresses
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(&(s.network.clone(), source))
        .copied();
    let Some(instance) = instance else {
        tracing::info!(network = %s.network, %source, "metadata request from an unknown address");
        return text(StatusCode::NOT_FOUND, "No instance found.\n");
    };
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let Some(url) = upstream_url(&s.config.api_url, path) else {
        return text(StatusCode::NOT_FOUND, "Not found.\n");
    };
    let id = instance.to_string();
    let upstream = s
        .client
        .request(req.method().clone(), url.clone())
        .header(metadata::INSTANCE_ID_HEADER, &id)
        .header(
            metadata::SIGNATURE_HEADER,
            metadata::sign_instance_id(&s.config.shared_secret, &id),
        )
        .header(metadata::FORWARDED_FOR_HEADER, source.to_string())
        .send()
        .await;
    match upstream {
        Ok(r) => {
            let status = r.status();
            let content_type = r
                .headers()
                .get(header::CONTENT_TYPE)
                .cloned()
                .unwrap_or_else(|| header::HeaderValue::from_static("text/plain"));
            match r.bytes().await {
                Ok(body) => (status, [(header::CONTENT_TYPE, content_type)], body).into_response(),
                Err(e) => {
                    tracing::warn!(error = %e, "metadata API answer cut short");
                    text(StatusCode::BAD_GATEWAY, "The metadata service failed.\n")
                }
            }
        }
        Err(e) => {
            tracing::warn!(%url, error = %e, "metadata API unreachable");
            text(
                StatusCode::BAD_GATEWAY,
                "The metadata service is unreachable.\n",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::upstream_url;

    #[test]
    fn guests_reach_the_metadata_endpoint_and_nothing_else() {
        let base = "http://127.0.0.1:8080/metadata";
        let ok = upstream_url(base, "/openstack/latest/meta_data.json?x=1").unwrap();
        assert_eq!(
            ok.as_str(),
            "http://127.0.0.1:8080/metadata/openstack/latest/meta_data.json?x=1"
        );
        assert!(upstream_url(base, "/latest/meta-data/").is_some());
        for bad in [
            "/../metrics",
            "/%2e%2e/identity/v3",
            "/%2E%2e/x",
            "/a/./b",
            "/a\\..\\b",
            "/a/%5c../b",
            "http://evil/",
            "@evil/x",
        ] {
            assert!(upstream_url(base, bad).is_none(), "{bad} was let through");
        }
    }
}
