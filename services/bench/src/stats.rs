//! Latency samples and their percentiles.

use serde_json::{Value, json};
use std::time::Duration;

/// A set of latency samples.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    ms: Vec<f64>,
}

impl Samples {
    /// No samples yet.
    pub fn new() -> Samples {
        Samples::default()
    }

    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        self.ms.push(d.as_secs_f64() * 1000.0);
    }

    /// Adds one sample given in milliseconds.
    pub fn push_ms(&mut self, ms: f64) {
        self.ms.push(ms);
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.ms.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ms.is_empty()
    }

    /// The `p`-th percentile (0-100) in milliseconds, nearest rank; 0
    /// without samples.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    /// `{prefix}_p50_ms`, `_p95_ms`, `_p99_ms`, `_max_ms` (rounded to µs).
    pub fn summary(&self, prefix: &str) -> Value {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        json!({
            format!("{prefix}_p50_ms"): r(self.percentile(50.0)),
            format!("{prefix}_p95_ms"): r(self.percentile(95.0)),
            format!("{prefix}_p99_ms"): r(self.percentile(99.0)),
            format!("{prefix}_max_ms"): r(self.percentile(100.0)),
        })
    }
}

/// Rounds to 3 decimals, for readable JSON.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::new();
        for i in 1..=100 {
            s.push_ms(f64::from(i));
        }
        assert_eq!(s.percentile(50.0), 50.0);
        assert_eq!(s.percentile(99.0), 99.0);
        assert_eq!(s.percentile(100.0), 100.0);
        assert_eq!(Samples::new().percentile(50.0), 0.0);
    }
}
