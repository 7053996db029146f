//! Span export over OTLP/HTTP (JSON): a tracing layer that gives every
//! span a W3C trace context and ships the finished ones to a collector.
//!
//! Installed by [`crate::telemetry::init_tracing`] only when an endpoint is
//! configured, so a service that does not export pays nothing. Why our own
//! layer rather than the `opentelemetry` crates: docs/adr/0010-tracing-export.md.
//!
//! How spans get their place in a trace:
//! * a span with a `traceparent` field (the API's request span when the
//!   caller sent the header; every service's `message` span) continues
//!   that remote context: same trace, the sender's span as parent;
//! * any other span is a child of the enclosing span;
//! * a span with neither starts a trace, whose id is the `request_id`
//!   field's uuid when it has one (so `x-openstack-request-id` finds it).
//!
//! The fields `otel.name` and `otel.kind` (`server`, `client`, `producer`,
//! `consumer`, `internal`) name the exported span and set its kind, as
//! `tracing-opentelemetry` spells them; every other field is an attribute.
//! Each `sqlx::query` event (sqlx reports every statement) inside a span
//! becomes a finished child span of it, so database statements show up
//! in the tree without touching the store; an ERROR event marks its span
//! failed.

mod encode;
mod sender;

pub(crate) use sender::{Resource, Sender};

use crate::trace_context::{TraceContext, new_span_id, new_trace_id};
use std::fmt;
use std::time::{Duration, SystemTime};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// An attribute value, in the four OTLP scalar types we produce.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AttrValue {
    /// `stringValue`.
    Str(String),
    /// `intValue`.
    Int(i64),
    /// `doubleValue`.
    Float(f64),
    /// `boolValue`.
    Bool(bool),
}

/// OTLP's `Span.SpanKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpanKind {
    Internal = 1,
    Server = 2,
    Client = 3,
    Producer = 4,
    Consumer = 5,
}

impl SpanKind {
    fn parse(s: &str) -> Option<SpanKind> {
        Some(match s.to_ascii_lowercase().as_str() {
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => return None,
        })
    }
}

/// A span that ended, ready to be encoded.
#[derive(Clone, Debug)]
pub(crate) struct FinishedSpan {
    pub ctx: TraceContext,
    pub parent: Option<u64>,
    pub name: String,
    pub kind: SpanKind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// Set when an ERROR event happened inside: OTLP status `ERROR`.
    pub error: Option<String>,
}

