//! What a scenario prints: a table for people and one JSON document for
//! scripts (the last line of standard output, and `--json FILE`).

use serde_json::{Map, Value, json};

/// The outcome of one scenario run.
#[derive(Debug, Default)]
pub struct Report {
    /// Scenario name (`boot`, `scheduler`, ...).
    pub scenario: String,
    /// `postgres+rabbitmq` or `sqlite+inproc`.
    pub backend: String,
    /// The flags it ran with.
    pub params: Map<String, Value>,
    /// Single figures (throughput, counts).
    pub results: Map<String, Value>,
    /// One row per case when a scenario measures several (host counts,
    /// flavors, server counts).
    pub cases: Vec<Map<String, Value>>,
}

impl Report {
    /// An empty report for `scenario` on `backend`.
    pub fn new(scenario: &str, backend: &str) -> Report {
        Report {
            scenario: scenario.to_owned(),
            backend: backend.to_owned(),
            ..Report::default()
        }
    }

    /// Records a parameter.
    pub fn param(&mut self, key: &str, value: impl Into<Value>) {
        self.params.insert(key.to_owned(), value.into());
    }

    /// Records every field of `fields` (an object) as results.
    pub fn extend(&mut self, fields: Value) {
        if let Value::Object(m) = fields {
            self.results.extend(m);
        }
    }

    /// The JSON summary.
    pub fn to_json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "backend": self.backend,
            "params": self.params,
            "results": self.results,
            "cases": self.cases,
        })
    }

    /// The human-readable table.
    pub fn to_table(&self) -> String {
        let mut out = format!("== {} on {}\n", self.scenario, self.backend);
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={}", plain(v)))
            .collect();
        out.push_str(&format!("   {}\n", params.join(" ")));
        let width = self.results.keys().map(String::len).max().unwrap_or(0);
        for (k, v) in &self.results {
            out.push_str(&format!("   {k:<width$}  {}\n", plain(v)));
        }
        if !self.cases.is_empty() {
            let mut columns: Vec<&String> = Vec::new();
            for c in &self.cases {
                for k in c.keys() {
                    if !columns.contains(&k) {
                        columns.push(k);
                    }
                }
            }
            let cells: Vec<Vec<String>> = self
                .cases
                .iter()
                .map(|c| {
                    columns
                        .iter()
                        .map(|k| c.get(*k).map(plain).unwrap_or_default())
                        .collect()
                })
                .collect();
            let widths: Vec<usize> = columns
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    cells
                        .iter()
                        .map(|r| r[i].len())
                        .chain([k.len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |row: Vec<&str>| -> String {
                let parts: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:>w$}"))
                    .collect();
                format!("   {}\n", parts.join("  "))
            };
            out.push_str(&line(columns.iter().map(|s| s.as_str()).collect()));
            for r in &cells {
                out.push_str(&line(r.iter().map(String::as_str).collect()));
            }
        }
        out
    }
}

/// A value as a table cell: numbers rounded, strings unquoted.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format!("{f:.3}"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_json_hold_every_figure() {
        let mut r = Report::new("boot", "sqlite+inproc");
        r.param("servers", 3);
        r.extend(json!({"boots_per_s": 12.5}));
        let mut case = Map::new();
        case.insert("hosts".into(), json!(100));
        r.cases.push(case);
        let t = r.to_table();
        assert!(t.contains("boots_per_s  12.500"), "{t}");
        assert!(t.contains("hosts"), "{t}");
        assert_eq!(r.to_json()["results"]["boots_per_s"], 12.5);
    }
}
