//! Span export: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, one
//! `POST /servers` is one trace across the API, the conductor, the
//! scheduler and the compute agent (each a process of its own), its spans
//! linked by the `traceparent` the bus messages carry, with the database
//! statements and the messages as child spans. The collector is an
//! OTLP/HTTP receiver started by the test.

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use cloud_e2e::processes::ProcessPlane;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What an OTLP/HTTP JSON collector received, span by span.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Span>>>);

/// One exported span, flattened from its `ExportTraceServiceRequest`.
#[derive(Clone, Debug)]
struct Span {
    service: String,
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    name: String,
    kind: i64,
    attributes: HashMap<String, Value>,
}

impl Span {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .get(key)
            .and_then(|v| v["stringValue"].as_str())
    }

    fn is_statement(&self) -> bool {
        self.kind == 3 && self.attributes.contains_key("db.statement")
    }
}

fn string_attributes(v: &Value) -> HashMap<String, Value> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| Some((a["key"].as_str()?.to_owned(), a["value"].clone())))
        .collect()
}

async fn collect(State(r): State<Received>, Json(body): Json<Value>) -> Json<Value> {
    let mut spans = r.0.lock().unwrap();
    for rs in body["resourceSpans"].as_array().into_iter().flatten() {
        let resource = string_attributes(&rs["resource"]["attributes"]);
        let service = resource["service.name"]["stringValue"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                spans.push(Span {
                    service: service.clone(),
                    trace_id: s["traceId"].as_str().unwrap_or("").to_owned(),
                    span_id: s["spanId"].as_str().unwrap_or("").to_owned(),
                    parent: s["parentSpanId"]
                        .as_str()
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned),
                    name: s["name"].as_str().unwrap_or("").to_owned(),
                    kind: s["kind"].as_i64().unwrap_or(0),
                    attributes: string_attributes(&s["attributes"]),
                });
            }
        }
    }
    Json(json!({}))
}

/// Starts the receiver; returns its endpoint (`http://127.0.0.1:<port>`).
async fn receiver() -> (String, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(collect))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

/// The spans of `trace_id` once no new one arrived for two seconds
/// (every service's sender flushes within a fraction of that).
async fn settled_trace(received: &Received, trace_id: &str) -> Vec<Span> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (0, Instant::now());
    loop {
        let spans: Vec<Span> = received
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect();
        if spans.len() != last.0 {
            last = (spans.len(), Instant::now());
        } else if !spans.is_empty() && last.1.elapsed() > Duration::from_secs(2) {
            return spans;
        }
        assert!(
            Instant::now() < deadline,
            "the trace did not settle: {spans:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The one span of `service` named `name` whose `key` attribute is `value`.
fn find<'a>(spans: &'a [Span], service: &str, name: &str, key: &str, value: &str) -> &'a Span {
    let found: Vec<_> = spans
        .iter()
        .filter(|s| s.service == service && s.name == name && s.attr(key) == Some(value))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "want one {service} span {name} with {key}={value}: {spans:#?}"
    );
    found[0]
}

fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.parent.as_deref() == Some(parent.span_id.as_str()))
        .collect()
}

/// The trace as an indented tree, one span a line.
fn render(spans: &[Span]) -> String {
    fn walk(spans: &[Span], s: &Span, depth: usize, out: &mut String) {
        let what = s
            .attr("kind")
            .or(s.attr("message.kind"))
            .or(s
                .attr("db.statement")
                .map(|q| q.lines().next().unwrap_or("")))
            .unwrap_or("");
        out.push_str(&format!(
            "{:indent$}{} [{}] {} {}\n",
            "",
            s.name,
            s.service,
            s.kind,
            what,
            indent = depth * 2
        ));
        for c in children(spans, s) {
            walk(spans, c, depth + 1, out);
        }
    }
    let mut out = String::new();
    for root in spans.iter().filter(|s| {
        s.parent
            .as_ref()
            .is_none_or(|p| !spans.iter().any(|o| &o.span_id == p))
    }) {
        walk(spans, root, 0, &mut out);
    }
    out
}

