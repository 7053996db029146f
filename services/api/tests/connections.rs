//! Connections the API server must not keep forever (issue 16, finding
//! 2), over real TCP: idle and slowloris sockets are closed after the
//! configured timeouts, a normal request is served while the connection
//! cap is reached, and cloud-aio limited to 256 descriptors still answers
//! with 300 idle connections open.

use cloud_test_utils::{TestApi, TestDb};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The start of a request, never finished.
const PARTIAL: &[u8] = b"GET /identity/v3 HTTP/1.1\r\nHost: slow\r\n";

async fn start(tweak: impl FnOnce(&mut cloud_api::ApiConfig)) -> (TestApi, SocketAddr) {
    let api = TestApi::start_with(TestDb::new(cloud_store::Backend::Sqlite).await, tweak).await;
    let addr = api.url.trim_start_matches("http://").parse().unwrap();
    (api, addr)
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

/// Reads (and discards) until the server closes `s`; how long that took,
/// or `None` if it was still open after `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Which of `socks` the server has closed (checked for `within`).
async fn closed(socks: &mut [TcpStream], within: Duration) -> Vec<bool> {
    futures::future::join_all(
        socks
            .iter_mut()
            .map(|s| async move { closed_within(s, within).await.is_some() }),
    )
    .await
}

/// A complete keep-alive request whose response has been read: the
/// connection is then idle between requests.
async fn kept_alive(addr: SocketAddr) -> TcpStream {
    let mut s = connect(addr).await;
    s.write_all(b"GET /identity/v3 HTTP/1.1\r\nHost: ka\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // The version document is small: headers and body come together.
    while !got.windows(4).any(|w| w == b"\r\n\r\n") || !got.ends_with(b"}") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("response in time")
            .unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
    s
}

/// `GET /identity/v3` on a new connection (a new client each time): what
/// a new user gets while other connections hold the API.
async fn fresh_request(base: &str) -> Result<reqwest::StatusCode, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(format!("{base}/identity/v3"))
        .send()
        .await
        .map(|r| r.status())
}

async fn normal_request(base: &str) -> reqwest::StatusCode {
    fresh_request(base)
        .await
        .expect("a normal request is answered")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slowloris_connections_are_closed_after_the_timeouts() {
    let (api, addr) = start(|c| {
        c.header_read_timeout_secs = 1.0;
        c.idle_timeout_secs = 2.0;
    })
    .await;
    let opened = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(connect(addr).await);
    }
    let mut slow = Vec::new();
    for _ in 0..5 {
        let mut s = connect(addr).await;
        s.write_all(PARTIAL).await.unwrap();
        slow.push(s);
    }
    // Two that keep dripping header lines, which must not extend the time
    // they get.
    let mut drip = Vec::new();
    for _ in 0..2 {
        let s = connect(addr).await;
        let (mut r, mut w) = s.into_split();
        tokio::spawn(async move {
            let _ = w.write_all(PARTIAL).await;
            for i in 0..100 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if w.write_all(format!("X-Drip-{i}: x\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        drip.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut buf = [0u8; 1024];
            let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
            loop {
                match tokio::time::timeout_at(deadline, r.read(&mut buf)).await {
                    Err(_) => return None,
                    Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                    Ok(Ok(_)) => {}
                }
            }
        }));
    }
    // Each watched from the moment its response was read.
    let mut kept = Vec::new();
    for _ in 0..3 {
        let mut s = kept_alive(addr).await;
        kept.push(tokio::spawn(async move {
            closed_within(&mut s, Duration::from_secs(10)).await
        }));
    }

    // Not closed early: all still open half a second in.
    tokio::time::sleep(Duration::from_millis(500).saturating_sub(opened.elapsed())).await;
    assert!(
        closed(&mut idle, Duration::from_millis(10))
            .await
            .iter()
            .all(|c| !c),
        "idle connections were closed before the header timeout"
    );

    // Fresh idle connections and slowloris ones: the header timeout (1 s).
    for (what, socks) in [("idle", &mut idle), ("slowloris", &mut slow)] {
        for (i, s) in socks.iter_mut().enumerate() {
            let t = closed_within(s, Duration::from_secs(8)).await;
            assert!(
                t.is_some(),
                "{what} connection {i} still open {:?} after it was opened",
                opened.elapsed()
            );
        }
    }
    for d in drip {
        let t = d.await.unwrap();
        assert!(t.is_some(), "a dripping slowloris connection stayed open");
    }
    // Kept-alive connections: the idle timeout (2 s), not the header one.
    for (i, k) in kept.into_iter().enumerate() {
        let t = k.await.unwrap();
        let t = t.unwrap_or_else(|| panic!("kept-alive connection {i} still open"));
        assert!(
            t >= Duration::from_millis(1900),
            "kept-alive connection {i} closed {t:?} after its answer, before the idle timeout"
        );
    }
    assert_eq!(normal_request(&api.url).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_new_clients_are_still_served() {
    const CAP: usize = 16;
    let (api, addr) = start(|c| {
        c.max_connections = CAP;
        // Nothing times out during the test: only the cap acts.
        c.header_read_timeout_secs = 120.0;
        c.idle_timeout_secs = 120.0;
    })
    .await;
    let mut socks = Vec::new();
    for i in 0..60 {
        let mut s = connect(addr).await;
        if i % 4 == 0 {
            s.write_all(PARTIAL).await.unwrap();
        }
        socks.push(s);
    }
    // Well beyond the cap, a normal request is still served, every time.
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(normal_request(&api.url).await, 200);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a request took {:?} at the cap",
            started.elapsed()
        );
    }
    // The server holds at most CAP connections: it closed the others.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open = closed(&mut socks, Duration::from_millis(300))
        .await
        .iter()
        .filter(|c| !**c)
        .count();
    assert!(
        open <= CAP,
        "{open} of {} idle connections still open with a cap of {CAP}",
        socks.len()
    );
}

/// Starts cloud-aio under `ulimit -n 256` and, with 300 idle connections
/// open to it, it still answers and never fails to accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aio_with_256_descriptors_answers_with_300_idle_connections() {
    let bin = cloud_test_utils::build_binaries(&["cloud-aio"]).join("cloud-aio");
    let dir = tempfile::tempdir().unwrap();
    let port = cloud_test_utils::free_port();
    let log = dir.path().join("aio.log");
    let mut child = Command::new("sh")
        .args(["-c", "ulimit -n 256 && exec \"$0\" \"$@\""])
        .arg(&bin)
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--driver", "fake"])
        .env("CLOUD_ADMIN_PASSWORD", "fd-test")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let up = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/identity/v3")).await
            && r.status() == 200
        {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "cloud-aio exited: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(
            up.elapsed() < Duration::from_secs(60),
            "cloud-aio did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_owned();
    assert!(
        nofile.split_whitespace().nth(3) == Some("256"),
        "the limit did not apply: {nofile}"
    );

    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(connect(addr).await);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outcome = async {
        for _ in 0..3 {
            let started = Instant::now();
            let status = fresh_request(&base).await;
            if !matches!(status, Ok(s) if s == 200) {
                return Err(format!("{status:?} after {:?}", started.elapsed()));
            }
        }
        Ok(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    drop(idle);
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        outcome.is_ok(),
        "with 300 idle connections the API did not answer: {outcome:?}\n{log}"
    );
    assert!(
        !log.contains("Too many open files"),
        "the server ran out of descriptors:\n{log}"
    );
}