/// What the layer keeps in a live span's extensions.
struct Recording {
    ctx: TraceContext,
    parent: Option<u64>,
    name: Option<String>,
    kind: SpanKind,
    start: SystemTime,
    attributes: Vec<(&'static str, AttrValue)>,
    error: Option<String>,
}

impl Recording {
    fn absorb(&mut self, f: Fields) {
        if f.name.is_some() {
            self.name = f.name;
        }
        if let Some(k) = f.kind {
            self.kind = k;
        }
        for (k, v) in f.attributes {
            match self.attributes.iter_mut().find(|(key, _)| *key == k) {
                Some(slot) => slot.1 = v,
                None => self.attributes.push((k, v)),
            }
        }
    }
}

/// The layer. Cheap per span: a few allocations for the attributes and a
/// non-blocking hand-off to the sender thread when the span closes.
pub(crate) struct SpanRecorder {
    sender: Sender,
}

impl SpanRecorder {
    /// A recorder shipping finished spans through `sender`.
    pub(crate) fn new(sender: Sender) -> Self {
        SpanRecorder { sender }
    }
}

impl<S> Layer<S> for SpanRecorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut f = Fields::default();
        attrs.record(&mut f);
        let remote = f.traceparent.as_deref().and_then(TraceContext::parse);
        let local = || {
            span.parent()
                .and_then(|p| p.extensions().get::<Recording>().map(|r| r.ctx))
        };
        let (trace_id, parent, kind) = match remote {
            // The receiving side of a message (or of an HTTP request from a
            // traced caller, whose span says `otel.kind = "server"`).
            Some(r) => (r.trace_id, Some(r.span_id), SpanKind::Consumer),
            None => match local() {
                Some(l) => (l.trace_id, Some(l.span_id), SpanKind::Internal),
                None => (
                    new_trace_id(f.request_id.as_deref()),
                    None,
                    SpanKind::Internal,
                ),
            },
        };
        let mut rec = Recording {
            ctx: TraceContext {
                trace_id,
                span_id: new_span_id(),
            },
            parent,
            name: None,
            kind,
            start: SystemTime::now(),
            attributes: Vec::new(),
            error: None,
        };
        rec.absorb(f);
        span.extensions_mut().insert(rec);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut f = Fields::default();
        values.record(&mut f);
        if let Some(rec) = span.extensions_mut().get_mut::<Recording>() {
            rec.absorb(f);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            // Statements and errors outside any operation (heartbeats,
            // start-up) would each be a trace of their own: noise.
            return;
        };
        let meta = event.metadata();
        if meta.target() == "sqlx::query" {
            let Some(parent) = span.extensions().get::<Recording>().map(|r| r.ctx) else {
                return;
            };
            let mut f = Fields::default();
            event.record(&mut f);
            self.sender.send(statement_span(parent, f));
        } else if *meta.level() == Level::ERROR {
            let mut f = Fields::default();
            event.record(&mut f);
            if let Some(rec) = span.extensions_mut().get_mut::<Recording>() {
                rec.error = Some(f.message.unwrap_or_else(|| meta.name().to_owned()));
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(rec) = span.extensions_mut().remove::<Recording>() else {
            return;
        };
        self.sender.send(FinishedSpan {
            ctx: rec.ctx,
            parent: rec.parent,
            name: rec.name.unwrap_or_else(|| span.name().to_owned()),
            kind: rec.kind,
            start: rec.start,
            end: SystemTime::now(),
            attributes: rec.attributes,
            error: rec.error,
        });
    }
}

/// A `sqlx::query` event (emitted when a statement finished) as a client
/// span under `parent`, named after the statement's first words.
fn statement_span(parent: TraceContext, f: Fields) -> FinishedSpan {
    let end = SystemTime::now();
    let field = |name: &str| {
        f.attributes
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    };
    let elapsed = match field("elapsed_secs") {
        Some(AttrValue::Float(s)) if s.is_finite() && *s >= 0.0 => Duration::from_secs_f64(*s),
        _ => Duration::ZERO,
    };
    let text = |name: &str| match field(name) {
        Some(AttrValue::Str(s)) => s.trim().to_owned(),
        _ => String::new(),
    };
    let summary = text("summary");
    // sqlx leaves `db.statement` empty when the summary is the whole statement.
    let statement = Some(text("db.statement"))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| summary.clone());
    let mut attributes = vec![("db.statement", AttrValue::Str(statement))];
    for key in ["rows_affected", "rows_returned"] {
        if let Some(v) = field(key) {
            attributes.push((key, v.clone()));
        }
    }
    FinishedSpan {
        ctx: TraceContext {
            trace_id: parent.trace_id,
            span_id: new_span_id(),
        },
        parent: Some(parent.span_id),
        name: summary.trim_end_matches(" …").to_owned(),
        kind: SpanKind::Client,
        start: end.checked_sub(elapsed).unwrap_or(end),
        end,
        attributes,
        error: None,
    }
}

/// The context of the innermost span this layer records around the
/// caller, as a `traceparent` value; `None` when nothing is exported.
pub(crate) fn current_traceparent() -> Option<String> {
    tracing::Span::current()
        .with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
            let span = registry.span(id)?;
            span.scope().find_map(|s| {
                s.extensions()
                    .get::<Recording>()
                    .map(|r| r.ctx.traceparent())
            })
        })
        .flatten()
}

