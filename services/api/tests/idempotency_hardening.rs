//! `Idempotency-Key` hardening (issue 16, security 7 and fault 2), over
//! real HTTP on both backends:
//!
//! * a key belongs to its user: another user of the project sending the
//!   same key (a reader replaying a member's) runs its own request and gets
//!   its own policy error, never the stored answer;
//! * a user whose roles no longer allow what the key did gets the policy
//!   error, not the replay;
//! * the replay table holds no secret: a server's generated `adminPass` is
//!   shown once, in the first answer, and neither stored nor replayed;
//! * an API killed in the middle of a server create does not strand the
//!   key: a retry on another API finds the server the dead one made and
//!   answers 202 with its id at once, and a key claimed by a process that
//!   died before creating anything is taken over when its short lease
//!   lapses, making exactly one server; a live owner renewing its lease
//!   keeps the key, and an owner whose claim was taken over can neither
//!   renew it nor record its answer.

mod support;

use cloud_api::idempotency::LEASE;
use cloud_api::{ApiConfig, AppState};
use cloud_bus::{Bus, BusError, Consumer, Envelope};
use cloud_model::Timestamp;
use cloud_store::{IdempotencyClaim, IdempotencyRecord};
use cloud_test_utils::{Account, Client, TestApi, TestDb, both_backends};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};
use support::post_with_key;

const SERVERS: &str = "/compute/v2.1/servers";

fn boot(name: &str, image: &str) -> Value {
    json!({"server": {"name": name, "flavorRef": "1", "imageRef": image, "networks": "none"}})
}

async fn server_ids(c: &Client) -> Vec<String> {
    let r = c.get(SERVERS).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Everything SQLite holds on disk (database and write-ahead log), to
/// look for a secret in it; empty on PostgreSQL.
fn sqlite_bytes(db: &TestDb) -> Vec<u8> {
    let Some(path) = db.url.strip_prefix("sqlite://") else {
        return Vec::new();
    };
    let mut all = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(b) = std::fs::read(format!("{path}{suffix}")) {
            all.extend(b);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Sends `method` (`PUT` grants, `DELETE` revokes) for `role` of `who`
/// on its project: the test demotes a user and restores it.
async fn assign(admin: &Client, method: &str, who: &Account, role: &str) {
    let r = admin.get(&format!("/identity/v3/roles?name={role}")).await;
    let role = r.body["roles"][0]["id"].as_str().unwrap();
    let r = admin
        .send(
            method,
            &format!(
                "/identity/v3/projects/{}/users/{}/roles/{role}",
                who.project_id, who.user_id
            ),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
}

both_backends!(
    a_key_is_the_users_and_never_replays_secrets,
    |db: TestDb| async move {
        let api = TestApi::start_with(db, |_| {}).await;
        let member = api.account("idem-h", "mel", "member").await;
        let reader = api.account("idem-h", "rita", "reader").await;
        let img = cloud_test_utils::upload_image(
            &member.client,
            "img",
            "qcow2",
            vec![7u8; 64],
            json!({}),
        )
        .await;
        let body = boot("secretive", &img);

        let first = post_with_key(&member.client, SERVERS, "boot-1", &body).await;
        assert_eq!(first.status, 202, "{}", first.body);
        let id = first.body["server"]["id"].as_str().unwrap().to_owned();
        let password = first.body["server"]["adminPass"]
            .as_str()
            .expect("the first answer shows the generated password")
            .to_owned();

        // The reader sends the member's key and body: its own request, and
        // the policy's answer to it.
        let stolen = post_with_key(&reader.client, SERVERS, "boot-1", &body).await;
        assert_eq!(stolen.status, 403, "{}", stolen.body);
        assert!(
            stolen.error_message().contains("Policy does not allow"),
            "{}",
            stolen.body
        );
        assert!(stolen.header("idempotent-replayed").is_none());
        let text = String::from_utf8_lossy(&stolen.bytes);
        assert!(!text.contains(&password), "{text}");
        assert!(!text.contains(&id), "{text}");

        // The member's own retry replays the answer, without the password.
        let replay = post_with_key(&member.client, SERVERS, "boot-1", &body).await;
        assert_eq!(replay.status, 202, "{}", replay.body);
        assert_eq!(replay.header("idempotent-replayed"), Some("true"));
        assert_eq!(replay.body["server"]["id"], id.as_str());
        assert!(
            replay.body["server"].get("adminPass").is_none(),
            "a replay shows no password: {}",
            replay.body
        );
        assert!(!String::from_utf8_lossy(&replay.bytes).contains(&password));
        assert_eq!(server_ids(&member.client).await, std::slice::from_ref(&id));

        // Nor is it anywhere in the database.
        let stored = sqlite_bytes(&api.db);
        assert!(
            !contains(&stored, &password),
            "the generated password is stored in the database"
        );

        // A user who lost the role that made the server gets the policy
        // error when replaying its own key, not the stored answer.
        let admin = api.admin().await.client;
        assign(&admin, "PUT", &member, "reader").await;
        assign(&admin, "DELETE", &member, "member").await;
        let token = api.token("mel", "mel-password", "idem-h").await;
        let demoted = api.anonymous().with_token(&token);
        let r = post_with_key(&demoted, SERVERS, "boot-1", &body).await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(r.header("idempotent-replayed").is_none());
        assert!(!String::from_utf8_lossy(&r.bytes).contains(&id));
        // And once the role is back, the replay is too.
        assign(&admin, "PUT", &member, "member").await;
        let token = api.token("mel", "mel-password", "idem-h").await;
        let restored = api.anonymous().with_token(&token);
        let r = post_with_key(&restored, SERVERS, "boot-1", &body).await;
        assert_eq!(r.status, 202, "{}", r.body);
        assert_eq!(r.body["server"]["id"], id.as_str());
    }
);

/// A bus whose casts never return (the process dies while sending), and
/// that says when the first cast started: by then the server create has
/// committed its transaction.
struct StuckBus {
    reached: tokio::sync::mpsc::UnboundedSender<()>,
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Bus for StuckBus {
    fn cast<'a, 'b, 'c>(
        &'a self,
        _queue: &'b str,
        _msg: Envelope,
    ) -> BoxFut<'c, Result<(), BusError>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        let _ = self.reached.send(());
        Box::pin(std::future::pending())
    }

    fn call<'a, 'b, 'c>(
        &'a self,
        _queue: &'b str,
        _msg: Envelope,
        _timeout: Duration,
    ) -> BoxFut<'c, Result<Envelope, BusError>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(std::future::pending())
    }

    fn broadcast<'a, 'b, 'c>(
        &'a self,
        _topic: &'b str,
        _msg: Envelope,
    ) -> BoxFut<'c, Result<(), BusError>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async { Ok(()) })
    }

    fn consume<'a, 'b, 'c>(&'a self, _queue: &'b str) -> BoxFut<'c, Result<Consumer, BusError>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async { Err(BusError::Closed) })
    }

    fn subscribe<'a, 'b, 'c>(&'a self, _topic: &'b str) -> BoxFut<'c, Result<Consumer, BusError>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async { Err(BusError::Closed) })
    }
}

