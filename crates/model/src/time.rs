//! Timestamps and the text forms OpenStack clients parse.
//!
//! Stored as microseconds since the Unix epoch (portable between SQLite and
//! PostgreSQL, totally ordered); shown in the format each service uses.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// An instant with microsecond precision, in UTC.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Self(Utc::now().timestamp_micros())
    }

    /// From microseconds since the epoch (the stored form).
    pub fn from_micros(us: i64) -> Self {
        Self(us)
    }

    /// Microseconds since the epoch (the stored form).
    pub fn micros(self) -> i64 {
        self.0
    }

    /// This instant plus `seconds`.
    pub fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0 + seconds * 1_000_000)
    }

    /// As a chrono value.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_micros(self.0)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// Parses an ISO 8601 / RFC 3339 time (`changes-since`, `expires_at`);
    /// a time without an offset is taken as UTC, as Nova does.
    pub fn parse(s: &str) -> Option<Self> {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(Self(t.with_timezone(&Utc).timestamp_micros()));
        }
        for fmt in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M:%S%.f",
        ] {
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
                return Some(Self(t.and_utc().timestamp_micros()));
            }
        }
        None
    }

    /// Nova and Glance: `2026-11-28T17:36:42Z`.
    pub fn iso_seconds(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// Keystone: `2026-11-28T17:36:42.000000Z` (tempest parses `%f`).
    pub fn iso_micros(self) -> String {
        self.to_datetime()
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// Nova's `launched_at` style: `2026-11-28T17:36:48.102497` (no zone).
    pub fn naive_micros(self) -> String {
        self.to_datetime()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_the_clients_parsers() {
        let t = Timestamp::from_micros(1_764_351_386_542_094);
        assert_eq!(t.iso_seconds(), "2025-11-28T17:36:26Z");
        assert_eq!(t.iso_micros(), "2025-11-28T17:36:26.542094Z");
        assert_eq!(t.naive_micros(), "2025-11-28T17:36:26.542094");
        assert_eq!(Timestamp::parse(&t.iso_micros()), Some(t));
        assert_eq!(
            Timestamp::parse("2025-11-28T17:36:26"),
            Some(Timestamp::from_micros(1_764_351_386_000_000))
        );
    }
}
