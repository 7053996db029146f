//! Process-wide message counters, so benchmarks and `/metrics` can tell
//! how many messages a workflow costs. Plain relaxed atomics: one
//! increment per message is nothing next to a broker round trip.

use std::sync::atomic::{AtomicU64, Ordering};

static PUBLISHED: AtomicU64 = AtomicU64::new(0);
static CONSUMED: AtomicU64 = AtomicU64::new(0);

/// Counts of bus messages since the process started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Messages sent (casts, calls, broadcasts and call replies) that the
    /// bus accepted (for AMQP: that the broker confirmed).
    pub published: u64,
    /// Deliveries handed to a consumer (work queues and topics).
    pub consumed: u64,
}

/// The counters so far.
pub fn stats() -> BusStats {
    BusStats {
        published: PUBLISHED.load(Ordering::Relaxed),
        consumed: CONSUMED.load(Ordering::Relaxed),
    }
}

pub(crate) fn note_published() {
    PUBLISHED.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn note_consumed() {
    CONSUMED.fetch_add(1, Ordering::Relaxed);
}
