//! Finished spans as an OTLP `ExportTraceServiceRequest` in the JSON
//! encoding of OTLP/HTTP (<https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding>):
//! field names in lowerCamelCase, trace and span ids in hex, enums as
//! numbers, 64-bit integers as decimal strings.

use super::{AttrValue, FinishedSpan, Resource};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

/// The instrumentation scope every span is reported under.
const SCOPE: &str = "cloud";

/// One request body carrying `spans` of the process described by `resource`.
pub(crate) fn export_request(resource: &Resource, spans: &[FinishedSpan]) -> Value {
    json!({
        "resourceSpans": [{
            "resource": {"attributes": attributes(&resource.attributes)},
            "scopeSpans": [{
                "scope": {"name": SCOPE, "version": env!("CARGO_PKG_VERSION")},
                "spans": spans.iter().map(span).collect::<Vec<_>>(),
            }],
        }],
    })
}

fn span(s: &FinishedSpan) -> Value {
    let mut v = json!({
        "traceId": s.ctx.trace_hex(),
        "spanId": s.ctx.span_hex(),
        "name": s.name,
        "kind": s.kind as i32,
        "startTimeUnixNano": nanos(s.start),
        "endTimeUnixNano": nanos(s.end),
        "attributes": attributes(&s.attributes),
    });
    if let Some(p) = s.parent {
        v["parentSpanId"] = json!(format!("{p:016x}"));
    }
    if let Some(message) = &s.error {
        // STATUS_CODE_ERROR.
        v["status"] = json!({"code": 2, "message": message});
    }
    v
}

fn attributes(attrs: &[(&'static str, AttrValue)]) -> Vec<Value> {
    attrs
        .iter()
        .map(|(key, value)| json!({"key": key, "value": any_value(value)}))
        .collect()
}

fn any_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => json!({"stringValue": s}),
        AttrValue::Int(i) => json!({"intValue": i.to_string()}),
        AttrValue::Float(f) if f.is_finite() => json!({"doubleValue": f}),
        AttrValue::Float(f) => json!({"stringValue": f.to_string()}),
        AttrValue::Bool(b) => json!({"boolValue": b}),
    }
}

fn nanos(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::SpanKind;
    use crate::trace_context::TraceContext;
    use std::time::Duration;

    #[test]
    fn a_span_is_encoded_as_otlp_json() {
        let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_001);
        let s = FinishedSpan {
            ctx: TraceContext {
                trace_id: 0x0af7651916cd43dd8448eb211c80319c,
                span_id: 0xb7ad6b7169203331,
            },
            parent: Some(1),
            name: "message".into(),
            kind: SpanKind::Consumer,
            start,
            end: start + Duration::from_millis(2),
            attributes: vec![
                ("kind", AttrValue::Str("build_instance".into())),
                ("rows", AttrValue::Int(3)),
                ("ok", AttrValue::Bool(true)),
            ],
            error: Some("boom".into()),
        };
        let resource = Resource {
            attributes: vec![("service.name", AttrValue::Str("cloud-conductor".into()))],
        };
        let v = export_request(&resource, &[s]);
        let rs = &v["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "cloud-conductor"}})
        );
        let span = &rs["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(span["spanId"], "b7ad6b7169203331");
        assert_eq!(span["parentSpanId"], "0000000000000001");
        assert_eq!(span["kind"], 5);
        assert_eq!(span["startTimeUnixNano"], "1700000000000000001");
        assert_eq!(span["endTimeUnixNano"], "1700000000002000001");
        assert_eq!(span["attributes"][1]["value"], json!({"intValue": "3"}));
        assert_eq!(span["attributes"][2]["value"], json!({"boolValue": true}));
        assert_eq!(span["status"], json!({"code": 2, "message": "boom"}));
    }
}
