//! The W3C trace context (`traceparent`) that links one user operation's
//! spans across processes.
//!
//! The API's request span starts a trace (or continues the caller's
//! `traceparent` header); every bus message carries the context of the
//! span that sent it, and the receiver opens its handling span as a child
//! of it. The format is `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`
//! (<https://www.w3.org/TR/trace-context/#traceparent-header>).

use std::fmt;

/// One span's place in a trace: the trace it belongs to and its own id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace (never zero).
    pub trace_id: u128,
    /// The span (never zero).
    pub span_id: u64,
}

impl TraceContext {
    /// Parses a `traceparent` value. Anything malformed (wrong lengths,
    /// non-hex digits, all-zero ids, the reserved version `ff`) is `None`:
    /// a bad header starts a new trace instead of failing the request.
    pub fn parse(traceparent: &str) -> Option<TraceContext> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        // Version 00 has exactly four parts; later versions may append more.
        if version.len() != 2
            || version.eq_ignore_ascii_case("ff")
            || (version == "00" && parts.next().is_some())
            || trace.len() != 32
            || span.len() != 16
            || flags.len() != 2
            || ![version, trace, span, flags]
                .iter()
                .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(TraceContext { trace_id, span_id })
    }

    /// The `traceparent` value of this span (always sampled: a span that
    /// exists is exported).
    pub fn traceparent(&self) -> String {
        self.to_string()
    }

    /// The trace id in the 32 lowercase hex digits OTLP and W3C use.
    pub fn trace_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The span id in 16 lowercase hex digits.
    pub fn span_hex(&self) -> String {
        format!("{:016x}", self.span_id)
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{:032x}-{:016x}-01", self.trace_id, self.span_id)
    }
}

/// A new random span id (never zero).
pub fn new_span_id() -> u64 {
    loop {
        let id = rand::random::<u64>();
        if id != 0 {
            return id;
        }
    }
}

/// The trace id of a new trace. An API request id (`req-<uuid>`) becomes
/// the trace id itself, so the id a user sees in `x-openstack-request-id`
/// finds the trace; anything else gets a random one.
pub fn new_trace_id(request_id: Option<&str>) -> u128 {
    let from_request = request_id
        .and_then(|r| r.strip_prefix("req-"))
        .and_then(|u| u.parse::<uuid::Uuid>().ok())
        .map(|u| u.as_u128())
        .filter(|t| *t != 0);
    from_request.unwrap_or_else(|| {
        loop {
            let id = rand::random::<u128>();
            if id != 0 {
                break id;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips() {
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let ctx = TraceContext::parse(tp).unwrap();
        assert_eq!(ctx.trace_hex(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(ctx.span_hex(), "b7ad6b7169203331");
        assert_eq!(ctx.traceparent(), tp);
    }

    #[test]
    fn malformed_traceparents_start_a_new_trace() {
        for bad in [
            "",
            "garbage",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c8031zz-b7ad6b7169203331-01",
            "00-+af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_request_id_is_the_trace_id() {
        let t = new_trace_id(Some("req-0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"));
        assert_eq!(format!("{t:032x}"), "0b1e2c3d4e5f4a6b8c7d9e0f1a2b3c4d");
        assert_ne!(new_trace_id(Some("not-a-request-id")), 0);
    }
}
