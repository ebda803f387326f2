//! Password hashing and verification with argon2id, off the proxy's async workers.
//!
//! argon2 is deliberately slow (~20 ms of a core and 19 MiB per check), so every check runs on
//! a small pool of threads at the lowest CPU priority ([`crate::low_priority`]): proxied
//! traffic always gets the CPU first, and a flood of logins costs signed-in users nothing.
//! When the pool and its short queue are full, a login is refused at once ([`HashError::Busy`],
//! the "busy, try again in a moment" page) instead of waiting; a caller takes its place with
//! [`PasswordChecker::admit`] *before* counting the attempt, so a refused login is never a
//! password failure. An unknown or disabled account is checked against a dummy hash, so the
//! answer takes the same time whether or not the account exists.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::low_priority::{LowPriorityPool, Slot};
use crate::metrics::{ARGON2_INFLIGHT, ARGON2_SHED};

/// NIST 800-63B / OWASP minimum for argon2id: m=19456 KiB, t=2, p=1.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

/// How long an admitted check may take, queue included, before the login is told to retry.
/// Only reached when the proxy keeps every core busy for this long (idle-priority threads
/// then get no CPU); the check still finishes later if its caller is waiting.
const CHECK_DEADLINE: Duration = Duration::from_secs(10);

/// Why a check did not run (the caller answers "busy" or "temporarily unavailable").
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many logins are being checked at once")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

fn argon2() -> Argon2<'static> {
    // The parameters are constants known to be valid; `Params::new` cannot fail for them, but
    // fall back to the library default (the same values) rather than panic.
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a new password (CLI and demo use; blocking).
pub fn hash_password_blocking(password: &str) -> anyhow::Result<String> {
    argon2()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

fn verify_blocking(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Verifies passwords on the low-priority pool, shedding what it cannot take.
#[derive(Clone)]
pub struct PasswordChecker {
    pool: LowPriorityPool,
    /// Hash of a random password nobody knows, checked when there is no real hash.
    dummy_hash: Arc<str>,
}

/// A place for one password check, taken before the attempt is counted.
pub struct CheckSlot {
    slot: Slot,
    dummy_hash: Arc<str>,
}

impl PasswordChecker {
    /// `threads` checks run at once on idle-priority threads; `queue` more may wait.
    pub fn new(threads: usize, queue: usize) -> anyhow::Result<Self> {
        let dummy = hash_password_blocking(&crate::random::token())?;
        Ok(PasswordChecker {
            pool: LowPriorityPool::new("menshen-argon2", threads, queue)?,
            dummy_hash: dummy.into(),
        })
    }

    /// A place for one check, or [`HashError::Busy`] (counted in `menshen_argon2_shed_total`)
    /// when every thread is busy and the queue is full. Never waits.
    pub fn admit(&self) -> Result<CheckSlot, HashError> {
        match self.pool.admit() {
            Some(slot) => Ok(CheckSlot {
                slot,
                dummy_hash: self.dummy_hash.clone(),
            }),
            None => {
                ARGON2_SHED.inc();
                Err(HashError::Busy)
            }
        }
    }

    /// [`Self::admit`] then [`CheckSlot::verify`], for callers with nothing to do in between.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, HashError> {
        self.admit()?.verify(password, hash).await
    }
}

impl CheckSlot {
    /// Runs `work` (checking a new password's rules, then hashing it) on the pool: a reset
    /// or change form costs the proxy's workers nothing, like a login.
    pub async fn run<T, F>(self, work: F) -> Result<T, HashError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let job = self.slot.run(move || {
            ARGON2_INFLIGHT.inc();
            let out = work();
            ARGON2_INFLIGHT.dec();
            out
        });
        tokio::time::timeout(CHECK_DEADLINE, job)
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|e| HashError::Internal(e.to_string()))
    }

    /// True only when `hash` is `Some` and matches. `None` (no such account) costs the same.
    pub async fn verify(self, password: &str, hash: Option<&str>) -> Result<bool, HashError> {
        let known = hash.is_some();
        let phc: String = hash
            .map(str::to_string)
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let password = password.to_string();
        let check = self.slot.run(move || {
            ARGON2_INFLIGHT.inc();
            let ok = verify_blocking(&password, &phc);
            ARGON2_INFLIGHT.dec();
            ok
        });
        let ok = tokio::time::timeout(CHECK_DEADLINE, check)
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|e| HashError::Internal(e.to_string()))?;
        Ok(known && ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_the_required_cost() {
        let h = hash_password_blocking("correct horse").unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking("correct horse", &h));
        assert!(!verify_blocking("wrong horse", &h));
        assert!(!verify_blocking("correct horse", "not a hash"));
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify() {
        let checker = PasswordChecker::new(1, 0).unwrap_or_else(|e| panic!("{e}"));
        let h = hash_password_blocking("pw-123456").unwrap_or_default();
        assert!(checker.verify("pw-123456", Some(&h)).await.unwrap_or(false));
        assert!(!checker.verify("pw-123456", None).await.unwrap_or(true));
        assert!(!checker.verify("nope", Some(&h)).await.unwrap_or(true));
    }

    #[tokio::test]
    async fn a_full_pool_sheds_at_once_and_counts_it() {
        let checker = PasswordChecker::new(1, 1).unwrap_or_else(|e| panic!("{e}"));
        let shed_before = ARGON2_SHED.get();
        let first = checker.admit();
        let second = checker.admit();
        assert!(
            first.is_ok() && second.is_ok(),
            "one thread and one queue place"
        );
        assert!(matches!(checker.admit(), Err(HashError::Busy)));
        assert!(matches!(
            checker.verify("pw", None).await,
            Err(HashError::Busy)
        ));
        // Other tests in this binary may shed too; ours added at least these two.
        assert!(ARGON2_SHED.get() >= shed_before + 2);
        drop(second);
        let h = hash_password_blocking("pw-123456").unwrap_or_default();
        let slot = checker.admit();
        assert!(slot.is_ok(), "a released place is admitted again");
        if let Ok(slot) = slot {
            assert!(slot.verify("pw-123456", Some(&h)).await.unwrap_or(false));
        }
        drop(first);
    }
}
