//! How our names and envelopes map onto AMQP: prefixed queue and exchange
//! names, and message properties.
//!
//! The JSON envelope in the body is the source of truth; the properties
//! repeat its metadata so that broker tools (management UI, tracing
//! plugins, `rabbitmqadmin get`) show what a message is without decoding it.

use super::QueueType;
use crate::{BusError, Envelope};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// Persistent delivery mode: the broker writes the message to disk.
const PERSISTENT: u8 = 2;
/// Transient delivery mode, for calls whose caller is gone after a restart.
const TRANSIENT: u8 = 1;

/// Every queue and exchange name of one bus, derived from its prefix so that
/// several clouds (or test runs) can share one broker.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    prefix: String,
}

impl Names {
    pub(crate) fn new(prefix: &str) -> Names {
        Names {
            prefix: prefix.trim_end_matches('.').to_owned(),
        }
    }

    fn full(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The topic exchange every work queue is bound to.
    pub(crate) fn work_exchange(&self) -> String {
        self.full("work")
    }

    /// The broker name of work queue `queue`.
    pub(crate) fn queue(&self, queue: &str) -> Result<ShortString, BusError> {
        if queue.is_empty() {
            return Err(BusError::Codec("empty queue name".to_owned()));
        }
        short(self.full(queue), "queue name")
    }

    /// The fanout exchange of broadcast topic `topic`.
    pub(crate) fn fanout(&self, topic: &str) -> Result<ShortString, BusError> {
        if topic.is_empty() {
            return Err(BusError::Codec("empty topic name".to_owned()));
        }
        short(self.full(&format!("fanout.{topic}")), "topic name")
    }

    /// A fresh name for one bus's reply queue.
    pub(crate) fn reply_queue(&self) -> String {
        self.full(&format!("reply.{}", uuid::Uuid::new_v4()))
    }
}

/// A short string (at most 255 bytes), or a codec error naming `what`.
pub(crate) fn short(s: String, what: &str) -> Result<ShortString, BusError> {
    let len = s.len();
    ShortString::try_new(s)
        .map_err(|_| BusError::Codec(format!("{what} is {len} bytes long, at most 255 allowed")))
}

/// How a message is published: a durable cast or a call with its reply
/// address and lifetime.
pub(crate) enum Kind<'a> {
    /// A cast: persistent.
    Cast,
    /// A call: transient, expiring with the caller's timeout.
    Call {
        reply_to: &'a str,
        correlation_id: &'a str,
        ttl_ms: u128,
    },
    /// A reply to a call, or a broadcast: transient.
    Transient { correlation_id: Option<&'a str> },
}

/// The AMQP properties of `msg`.
pub(crate) fn properties(msg: &Envelope, kind: Kind<'_>) -> BasicProperties {
    let mut headers = FieldTable::default();
    let mut put = |k: &str, v: &str| {
        headers.insert(k.into(), AMQPValue::LongString(LongString::from(v)));
    };
    put("request_id", &msg.request_id);
    if let Some(g) = &msg.global_request_id {
        put("global_request_id", g);
    }
    if let Some(t) = &msg.traceparent {
        put("traceparent", t);
    }
    headers.insert(
        "version".into(),
        AMQPValue::LongLongInt(i64::from(msg.version)),
    );
    let mut props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_message_id(uuid::Uuid::new_v4().to_string().into())
        .with_timestamp(u64::try_from(msg.sent_at / 1_000_000).unwrap_or_default())
        .with_headers(headers);
    if let Ok(kind) = ShortString::try_new(msg.kind.clone()) {
        props = props.with_type(kind);
    }
    match kind {
        Kind::Cast => props.with_delivery_mode(PERSISTENT),
        Kind::Call {
            reply_to,
            correlation_id,
            ttl_ms,
        } => props
            .with_delivery_mode(TRANSIENT)
            .with_reply_to(reply_to.into())
            .with_correlation_id(correlation_id.into())
            .with_expiration(ttl_ms.max(1).to_string().into()),
        Kind::Transient { correlation_id } => {
            let props = props.with_delivery_mode(TRANSIENT);
            match correlation_id.and_then(|c| ShortString::try_new(c).ok()) {
                Some(c) => props.with_correlation_id(c),
                None => props,
            }
        }
    }
}

/// The arguments of a work or reply queue: its type (quorum queues are
/// declared with `x-queue-type`, classic ones without it) and an idle
/// expiry if configured.
pub(crate) fn queue_arguments(
    expires: Option<std::time::Duration>,
    queue_type: QueueType,
) -> FieldTable {
    let mut args = FieldTable::default();
    if let Some(t) = queue_type.argument() {
        args.insert("x-queue-type".into(), AMQPValue::LongString(t.into()));
    }
    if let Some(e) = expires {
        let ms = i64::try_from(e.as_millis()).unwrap_or(i64::MAX).max(1);
        args.insert("x-expires".into(), AMQPValue::LongLongInt(ms));
    }
    args
}

/// `url` without its password, for logs and `Debug`.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed() {
        let n = Names::new("t-1.");
        assert_eq!(n.work_exchange(), "t-1.work");
        assert_eq!(n.queue("compute.h1").unwrap().as_str(), "t-1.compute.h1");
        assert_eq!(n.fanout("hosts").unwrap().as_str(), "t-1.fanout.hosts");
        assert!(n.reply_queue().starts_with("t-1.reply."));
        assert_eq!(
            Names::new("").queue("conductor").unwrap().as_str(),
            "conductor"
        );
    }

    #[test]
    fn overlong_and_empty_names_are_errors() {
        let n = Names::new("cloud");
        assert!(matches!(n.queue(&"x".repeat(300)), Err(BusError::Codec(_))));
        assert!(matches!(n.queue(""), Err(BusError::Codec(_))));
        assert!(matches!(n.fanout(""), Err(BusError::Codec(_))));
    }

    #[test]
    fn quorum_queues_say_so_and_classic_ones_say_nothing() {
        let q = queue_arguments(None, QueueType::Quorum);
        assert_eq!(
            q.inner().get("x-queue-type"),
            Some(&AMQPValue::LongString("quorum".into()))
        );
        let c = queue_arguments(Some(std::time::Duration::from_secs(5)), QueueType::Classic);
        assert!(!c.inner().contains_key("x-queue-type"));
        assert_eq!(
            c.inner().get("x-expires"),
            Some(&AMQPValue::LongLongInt(5000))
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }

    #[test]
    fn properties_carry_the_metadata() {
        let mut env = Envelope::new("build", "req-1", &serde_json::json!({})).unwrap();
        env.traceparent = Some("00-abc-def-01".into());
        let p = properties(&env, Kind::Cast);
        assert_eq!(p.delivery_mode(), &Some(PERSISTENT));
        assert_eq!(p.kind().as_ref().map(|k| k.as_str()), Some("build"));
        let h = p.headers().clone().unwrap_or_default();
        assert!(h.inner().contains_key("traceparent"));
        assert!(h.inner().contains_key("request_id"));
        let p = properties(
            &env,
            Kind::Call {
                reply_to: "r",
                correlation_id: "c",
                ttl_ms: 5000,
            },
        );
        assert_eq!(p.expiration().as_ref().map(|e| e.as_str()), Some("5000"));
        assert_eq!(p.correlation_id().as_ref().map(|e| e.as_str()), Some("c"));
    }
}
