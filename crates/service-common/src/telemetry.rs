//! Tracing initialisation.
//!
//! Logs go to stderr; the level comes from `RUST_LOG` (default `info`).
//! Request and message spans carry the request id, so every line logged
//! while handling a request names it.
//!
//! Besides the log output, the subscriber counts the database statements
//! the process executes ([`db_statements`], exported at `/metrics` as
//! `cloud_db_statements_total`): sqlx reports every statement as a
//! `sqlx::query` event, so counting them needs no change to the store.
//!
//! Spans are exported over OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) names a collector, the
//! variables every OpenTelemetry SDK reads; without it no span is recorded
//! for export and messages are sent as before (module `otlp`,
//! docs/adr/0010-tracing-export.md).

use crate::otlp::{AttrValue, Resource, Sender, SpanRecorder};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

static DB_STATEMENTS: AtomicU64 = AtomicU64::new(0);
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Installs the global subscriber, with span export when the environment
/// names an OTLP collector ([`OtlpSettings::from_env`]). Safe to call
/// twice (the second call is ignored), which the all-in-one binary and
/// tests rely on.
pub fn init_tracing(default_level: &str) {
    if tracing::dispatcher::has_been_set() {
        return;
    }
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},sqlx=warn,lapin=warn")));
    let output = fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_filter(filter);
    let settings = OtlpSettings::from_env();
    let export = match &settings {
        Some(s) => match Sender::start(s.url.clone(), s.resource()) {
            Ok(sender) => Some(SpanRecorder::new(sender).with_filter(exported_spans())),
            Err(e) => {
                eprintln!("cannot start the span exporter ({e}); spans are not exported");
                None
            }
        },
        None => None,
    };
    let exporting = export.is_some();
    let installed = tracing_subscriber::registry()
        .with(output)
        .with(StatementCounter.with_filter(statement_events()))
        .with(export)
        .try_init();
    if installed.is_ok()
        && exporting
        && let Some(s) = settings
    {
        EXPORTING.store(true, Ordering::Relaxed);
        cloud_bus::set_trace_context_source(crate::otlp::current_traceparent);
        tracing::info!(url = %s.url, service = %s.service_name, "exporting spans over OTLP/HTTP");
        if let Some(w) = s.warning {
            tracing::warn!("{w}");
        }
    }
}

/// Whether this process exports spans (so bus messages should carry
/// their span's context: [`crate::traced_bus`]).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The `traceparent` of the innermost exported span around the caller,
/// for carrying the trace to another process; `None` when spans are not
/// exported or the caller is in no span.
pub fn current_traceparent() -> Option<String> {
    if !exporting() {
        return None;
    }
    crate::otlp::current_traceparent()
}

/// Where and as whom spans are exported, from the standard OpenTelemetry
/// environment variables.
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpSettings {
    /// The collector's traces URL (`http://host:4318/v1/traces`).
    pub url: String,
    /// `service.name` of every span (`OTEL_SERVICE_NAME`, else the
    /// program's name: `cloud-api`, `cloud-conductor`, ...).
    pub service_name: String,
    /// Something the operator asked for that we do differently.
    pub warning: Option<String>,
}

impl OtlpSettings {
    /// Reads `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL) or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (the base URL, `/v1/traces` appended)
    /// and `OTEL_SERVICE_NAME`. `None` (no export) when neither endpoint is
    /// set or `OTEL_SDK_DISABLED=true`.
    pub fn from_env() -> Option<OtlpSettings> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<OtlpSettings> {
        let set = |k: &str| {
            var(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return None;
        }
        let url = set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
            set("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        })?;
        let service_name = set("OTEL_SERVICE_NAME").unwrap_or_else(|| {
            std::env::args()
                .next()
                .and_then(|a| a.rsplit('/').next().map(str::to_owned))
                .unwrap_or_else(|| "cloud".into())
        });
        let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"));
        let warning = match protocol.as_deref() {
            None | Some("http/json") => None,
            Some(p) => Some(format!(
                "OTLP protocol {p:?} is not supported; exporting with http/json"
            )),
        }
        .or_else(|| {
            url.starts_with("https://").then(|| {
                "the OTLP endpoint is https: this build speaks plain HTTP only, put a local collector in front".to_owned()
            })
        });
        Some(OtlpSettings {
            url,
            service_name,
            warning,
        })
    }

    fn resource(&self) -> Resource {
        Resource {
            attributes: vec![
                ("service.name", AttrValue::Str(self.service_name.clone())),
                (
                    "service.version",
                    AttrValue::Str(env!("CARGO_PKG_VERSION").to_owned()),
                ),
                ("host.name", AttrValue::Str(crate::hostname())),
                ("process.pid", AttrValue::Int(i64::from(std::process::id()))),
            ],
        }
    }
}

/// The spans and events the exporter sees: our INFO spans, every
/// statement sqlx reports, and nothing from the AMQP and HTTP client
/// libraries (the exporter's own requests must not be traced).
fn exported_spans() -> Targets {
    Targets::new()
        .with_default(Level::INFO)
        .with_target("sqlx::query", Level::DEBUG)
        .with_target("sqlx", Level::WARN)
        .with_target("lapin", Level::WARN)
        .with_target("amq_protocol", LevelFilter::OFF)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("hyper_util", LevelFilter::OFF)
        .with_target("reqwest", LevelFilter::OFF)
}

/// Database statements executed by this process so far (counted only
/// once [`init_tracing`] installed the subscriber).
pub fn db_statements() -> u64 {
    DB_STATEMENTS.load(Ordering::Relaxed)
}

/// The events sqlx emits once per executed statement (at DEBUG, its
/// default `log_statements` level; slow ones at WARN).
fn statement_events() -> Targets {
    Targets::new().with_target("sqlx::query", Level::DEBUG)
}

/// Counts `sqlx::query` events into [`db_statements`].
struct StatementCounter;

impl<S: Subscriber> Layer<S> for StatementCounter {
    fn on_event(&self, _event: &Event<'_>, _ctx: Context<'_, S>) {
        DB_STATEMENTS.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_events_are_counted() {
        init_tracing("info");
        let before = db_statements();
        tracing::debug!(target: "sqlx::query", summary = "SELECT 1", "statement");
        tracing::debug!(target: "other", "not a statement");
        assert_eq!(db_statements(), before + 1);
    }

    #[test]
    fn export_is_off_unless_an_endpoint_is_set() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(OtlpSettings::from_vars(vars(&[])), None);
        assert_eq!(
            OtlpSettings::from_vars(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])),
            None
        );
        let s = OtlpSettings::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/"),
            ("OTEL_SERVICE_NAME", "api-1"),
        ]))
        .unwrap();
        assert_eq!(s.url, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(s.service_name, "api-1");
        assert_eq!(s.warning, None);
        let s = OtlpSettings::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/traces"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]))
        .unwrap();
        assert_eq!(s.url, "http://b:4318/traces");
        assert!(s.warning.unwrap().contains("grpc"));
        assert_eq!(
            OtlpSettings::from_vars(vars(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
                ("OTEL_SDK_DISABLED", "true"),
            ])),
            None
        );
    }
}
