//! AMQP over TLS (`amqps://`): a RabbitMQ node of the test's own, with only
//! a TLS listener that demands a client certificate, and certificates made
//! by the test with the `openssl` CLI (a CA, the broker's certificate for
//! 127.0.0.1, a client certificate). Skipped without the RabbitMQ binaries,
//! except under `CI=true`.

mod common;

use cloud_bus::{AmqpBus, AmqpConfig, Bus, BusError, TlsFiles};
use common::rabbit::{Binaries, Nodes};
use common::{msg, next_within, num, serve};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Runs `openssl` with `args` (split on spaces) in `dir`, failing the test
/// on error.
fn openssl(dir: &Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split(' '))
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("the openssl CLI is needed to make test certificates: {e}"));
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test's PKI in a directory: a CA, a server certificate for
/// 127.0.0.1 and a client certificate (CN=guest), both signed by the CA,
/// and a second CA that signed nothing.
struct Pki {
    dir: PathBuf,
}

/// A new P-256 key, unencrypted, in PKCS#8.
const NEW_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

impl Pki {
    fn make(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).expect("pki dir");
        for ca in ["ca", "other-ca"] {
            openssl(
                dir,
                &format!(
                    "req -x509 {NEW_KEY} -keyout {ca}.key -out {ca}.pem -days 2 \
                     -subj /CN={ca} -addext basicConstraints=critical,CA:TRUE \
                     -addext keyUsage=critical,keyCertSign,cRLSign"
                ),
            );
        }
        for (name, cn, usage, san) in [
            (
                "server",
                "127.0.0.1",
                "serverAuth",
                "subjectAltName=IP:127.0.0.1\n",
            ),
            ("client", "guest", "clientAuth", ""),
        ] {
            openssl(
                dir,
                &format!("req -new {NEW_KEY} -keyout {name}.key -out {name}.csr -subj /CN={cn}"),
            );
            std::fs::write(
                dir.join(format!("{name}.ext")),
                format!("basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n{san}"),
            )
            .expect("extensions");
            openssl(
                dir,
                &format!(
                    "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                     -days 2 -extfile {name}.ext -out {name}.pem"
                ),
            );
        }
        Pki {
            dir: dir.to_owned(),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// `ssl_options` with only a TLS listener, verifying clients.
fn tls_only_config(port: u16, pki: &Pki) -> String {
    format!(
        "listeners.tcp = none\n\
         listeners.ssl.default = 127.0.0.1:{port}\n\
         ssl_options.cacertfile = {}\n\
         ssl_options.certfile = {}\n\
         ssl_options.keyfile = {}\n\
         ssl_options.verify = verify_peer\n\
         ssl_options.fail_if_no_peer_cert = true\n",
        pki.file("ca.pem").display(),
        pki.file("server.pem").display(),
        pki.file("server.key").display(),
    )
}

/// With the CA and a client certificate in the config, casts and calls go
/// over TLS; without the right CA the broker is not trusted, and without a
/// client certificate the broker refuses us: both fail to connect with an
/// error saying so instead of falling back to plain AMQP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_with_a_ca_and_a_client_certificate() {
    let Some(bins) = Binaries::find() else {
        return;
    };
    let pki_dir = std::env::temp_dir().join(format!("cloud-bus-pki-{}", uuid::Uuid::new_v4()));
    let pki = Pki::make(&pki_dir);
    let nodes = {
        let pki_dir = pki_dir.clone();
        tokio::task::spawn_blocking(move || {
            let pki = Pki { dir: pki_dir };
            Nodes::start(&bins, 1, |port, _| tls_only_config(port, &pki))
        })
        .await
        .expect("TLS node start-up")
    };
    let url = format!("amqps://guest:guest@127.0.0.1:{}/%2f", nodes.nodes[0].port);
    let mut config = AmqpConfig::new(&url, format!("t-{}", uuid::Uuid::new_v4()));
    config.queue_expires = Some(Duration::from_secs(300));
    config.connection_name = "cloud-bus-tls-test".to_owned();
    config.tls = TlsFiles {
        ca_file: Some(pki.file("ca.pem")),
        cert_file: Some(pki.file("client.pem")),
        key_file: Some(pki.file("client.key")),
    };

    let bus = AmqpBus::connect(config.clone())
        .await
        .expect("connect over TLS");
    let mut c = bus.consume("work").await.unwrap();
    bus.cast("work", msg(1)).await.unwrap();
    let d = next_within(&mut c, 10).await;
    assert_eq!(num(&d.envelope), 1);
    d.ack().await.unwrap();
    let server = serve(bus.consume("rpc").await.unwrap(), |_| 0);
    let reply = bus.call("rpc", msg(2), Duration::from_secs(10)).await;
    assert_eq!(num(&reply.expect("reply over TLS")), 2);
    let conns = nodes
        .ctl(
            0,
            &["list_connections", "-q", "name", "ssl", "peer_cert_subject"],
        )
        .expect("list_connections");
    assert!(
        conns
            .lines()
            .any(|l| l.contains("true") && l.contains("CN=guest")),
        "a TLS connection with our client certificate: {conns}"
    );
    server.abort();
    drop(c);
    bus.close().await;

    let mut untrusted = config.clone();
    untrusted.tls.ca_file = Some(pki.file("other-ca.pem"));
    expect_refused(untrusted, "a broker certificate from an unknown CA").await;
    let mut anonymous = config.clone();
    anonymous.tls.cert_file = None;
    anonymous.tls.key_file = None;
    expect_refused(anonymous, "no client certificate").await;
    let mut half = config.clone();
    half.tls.key_file = None;
    match AmqpBus::connect(half).await {
        Err(BusError::Unavailable(m)) => assert!(m.contains("key_file"), "{m}"),
        other => panic!(
            "a certificate without its key must be refused: {:?}",
            other.err()
        ),
    }

    drop(nodes);
    let _ = std::fs::remove_dir_all(&pki_dir);
}

async fn expect_refused(config: AmqpConfig, why: &str) {
    match AmqpBus::connect(config).await {
        Err(BusError::Unavailable(m)) => {
            assert!(m.contains("127.0.0.1"), "the error names the broker: {m}");
            eprintln!("refused as expected ({why}): {m}");
        }
        Err(e) => panic!("{why}: expected Unavailable, got {e:?}"),
        Ok(_) => panic!("connected despite {why}"),
    }
}
