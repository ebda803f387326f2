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

/// The answer to reserving an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Attempt number `n` since the last success (1-based).
    Attempt(u32),
    /// Suspended: the stored lock value.
    Locked(Vec<u8>),
}

#[async_trait]
pub trait Volatile: Send + Sync {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), StoreError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Returns and deletes in one step, so a single-use value is used once even when two
    /// requests (or two instances) race for it.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn delete(&self, keys: &[String]) -> Result<(), StoreError>;
    /// Reserves one attempt, in one atomic step shared by every instance: when `lock` is
    /// set, answers `Locked` with its value; otherwise counts the attempt on `counter` (which
    /// expires `window` after the last attempt), and when the count goes past `threshold`
    /// sets `lock` to `lock_value` for `lock_ttl` and answers `Locked`. Counting before the
    /// slow check (not after it) is what stops parallel guesses from slipping past the limit.
    async fn reserve(
        &self,
        counter: &str,
        lock: &str,
        threshold: u32,
        window: Duration,
        lock_ttl: Duration,
        lock_value: &[u8],
    ) -> Result<Reserved, StoreError>;
    /// Sets `lock` and clears `counter` at once (the failure that reached the threshold).
    async fn lock_now(
        &self,
        counter: &str,
        lock: &str,
        lock_ttl: Duration,
        lock_value: &[u8],
    ) -> Result<(), StoreError>;
    /// Adds one to a fixed-window counter and returns the new count.
    async fn hit(&self, key: &str, window: Duration) -> Result<u64, StoreError>;
}
