//! `cloud console` against a running cloud (fake hosts): `--url` prints
//! the serial console's websocket URL, and attached, what is piped in
//! reaches the console and its echo comes out; a stopped server's console
//! is a conflict (exit 5).

mod common;

use common::Cloud;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_serial_console_by_url_and_attached() {
    let cloud = Cloud::start(1).await;
    cloud.image("cirros").await;
    cloud
        .run(&[
            "boot", "vm1", "--flavor", "m1.tiny", "--image", "cirros", "--nic", "none", "--wait",
        ])
        .await
        .ok();

    let url = cloud.run(&["console", "vm1", "--url"]).await;
    let url = url.ok().trim();
    assert!(url.starts_with("ws://"), "{url}");
    assert!(url.contains("/serial-console/"), "{url}");
    assert!(url.contains("?token="), "{url}");

    // Attached: piped input goes to the console (the fake guest echoes it
    // after its banner and prompt); the end of input detaches.
    let mut cmd = cloud.command(&["console", "vm1"], &[]);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("cloud runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"echo hello-cli\n").await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("cloud console detaches at the end of input")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("vm1 login: "), "{stdout}");
    assert!(stdout.contains("echo hello-cli\r\n"), "{stdout}");

    cloud.run(&["stop", "vm1", "--wait"]).await.ok();
    let stopped = cloud.run(&["console", "vm1", "--url"]).await;
    assert_eq!(stopped.code, 5, "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("vm_state stopped"),
        "{}",
        stopped.stderr
    );
    cloud.plane.shutdown().await;
}
