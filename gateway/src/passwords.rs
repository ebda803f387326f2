//! Password hashing and verification with argon2id, off the proxy's async workers.
//!
//! argon2 is deliberately slow (~20 ms and 19 MiB per check), so every check runs on the
//! blocking thread pool behind a semaphore: proxied traffic never waits for login work, and a
//! burst of logins cannot take every core. An unknown or disabled account is checked against a
//! dummy hash, so the answer takes the same time whether or not the account exists.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// NIST 800-63B / OWASP minimum for argon2id: m=19456 KiB, t=2, p=1.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

/// How long a login may wait for a free hashing slot before it is told to retry.
const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// Why a check did not run (the caller answers "temporarily unavailable").
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

/// Verifies passwords with a bound on how many run at once.
#[derive(Clone)]
pub struct PasswordChecker {
    permits: Arc<Semaphore>,
    /// Hash of a random password nobody knows, checked when there is no real hash.
    dummy_hash: Arc<str>,
}

impl PasswordChecker {
    pub fn new(max_concurrent: usize) -> anyhow::Result<Self> {
        let dummy = hash_password_blocking(&crate::random::token())?;
        Ok(PasswordChecker {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: dummy.into(),
        })
    }

    /// True only when `hash` is `Some` and matches. `None` (no such account) costs the same.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, HashError> {
        let permit = tokio::time::timeout(QUEUE_WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)?;
        let known = hash.is_some();
        let phc: String = hash
            .map(str::to_string)
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let password = password.to_string();
        crate::metrics::ARGON2_INFLIGHT.inc();
        let result = tokio::task::spawn_blocking(move || {
            let ok = verify_blocking(&password, &phc);
            drop(permit);
            ok
        })
        .await;
        crate::metrics::ARGON2_INFLIGHT.dec();
        let ok = result.map_err(|e| HashError::Internal(e.to_string()))?;
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
        let checker = PasswordChecker::new(1).unwrap_or_else(|e| panic!("{e}"));
        let h = hash_password_blocking("pw-123456").unwrap_or_default();
        assert!(checker.verify("pw-123456", Some(&h)).await.unwrap_or(false));
        assert!(!checker.verify("pw-123456", None).await.unwrap_or(true));
        assert!(!checker.verify("nope", Some(&h)).await.unwrap_or(true));
    }
}
