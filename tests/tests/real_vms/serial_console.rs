//! The serial console of a real guest (issue 13): the domain's serial port
//! is a TCP server of QEMU (its output still logged for `console log`),
//! and the console proxy's websocket shows the guest booting again after a
//! hard reboot, then takes commands typed into the root shell on the
//! console and shows their output.

use crate::support::{RealCloud, count, domain};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Longest the guest may take to boot again under TCG.
const BOOT: Duration = Duration::from_secs(180);

/// Reads the websocket into `seen` until `done(seen)` holds.
async fn read_until(ws: &mut Ws, seen: &mut String, what: &str, done: impl Fn(&str) -> bool) {
    let started = Instant::now();
    while !done(seen) {
        let left = BOOT.saturating_sub(started.elapsed());
        let m = tokio::time::timeout(left, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {what} within {BOOT:?}; the console showed {seen:?}"));
        match m {
            Some(Ok(Message::Binary(b))) => seen.push_str(&String::from_utf8_lossy(&b)),
            Some(Ok(Message::Text(t))) => seen.push_str(&t),
            Some(Ok(_)) => {}
            other => panic!("the console closed ({other:?}) before {what}; it showed {seen:?}"),
        }
    }
    eprintln!("serial console: {what} after {:.1?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_serial_console_shows_a_hard_reboot_and_echoes_what_is_typed() {
    let cloud = RealCloud::start().await;
    let id = cloud.boot_ready_guest("vm-serial", None).await;
    let xml = domain(&id).xml_desc(0).unwrap();
    assert!(xml.contains("<serial type='tcp'>"), "{xml}");

    let r = cloud
        .client()
        .post(
            &format!("/compute/v2.1/servers/{id}/action"),
            json!({"os-getSerialConsole": {"type": "serial"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let url = r.body["console"]["url"].as_str().unwrap().to_owned();
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "binary".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("the console opens");

    // A hard reboot restarts QEMU: the session follows the guest, which
    // boots again on the websocket.
    cloud.action(&id, json!({"reboot": {"type": "HARD"}})).await;
    let mut seen = String::new();
    read_until(&mut ws, &mut seen, "BOOTED", |s| {
        s.contains("TESTGUEST BOOTED")
    })
    .await;
    read_until(&mut ws, &mut seen, "READY", |s| {
        s.split("TESTGUEST BOOTED")
            .nth(1)
            .is_some_and(|after| after.contains("TESTGUEST READY"))
    })
    .await;
    // The root shell's prompt follows READY.
    read_until(&mut ws, &mut seen, "the shell's prompt", |s| {
        s.split("TESTGUEST READY")
            .nth(1)
            .is_some_and(|after| after.contains("# "))
    })
    .await;

    // What is typed reaches the shell: the command is echoed and its
    // output printed.
    let word = format!(
        "hello-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    ws.send(Message::text(format!("echo {word}\r")))
        .await
        .unwrap();
    let mut typed = String::new();
    read_until(&mut ws, &mut typed, "the command's output", |s| {
        s.contains(&format!("echo {word}")) && s.replace('\r', "").contains(&format!("\n{word}\n"))
    })
    .await;
    ws.close(None).await.unwrap();

    // The console log saw both boots.
    let log = cloud.wait_marker(&id, "READY", 2).await;
    assert_eq!(count(&log, "BOOTED"), 2, "{log}");
    cloud.delete(&id).await;
}
