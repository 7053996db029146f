//! The envelope every message travels in.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// Where new envelopes take their `traceparent` from (the sending span's
/// context), when the process exports spans.
static TRACE_CONTEXT: OnceLock<fn() -> Option<String>> = OnceLock::new();

/// Makes every envelope created from now on carry the W3C trace context
/// `current` returns (the context of the span that creates it), so the
/// receiver's span continues the sender's trace. Set once by the tracing
/// set-up of a process that exports spans (later calls are ignored); a
/// process that does not pays nothing.
pub fn set_trace_context_source(current: fn() -> Option<String>) {
    let _ = TRACE_CONTEXT.set(current);
}

/// Metadata plus a JSON body. The request ids let one user request be
/// followed through every service's logs; `traceparent` carries the W3C
/// trace context of the span that sent it ([`set_trace_context_source`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Message type (`build_instance`, `select_destinations`, ...).
    pub kind: String,
    /// Version of that message type's body.
    pub version: u32,
    /// Id of the API request that caused this message (`req-...`).
    pub request_id: String,
    /// Id shared by every request of one user operation, if the client gave one.
    pub global_request_id: Option<String>,
    /// W3C trace context: the receiver's span is a child of this one.
    pub traceparent: Option<String>,
    /// When the message was sent, microseconds since the epoch.
    pub sent_at: i64,
    /// The body.
    pub body: serde_json::Value,
}

impl Envelope {
    /// A message of `kind` (version 1) with `body`.
    pub fn new<T: Serialize>(
        kind: &str,
        request_id: &str,
        body: &T,
    ) -> Result<Envelope, crate::BusError> {
        Ok(Envelope {
            kind: kind.to_owned(),
            version: 1,
            request_id: request_id.to_owned(),
            global_request_id: None,
            traceparent: TRACE_CONTEXT.get().and_then(|current| current()),
            sent_at: cloud_model::Timestamp::now().micros(),
            body: serde_json::to_value(body).map_err(|e| crate::BusError::Codec(e.to_string()))?,
        })
    }

    /// Decodes the body.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, crate::BusError> {
        serde_json::from_value(self.body.clone())
            .map_err(|e| crate::BusError::Codec(format!("{} body: {e}", self.kind)))
    }

    /// Serializes the envelope for the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses an envelope from the wire.
    pub fn from_bytes(b: &[u8]) -> Result<Envelope, crate::BusError> {
        serde_json::from_slice(b).map_err(|e| crate::BusError::Codec(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_envelopes_carry_the_senders_trace_context() {
        fn current() -> Option<String> {
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into())
        }
        set_trace_context_source(current);
        let env = Envelope::new("ping", "req-1", &1).unwrap();
        assert_eq!(env.traceparent, current());
    }
}