/// Collects a span's or event's fields, setting aside the ones that steer
/// the export.
#[derive(Default)]
struct Fields {
    attributes: Vec<(&'static str, AttrValue)>,
    traceparent: Option<String>,
    name: Option<String>,
    kind: Option<SpanKind>,
    request_id: Option<String>,
    message: Option<String>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: AttrValue) {
        let text = || match &value {
            AttrValue::Str(s) => s.clone(),
            other => format!("{other:?}"),
        };
        match field.name() {
            "traceparent" => self.traceparent = Some(text()),
            "otel.name" => self.name = Some(text()),
            "otel.kind" => self.kind = SpanKind::parse(&text()),
            "message" => self.message = Some(text()),
            name => {
                if name == "request_id" {
                    self.request_id = Some(text());
                }
                self.attributes.push((name, value));
            }
        }
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, AttrValue::Float(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, AttrValue::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let v = i64::try_from(value)
            .map(AttrValue::Int)
            .unwrap_or_else(|_| AttrValue::Str(value.to_string()));
        self.put(field, v);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, AttrValue::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, AttrValue::Str(value.to_owned()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, AttrValue::Str(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, AttrValue::Str(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// Runs `f` under a subscriber with only the recorder; returns the spans.
    fn record(f: impl FnOnce()) -> Vec<FinishedSpan> {
        let (sender, rx) = Sender::channel();
        let subscriber = tracing_subscriber::registry().with(SpanRecorder::new(sender));
        tracing::subscriber::with_default(subscriber, f);
        rx.try_iter().collect()
    }

    fn named<'a>(spans: &'a [FinishedSpan], name: &str) -> &'a FinishedSpan {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
    }

    #[test]
    fn spans_form_a_tree_rooted_at_the_request() {
        let mut carried = None;
        let spans = record(|| {
            let req = tracing::info_span!(
                "request",
                request_id = "req-0b1e2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                otel.name = "POST /servers",
                otel.kind = "server"
            );
            req.in_scope(|| {
                tracing::debug!(target: "sqlx::query", summary = "SELECT * FROM instances", db.statement = "", rows_affected = 0u64, rows_returned = 1u64, elapsed_secs = 0.002);
                tracing::info_span!("publish").in_scope(|| carried = current_traceparent());
                tracing::error!("it broke");
            });
        });
        let req = named(&spans, "POST /servers");
        assert_eq!(req.parent, None);
        assert_eq!(req.kind, SpanKind::Server);
        assert_eq!(req.ctx.trace_hex(), "0b1e2c3d4e5f4a6b8c7d9e0f1a2b3c4d");
        assert_eq!(req.error.as_deref(), Some("it broke"));
        let stmt = named(&spans, "SELECT * FROM instances");
        assert_eq!(stmt.parent, Some(req.ctx.span_id));
        assert_eq!(stmt.kind, SpanKind::Client);
        assert!(stmt.end.duration_since(stmt.start).unwrap() >= Duration::from_millis(2));
        assert!(stmt.attributes.contains(&(
            "db.statement",
            AttrValue::Str("SELECT * FROM instances".into())
        )));
        let publish = named(&spans, "publish");
        assert_eq!(publish.parent, Some(req.ctx.span_id));
        assert_eq!(publish.ctx.trace_id, req.ctx.trace_id);
        assert_eq!(carried, Some(publish.ctx.traceparent()));
    }

    #[test]
    fn a_message_span_continues_the_senders_context() {
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let spans = record(|| {
            tracing::info_span!("message", traceparent = tp).in_scope(|| {
                tracing::info_span!("step").in_scope(|| {});
            });
            tracing::info_span!("message", traceparent = "").in_scope(|| {});
        });
        let continued: Vec<_> = spans.iter().filter(|s| s.name == "message").collect();
        assert_eq!(continued.len(), 2);
        let m = continued
            .iter()
            .find(|s| s.parent.is_some())
            .expect("the traced message");
        assert_eq!(m.ctx.trace_hex(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(m.parent, Some(0xb7ad6b7169203331));
        assert_eq!(m.kind, SpanKind::Consumer);
        assert_eq!(named(&spans, "step").parent, Some(m.ctx.span_id));
        // An empty traceparent starts a trace of its own.
        assert!(
            continued
                .iter()
                .any(|s| s.parent.is_none()
                    && s.ctx.trace_hex() != "0af7651916cd43dd8448eb211c80319c")
        );
    }

    #[test]
    fn statements_outside_any_span_are_not_exported() {
        let spans = record(|| {
            tracing::debug!(target: "sqlx::query", summary = "SELECT 1", elapsed_secs = 0.0);
        });
        assert!(spans.is_empty(), "{spans:#?}");
    }
}