/// A second API on `db_url`, on a runtime of its own so that shutting the
/// runtime down kills it as a crash would: every task of it (the request
/// holding the key included) stops where it is.
async fn doomed_api(
    db_url: &str,
) -> (
    tokio::runtime::Runtime,
    String,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (reached, reached_rx) = tokio::sync::mpsc::unbounded_channel();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let url = db_url.to_owned();
    rt.spawn(async move {
        let store = cloud_store::Store::connect(&url).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = ApiConfig::for_data_dir(dir.path().to_owned());
        let bus: std::sync::Arc<dyn Bus> = std::sync::Arc::new(StuckBus { reached });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let handle = cloud_api::serve(
            listener,
            AppState::with_bus(store, config, bus),
            std::future::pending(),
        )
        .unwrap();
        addr_tx.send(handle.addr).unwrap();
        // Keep the directory as long as the runtime lives.
        std::future::pending::<()>().await;
        drop(dir);
    });
    let addr = addr_rx.await.unwrap();
    (rt, format!("http://{addr}"), reached_rx)
}

both_backends!(
    a_retry_after_the_api_died_mid_create_gets_the_server,
    |db: TestDb| async move {
        let url = db.url.clone();
        let api = TestApi::start_with(db, |_| {}).await;
        let user = api.account("idem-crash", "cora", "member").await;
        let img =
            cloud_test_utils::upload_image(&user.client, "img", "qcow2", vec![7u8; 64], json!({}))
                .await;
        let body = boot("survivor", &img);

        // The first API takes the key, commits the server, and dies while
        // telling the conductors.
        let (rt, doomed, mut reached) = doomed_api(&url).await;
        let client = Client::new(&doomed).with_token(&user.token);
        let first = tokio::spawn({
            let body = body.clone();
            async move {
                client
                    .request("POST", SERVERS)
                    .header("Idempotency-Key", "boot-crash")
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(&body).unwrap())
                    .send()
                    .await
            }
        });
        tokio::time::timeout(Duration::from_secs(30), reached.recv())
            .await
            .expect("the first create reached the bus")
            .unwrap();
        rt.shutdown_background();
        assert!(first.await.unwrap().is_err(), "the dead API never answered");
        let made = server_ids(&user.client).await;
        assert_eq!(made.len(), 1, "the dead API made the server: {made:?}");

        // The client retries on a live API: the server, at once.
        let started = Instant::now();
        let retry = tokio::time::timeout(
            Duration::from_secs(20),
            post_with_key(&user.client, SERVERS, "boot-crash", &body),
        )
        .await
        .expect("the retry is answered");
        assert_eq!(retry.status, 202, "{}", retry.body);
        assert_eq!(
            retry.body["server"]["id"],
            made[0].as_str(),
            "{}",
            retry.body
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "answered in {:?}",
            started.elapsed()
        );
        assert!(retry.body["server"].get("adminPass").is_none());
        assert!(
            retry
                .header("location")
                .is_some_and(|l| l.ends_with(&format!("/compute/v2.1/servers/{}", made[0]))),
            "{:?}",
            retry.header("location")
        );
        assert_eq!(retry.body["server"]["OS-DCF:diskConfig"], "MANUAL");
        assert_eq!(
            retry.body["server"]["security_groups"],
            json!([{"name": "default"}])
        );
        // Later retries replay that answer; still one server.
        let again = post_with_key(&user.client, SERVERS, "boot-crash", &body).await;
        assert_eq!(again.status, 202, "{}", again.body);
        assert_eq!(again.body["server"]["id"], made[0].as_str());
        assert_eq!(server_ids(&user.client).await, made);
    }
);

