//! Serial consoles through the real HTTP API, the console proxy and a fake
//! host, on both backends (issue 13): `os-getSerialConsole` gives a
//! `ws://` URL whose websocket shows the guest's console and takes what is
//! typed; its token works once, for its own server only, and expires;
//! other console types are a 400, a stopped server a 409, and the console
//! log keeps working.

use cloud_store::Backend;
use cloud_test_utils::{
    Client, ControlPlane, PlaneOptions, Reply, boot, record_active_image, wait_for_status,
};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

const T: Duration = Duration::from_secs(60);
/// The token lifetime these tests configure.
const TTL_SECS: u64 = 3;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn act(c: &Client, id: &str, body: Value) -> Reply {
    c.post(&format!("/compute/v2.1/servers/{id}/action"), body)
        .await
}

/// A console URL of server `id`, after checking the reply's shape.
async fn console_url(c: &Client, id: &str) -> String {
    let r = act(c, id, json!({"os-getSerialConsole": {"type": "serial"}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["console"]["type"], "serial", "{}", r.body);
    let url = r.body["console"]["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("ws://"), "{url}");
    assert!(
        url.contains(&format!("/serial-console/{id}?token=")),
        "{url}"
    );
    url
}

/// Opens the websocket as Nova's clients do (subprotocol `binary`); the
/// HTTP status of a refusal otherwise.
async fn open(url: &str) -> Result<Ws, u16> {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, resp)) => {
            assert_eq!(
                resp.headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap()),
                Some("binary")
            );
            Ok(ws)
        }
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("websocket to {url}: {e}"),
    }
}

/// Reads console output until it contains `want`; returns all of it.
async fn read_until(ws: &mut Ws, want: &str) -> String {
    let mut seen = String::new();
    let reading = async {
        while let Some(m) = ws.next().await {
            match m.expect("websocket frame") {
                Message::Binary(b) => seen.push_str(&String::from_utf8_lossy(&b)),
                Message::Text(t) => seen.push_str(&t),
                Message::Close(_) => break,
                _ => {}
            }
            if seen.contains(want) {
                return true;
            }
        }
        false
    };
    let found = tokio::time::timeout(Duration::from_secs(20), reading)
        .await
        .unwrap_or(false);
    assert!(found, "console never showed {want:?}; it showed {seen:?}");
    seen
}

async fn serial_console(backend: Backend) {
    let mut options = PlaneOptions::hosts(backend, 1, Default::default());
    options.api = |c| c.serial_console.token_ttl_secs = TTL_SECS;
    let plane = ControlPlane::start(options).await;
    let owner = plane.api.account("demo", "alice", "member").await;
    let c = &owner.client;
    let image = record_active_image(&plane.api.db.store, &owner.project_id, "img")
        .await
        .unwrap();
    let mut ids = Vec::new();
    for name in ["vm1", "vm2"] {
        let r = boot(c, name, "1", &image.to_string(), json!({})).await;
        assert_eq!(r.status, 202, "{}", r.body);
        ids.push(r.body["server"]["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let s = wait_for_status(c, id, &["ACTIVE", "ERROR"], T).await;
        assert_eq!(s["status"], "ACTIVE", "{s}");
    }
    let (id, other_id) = (&ids[0], &ids[1]);

    // The console shows the guest's prompt and echoes what is typed, sent
    // as text or as binary frames.
    let url = console_url(c, id).await;
    let mut ws = open(&url).await.expect("console opens");
    read_until(&mut ws, "vm1 login: ").await;
    ws.send(Message::text("echo hello-4711\r")).await.unwrap();
    let seen = read_until(&mut ws, "hello-4711\r\nvm1 login: ").await;
    assert!(seen.contains("echo hello-4711"), "{seen:?}");
    ws.send(Message::binary(b"root\n".to_vec())).await.unwrap();
    read_until(&mut ws, "root\r\nvm1 login: ").await;

    // The token was used: the same URL is refused, while the open
    // session carries on.
    assert_eq!(open(&url).await.err(), Some(401));
    ws.send(Message::text("still-here\r")).await.unwrap();
    read_until(&mut ws, "still-here").await;
    ws.close(None).await.unwrap();

    // A token works for its own server only, and a refused attempt on
    // another server's path does not use it up.
    let url = console_url(c, id).await;
    let elsewhere = url.replace(id.as_str(), other_id);
    assert_eq!(open(&elsewhere).await.err(), Some(401));
    let mut ws = open(&url).await.expect("its own server's console opens");
    read_until(&mut ws, "vm1 login: ").await;
    ws.close(None).await.unwrap();
    let url = console_url(c, other_id).await;
    let mut ws = open(&url).await.expect("vm2's console opens");
    read_until(&mut ws, "vm2 login: ").await;
    ws.close(None).await.unwrap();

    // Tokens expire; missing or made-up ones are refused.
    let url = console_url(c, id).await;
    tokio::time::sleep(Duration::from_millis(TTL_SECS * 1000 + 500)).await;
    assert_eq!(open(&url).await.err(), Some(401));
    let bare = url.split('?').next().unwrap().to_owned();
    assert_eq!(open(&bare).await.err(), Some(401));
    assert_eq!(open(&format!("{bare}?token=00ff")).await.err(), Some(401));

    // Other console types: a 400 saying only serial consoles are offered.
    let r = act(c, id, json!({"os-getSerialConsole": {"type": "novnc"}})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.error_message().contains("serial consoles only"),
        "{}",
        r.error_message()
    );
    let r = act(c, id, json!({"os-getSerialConsole": {}})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    // What `openstack console url show` sends by default.
    let r = act(c, id, json!({"os-getVNCConsole": {"type": "novnc"}})).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.error_message().contains("serial consoles only"),
        "{}",
        r.error_message()
    );

    // Another project's user does not see the server.
    let other = plane.api.account("other", "mallory", "member").await;
    let r = act(
        &other.client,
        id,
        json!({"os-getSerialConsole": {"type": "serial"}}),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);

    // A stopped server has no console to reach: 409 naming its state; a
    // URL handed out before the stop no longer connects.
    let url = console_url(c, other_id).await;
    assert_eq!(act(c, other_id, json!({"os-stop": null})).await.status, 202);
    wait_for_status(c, other_id, &["SHUTOFF"], T).await;
    let r = act(
        c,
        other_id,
        json!({"os-getSerialConsole": {"type": "serial"}}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.error_message().contains("vm_state stopped"),
        "{}",
        r.error_message()
    );
    assert_eq!(open(&url).await.err(), Some(409));

    // The console log keeps working.
    let r = act(c, id, json!({"os-getConsoleOutput": {"length": 5}})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["output"]
            .as_str()
            .unwrap()
            .contains("TESTGUEST READY"),
        "{}",
        r.body
    );
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_console_sqlite() {
    serial_console(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serial_console_postgres() {
    serial_console(Backend::Postgres).await;
}
