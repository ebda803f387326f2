//! Short-lived shared values: single-use answers (captcha, a QR view's OTP secret), failure
//! counters and suspensions, and per-address throttles. Redis when configured (shared by every
//! instance, atomic), else in-process.
//!
//! Keys are built by the callers from fixed words and hashes, never from raw user input.

pub mod memory;
pub mod redis;

use std::time::Duration;

use async_trait::async_trait;

use crate::sessions::StoreError;

/// What a failure did to a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    /// Consecutive failures counted so far (reset to 0 when this one locked).
    pub count: u32,
    /// This failure reached the threshold and set the lock.
    pub locked: bool,
}

#[async_trait]
pub trait Volatile: Send + Sync {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Returns and deletes in one step, so a single-use value is used once even when two
    /// requests (or two instances) race for it.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn delete(&self, keys: &[String]) -> Result<(), StoreError>;
    /// Counts one failure on `counter` (which expires `window` after the last failure); when
    /// the count reaches `threshold`, writes `lock_value` to `lock` for `lock_ttl` and clears
    /// the counter. One atomic step, shared by every instance.
    async fn record_failure(
        &self,
        counter: &str,
        lock: &str,
        threshold: u32,
        window: Duration,
        lock_ttl: Duration,
        lock_value: &[u8],
    ) -> Result<FailureCount, StoreError>;
    /// Adds one to a fixed-window counter and returns the new count.
    async fn hit(&self, key: &str, window: Duration) -> Result<u64, StoreError>;
}
