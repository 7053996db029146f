//! How an [`AmqpBus`](super::AmqpBus) reaches its brokers and lays out its
//! queues: broker addresses (several, for a cluster), queue type, TLS.

use std::path::PathBuf;
use std::time::Duration;

/// How to reach the broker and how to name things on it.
#[derive(Clone)]
pub struct AmqpConfig {
    /// AMQP URLs of the broker's nodes, e.g.
    /// `amqp://guest:guest@127.0.0.1:5672/%2f` or `amqps://...` (TLS, see
    /// [`AmqpConfig::tls`]). The bus connects to the first one that
    /// answers; when that connection is lost it tries the next one first,
    /// so that a cluster node going down moves its clients to the others.
    /// Every node of a cluster serves every queue, so any order works.
    pub urls: Vec<String>,
    /// Prefix of every queue and exchange, so that several clouds or test
    /// runs can share one broker (`cloud` gives `cloud.conductor`).
    pub prefix: String,
    /// Unacknowledged deliveries a consumer may hold at once: bounds the
    /// work one replica takes ahead of the others.
    pub prefetch: u16,
    /// How long `cast` (and a reply) keeps retrying while the broker is
    /// unreachable before giving up with [`BusError::Unavailable`](crate::BusError).
    pub publish_timeout: Duration,
    /// If set, work queues are deleted by the broker after being unused
    /// this long (`x-expires`). For tests, so nothing is left behind; never
    /// in production, where a queue must keep its messages while its
    /// consumer is down. Every user of a queue must agree on this value.
    pub queue_expires: Option<Duration>,
    /// What kind of queue work queues (and reply queues) are. Every user of
    /// a queue must agree on it: the broker refuses to declare an existing
    /// queue with another type.
    pub queue_type: QueueType,
    /// Certificates for `amqps://` URLs: the CA that signed the broker's
    /// certificate and, if the broker asks for one, our client certificate.
    pub tls: TlsFiles,
    /// The connection name shown by `rabbitmqctl list_connections`.
    pub connection_name: String,
}

/// The RabbitMQ queue type of work and reply queues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Classic queues: a queue lives on one node. Right for a single
    /// broker (the all-in-one, a development machine), where a quorum
    /// queue would only add Raft bookkeeping without any replica to fail
    /// over to; in a cluster, a classic queue's messages are unavailable
    /// (and, for transient ones, lost) while its node is down. The default,
    /// since most installations start on a single node.
    #[default]
    Classic,
    /// Quorum queues (`x-queue-type: quorum`): replicated by Raft over the
    /// cluster's nodes, so a queue and its messages survive the loss of a
    /// minority of nodes. For a RabbitMQ cluster of three or more nodes.
    Quorum,
}

impl QueueType {
    /// The value of `x-queue-type`, or `None` to leave it out: classic
    /// queues are declared without it, as before quorum queues existed, so
    /// queues declared by older versions stay equivalent.
    pub(crate) fn argument(self) -> Option<&'static str> {
        match self {
            QueueType::Classic => None,
            QueueType::Quorum => Some("quorum"),
        }
    }
}

/// PEM files for TLS (`amqps://`). Read again on every connection, so
/// renewed certificates are picked up at the next reconnection.
#[derive(Clone, Debug, Default)]
pub struct TlsFiles {
    /// CA certificate(s) trusted for the broker's certificate, in addition
    /// to the system's trust store. Needed for a private CA.
    pub ca_file: Option<PathBuf>,
    /// Our certificate (chain), for brokers that verify clients
    /// (`ssl_options.verify = verify_peer`). Needs [`TlsFiles::key_file`].
    pub cert_file: Option<PathBuf>,
    /// The PKCS#8 private key of [`TlsFiles::cert_file`], unencrypted.
    pub key_file: Option<PathBuf>,
}

impl AmqpConfig {
    /// A configuration with defaults for everything but the URL and prefix.
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> AmqpConfig {
        AmqpConfig {
            urls: vec![url.into()],
            prefix: prefix.into(),
            ..AmqpConfig::default()
        }
    }
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            urls: vec!["amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()],
            prefix: "cloud".to_owned(),
            prefetch: 16,
            publish_timeout: Duration::from_secs(30),
            queue_expires: None,
            queue_type: QueueType::default(),
            tls: TlsFiles::default(),
            connection_name: "cloud".to_owned(),
        }
    }
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| super::wire::redact(u)).collect();
        f.debug_struct("AmqpConfig")
            .field("urls", &urls)
            .field("prefix", &self.prefix)
            .field("prefetch", &self.prefetch)
            .field("publish_timeout", &self.publish_timeout)
            .field("queue_expires", &self.queue_expires)
            .field("queue_type", &self.queue_type)
            .field("tls", &self.tls)
            .field("connection_name", &self.connection_name)
            .finish()
    }
}