both_backends!(
    a_key_whose_owner_died_before_creating_is_taken_over,
    |db: TestDb| async move {
        let api = TestApi::start_with(db, |_| {}).await;
        let user = api.account("idem-dead", "dora", "member").await;
        let img =
            cloud_test_utils::upload_image(&user.client, "img", "qcow2", vec![7u8; 64], json!({}))
                .await;
        let body = boot("phoenix", &img);
        // What an API leaves behind when it dies right after claiming the
        // key: the claim, taken 15 s ago with the lease an API takes,
        // never renewed, nothing created.
        let mut h = Sha256::new();
        h.update(b"POST\n");
        h.update(SERVERS.as_bytes());
        h.update(b"\n");
        h.update(serde_json::to_vec(&body).unwrap());
        let hash = hex::encode(h.finalize());
        let now = Timestamp::now().micros();
        api.db
            .execute(&format!(
                "INSERT INTO idempotency_keys (project_id, user_id, idem_key, \
                 request_hash, owner, lease_until, status, response, created_at) VALUES \
                 ('{}', '{}', 'boot-dead', '{hash}', 'a-request-of-a-dead-api', {}, NULL, \
                 NULL, {})",
                user.project_id,
                user.user_id,
                now - 15_000_000 + LEASE.as_micros() as i64,
                now - 15_000_000
            ))
            .await;

        let started = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(20),
            post_with_key(&user.client, SERVERS, "boot-dead", &body),
        )
        .await
        .expect("the retry is answered");
        assert_eq!(r.status, 202, "{}", r.body);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "answered in {:?}",
            started.elapsed()
        );
        let id = r.body["server"]["id"].as_str().unwrap().to_owned();
        assert!(
            r.body["server"]["adminPass"].is_string(),
            "it ran: {}",
            r.body
        );
        assert_eq!(server_ids(&user.client).await, std::slice::from_ref(&id));
        let again = post_with_key(&user.client, SERVERS, "boot-dead", &body).await;
        assert_eq!(again.status, 202);
        assert_eq!(again.body["server"]["id"], id.as_str());
        assert_eq!(server_ids(&user.client).await, [id]);
    }
);

both_backends!(
    a_renewed_claim_is_kept_and_a_lapsed_one_taken_over,
    |db: TestDb| async move {
        let store = db.store.clone();
        let hold = support::idempotency_hold;
        let t0 = Timestamp::now().micros();
        let lease = LEASE.as_micros() as i64;
        let at = |us: i64| Timestamp::from_micros(t0 + us);
        let claim = |owner: &'static str, now: i64| {
            let store = store.clone();
            let hold = hold(owner);
            async move {
                store
                    .idempotency_claim(
                        &hold,
                        "h",
                        at(now),
                        at(now + lease),
                        at(now - 86_400_000_000),
                    )
                    .await
                    .unwrap()
            }
        };
        assert_eq!(claim("a", 0).await, IdempotencyClaim::Claimed);
        // A's API renews before the lease lapses: past the first lease the
        // key is still A's.
        let renewed = lease * 3 / 4;
        assert!(
            store
                .idempotency_renew(&hold("a"), at(renewed + lease))
                .await
                .unwrap()
        );
        assert_eq!(claim("b", lease + 1).await, IdempotencyClaim::InFlight);
        assert!(
            !store
                .idempotency_renew(&hold("b"), at(2 * lease))
                .await
                .unwrap()
        );
        // A's API dies: once the renewed lease lapses, B takes the key over.
        assert_eq!(
            claim("b", renewed + lease + 1).await,
            IdempotencyClaim::Claimed
        );
        // A, late, can neither keep the key nor record its answer.
        assert!(
            !store
                .idempotency_renew(&hold("a"), at(3 * lease))
                .await
                .unwrap()
        );
        let answer = |owner: &str| IdempotencyRecord {
            hold: hold(owner),
            status: 202,
            response: format!("{{\"by\": \"{owner}\"}}"),
        };
        assert!(!store.idempotency_complete(&answer("a")).await.unwrap());
        assert!(store.idempotency_complete(&answer("b")).await.unwrap());
        assert_eq!(
            claim("c", renewed + lease + 2).await,
            IdempotencyClaim::Completed {
                status: 202,
                response: "{\"by\": \"b\"}".into()
            }
        );
    }
);
