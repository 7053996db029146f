//! Prometheus metrics: a small process-wide registry of counters and
//! histograms, rendered in the text exposition format at `/metrics`.
//!
//! Small on purpose: a few `Mutex`-protected maps cost nothing next to a
//! database round trip, and the whole format fits in one function.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

/// Histogram buckets in seconds (1 ms to 60 s).
const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

type Labels = Vec<(String, String)>;

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    help: BTreeMap<String, (&'static str, &'static str)>,
    counters: BTreeMap<(String, Labels), u64>,
    histograms: BTreeMap<(String, Labels), Histogram>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Registry::default()))
}

fn labels(l: &[(&str, &str)]) -> Labels {
    l.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Adds `n` to counter `name` with `labels`.
pub fn count(name: &'static str, help: &'static str, l: &[(&str, &str)], n: u64) {
    let mut r = registry().lock().expect("metrics lock");
    r.help.entry(name.to_owned()).or_insert((help, "counter"));
    *r.counters.entry((name.to_owned(), labels(l))).or_default() += n;
}

/// Records `seconds` in histogram `name` with `labels`.
pub fn observe(name: &'static str, help: &'static str, l: &[(&str, &str)], seconds: f64) {
    let mut r = registry().lock().expect("metrics lock");
    r.help.entry(name.to_owned()).or_insert((help, "histogram"));
    let h = r
        .histograms
        .entry((name.to_owned(), labels(l)))
        .or_default();
    if h.counts.is_empty() {
        h.counts = vec![0; BUCKETS.len()];
    }
    for (i, b) in BUCKETS.iter().enumerate() {
        if seconds <= *b {
            h.counts[i] += 1;
        }
    }
    h.sum += seconds;
    h.count += 1;
}

fn fmt_labels(l: &Labels, extra: Option<(&str, String)>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// Everything recorded so far, in Prometheus text format.
pub fn render() -> String {
    let r = registry().lock().expect("metrics lock");
    let mut out = String::new();
    for (name, (help, kind)) in &r.help {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for ((n, l), v) in r.counters.range((name.clone(), Vec::new())..) {
            if n != name {
                break;
            }
            let _ = writeln!(out, "{name}{} {v}", fmt_labels(l, None));
        }
        for ((n, l), h) in r.histograms.range((name.clone(), Vec::new())..) {
            if n != name {
                break;
            }
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    fmt_labels(l, Some(("le", b.to_string()))),
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                fmt_labels(l, Some(("le", "+Inf".into()))),
                h.count
            );
            let _ = writeln!(out, "{name}_sum{} {}", fmt_labels(l, None), h.sum);
            let _ = writeln!(out, "{name}_count{} {}", fmt_labels(l, None), h.count);
        }
    }
    render_process_counters(&mut out);
    out
}

/// Counters kept outside the registry (plain atomics on hot paths): the
/// database statements counted by the tracing subscriber and the bus
/// messages counted by the bus.
fn render_process_counters(out: &mut String) {
    let bus = cloud_bus::stats();
    let counters = [
        (
            "cloud_db_statements_total",
            "Database statements executed by this process.",
            crate::telemetry::db_statements(),
        ),
        (
            "cloud_bus_messages_published_total",
            "Bus messages (casts, calls, broadcasts, replies) sent by this process.",
            bus.published,
        ),
        (
            "cloud_bus_messages_consumed_total",
            "Bus messages delivered to this process's consumers.",
            bus.consumed,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {value}");
    }
}

/// The `/metrics` route, for services that have no HTTP API of their own.
pub fn router() -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4",
                )],
                render(),
            )
        }),
    )
}

/// Serves `/metrics` on `addr` until the process ends.
pub async fn serve(addr: std::net::SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, router()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        count("test_messages_total", "Messages.", &[("kind", "a\"b")], 2);
        observe("test_latency_seconds", "Latency.", &[], 0.02);
        let text = render();
        assert!(text.contains("# TYPE test_messages_total counter"));
        assert!(text.contains("test_messages_total{kind=\"a\\\"b\"} 2"));
        assert!(text.contains("test_latency_seconds_bucket{le=\"0.025\"} 1"));
        assert!(text.contains("test_latency_seconds_bucket{le=\"0.01\"} 0"));
        assert!(text.contains("test_latency_seconds_count 1"));
    }
}