/// `child`'s parent is `parent` (the assertion names both on failure).
fn assert_child(child: &Span, parent: &Span) {
    assert_eq!(
        child.parent.as_deref(),
        Some(parent.span_id.as_str()),
        "{child:#?} is not a child of {parent:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_boot_is_one_trace_across_every_service() {
    let (endpoint, received) = receiver().await;
    let plane = ProcessPlane::start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)]).await;
    let (r, _) = plane.boot_active("traced-vm").await;
    // The request id the user sees names the trace.
    let request_id = r.header("x-openstack-request-id").unwrap();
    let trace_id = request_id.trim_start_matches("req-").replace('-', "");
    let spans = settled_trace(&received, &trace_id).await;
    // Shown when the test fails (and with --no-capture).
    eprintln!("{}", render(&spans));

    // One tree: a single root, the API's POST /servers, and every other
    // span's parent in the trace.
    let roots: Vec<_> = spans.iter().filter(|s| s.parent.is_none()).collect();
    assert_eq!(roots.len(), 1, "one root wanted: {roots:#?}");
    let root = roots[0];
    assert_eq!(root.service, "cloud-api");
    assert_eq!(root.kind, 2, "the request is a server span");
    assert!(
        root.name.starts_with("POST ") && root.name.ends_with("/servers"),
        "{root:#?}"
    );
    assert_eq!(root.attr("request_id"), Some(request_id));
    for s in &spans {
        if let Some(p) = &s.parent {
            assert!(
                spans.iter().any(|o| &o.span_id == p),
                "the parent of {s:#?} is not in the trace"
            );
        }
    }
    for service in [
        "cloud-api",
        "cloud-conductor",
        "cloud-scheduler",
        "cloud-compute",
    ] {
        assert!(
            spans.iter().any(|s| s.service == service),
            "no span from {service}"
        );
    }

    // The API wrote the server with statements under its request, then
    // sent the build to the conductors.
    assert!(
        children(&spans, root).iter().any(|s| s.is_statement()),
        "no database statement under the request: {spans:#?}"
    );
    let cast = find(
        &spans,
        "cloud-api",
        "conductor publish",
        "message.kind",
        "build_instance",
    );
    assert_child(cast, root);
    assert_eq!(cast.kind, 4, "a cast is a producer span");
    let build = find(
        &spans,
        "cloud-conductor",
        "message",
        "kind",
        "build_instance",
    );
    assert_child(build, cast);
    assert_eq!(build.kind, 5, "handling a message is a consumer span");

    // The conductor asked a scheduler, which read and claimed in the database.
    let ask = find(
        &spans,
        "cloud-conductor",
        "scheduler call",
        "message.kind",
        "select_destinations",
    );
    let select = find(
        &spans,
        "cloud-scheduler",
        "message",
        "kind",
        "select_destinations",
    );
    assert_child(select, ask);
    assert!(
        children(&spans, select).iter().any(|s| s.is_statement()),
        "no database statement under the scheduler's message"
    );
    let in_build = |s: &Span| {
        let mut cur = s;
        while let Some(p) = &cur.parent {
            if p == &build.span_id {
                return true;
            }
            cur = spans.iter().find(|o| &o.span_id == p).unwrap();
        }
        false
    };
    assert!(in_build(ask), "the scheduler call is not part of the build");

    // The conductor told the host to spawn; the agent reported back and the
    // conductor recorded the server ACTIVE, all in the same trace.
    let spawn_cast = find(
        &spans,
        "cloud-conductor",
        "compute.proc-host publish",
        "message.kind",
        "spawn",
    );
    assert!(in_build(spawn_cast), "the spawn is not part of the build");
    let spawn = find(&spans, "cloud-compute", "message", "kind", "spawn");
    assert_child(spawn, spawn_cast);
    let report = spans
        .iter()
        .find(|s| {
            s.service == "cloud-conductor"
                && s.name == "message"
                && s.attr("kind") == Some("instance_event")
        })
        .unwrap_or_else(|| panic!("no instance_event handled in the trace: {spans:#?}"));
    let report_cast = spans
        .iter()
        .find(|s| Some(s.span_id.as_str()) == report.parent.as_deref())
        .unwrap();
    assert_eq!(report_cast.service, "cloud-compute");
    assert!(
        children(&spans, report).iter().any(|s| s.is_statement()),
        "no database statement under the conductor's handling of the report"
    );
    plane.stop();
}
