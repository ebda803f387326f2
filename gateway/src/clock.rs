//! Time as the gateway sees it. Every decision that depends on time takes `now` as a value,
//! so tests and callers control it; this module is the one place that reads the wall clock.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (what sessions and the account store record).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
