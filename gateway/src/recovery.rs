//! Password reset tokens (忘記密碼): the one decision about what a mailed link is worth.
//!
//! A token is 256 random bits, mailed once and stored only as its SHA-256, so a copy of the
//! store opens nothing. It is valid for [`LIFETIME`], used once (taken atomically, so two
//! clicks or two instances cannot both use it), void as soon as a newer link is requested for
//! the same account (only the latest is accepted), and void after any password change: it
//! carries a fingerprint of the password hash it was issued against, and the hash changes
//! with every new password. Requests are limited per account and per client address.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::accounts::Account;
use crate::random;
use crate::sessions::StoreError;
use crate::volatile::Volatile;

/// How long a mailed link works (the issue's 30 minutes).
pub const LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Links one account may be sent per hour: enough for a typo in the first try, too few to
/// flood anyone's mailbox.
pub const PER_ACCOUNT_PER_HOUR: u64 = 3;
/// Requests one client address may make per hour (a school shares one address behind NAT,
/// so this is looser than the per-account limit).
pub const PER_ADDRESS_PER_HOUR: u64 = 20;
const HOUR: Duration = Duration::from_secs(3600);

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn token_key(token: &str) -> String {
    format!("pwreset:t:{}", sha_hex(token.as_bytes()))
}

fn latest_key(account_id: &str) -> String {
    format!("pwreset:latest:{}", sha_hex(account_id.as_bytes()))
}

/// A fingerprint of the password hash a token was issued against.
fn fingerprint(password_hash: &str) -> String {
    sha_hex(password_hash.as_bytes())[..32].to_owned()
}

/// What a valid token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub account_id: String,
    fingerprint: String,
}

impl Claim {
    fn encode(&self) -> Vec<u8> {
        format!("{}\n{}", self.account_id, self.fingerprint).into_bytes()
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (account_id, fingerprint) = text.split_once('\n')?;
        Some(Claim {
            account_id: account_id.to_owned(),
            fingerprint: fingerprint.to_owned(),
        })
    }

    /// Whether the claim still holds for the account as it is now: the same account, still
    /// enabled, and its password unchanged since the link was sent.
    pub fn holds_for(&self, account: &Account) -> bool {
        account.enabled
            && account.id == self.account_id
            && fingerprint(&account.password_hash) == self.fingerprint
    }
}

/// Reset links, kept in the shared short-lived store.
#[derive(Clone)]
pub struct Resets {
    volatile: Arc<dyn Volatile>,
}

/// Why a request for a link was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// This account had its links for this hour.
    Account,
    /// This address made its requests for this hour.
    Address,
}

impl Resets {
    pub fn new(volatile: Arc<dyn Volatile>) -> Self {
        Resets { volatile }
    }

    /// Counts a request from `ip`; `Err(Limited::Address)` past the hourly budget.
    pub async fn address_allows(
        &self,
        ip: Option<IpAddr>,
    ) -> Result<Result<(), Limited>, StoreError> {
        let who = ip.map(|ip| ip.to_string()).unwrap_or_default();
        let n = self
            .volatile
            .hit(&format!("pwreset:addr:{}", sha_hex(who.as_bytes())), HOUR)
            .await?;
        Ok(if n > PER_ADDRESS_PER_HOUR {
            Err(Limited::Address)
        } else {
            Ok(())
        })
    }

    /// Counts a request for `subject` (an account id, or what was typed when no account
    /// matched, so both cost the same store work); `Err(Limited::Account)` past the budget.
    pub async fn subject_allows(&self, subject: &str) -> Result<Result<(), Limited>, StoreError> {
        let n = self
            .volatile
            .hit(
                &format!("pwreset:acct:{}", sha_hex(subject.as_bytes())),
                HOUR,
            )
            .await?;
        Ok(if n > PER_ACCOUNT_PER_HOUR {
            Err(Limited::Account)
        } else {
            Ok(())
        })
    }

    /// A new link token for `account`; any earlier one stops working.
    pub async fn issue(&self, account: &Account) -> Result<String, StoreError> {
        let token = random::token();
        let key = token_key(&token);
        let latest = latest_key(&account.id);
        if let Some(old) = self.volatile.get(&latest).await? {
            let old = String::from_utf8_lossy(&old).into_owned();
            self.volatile.delete(&[old]).await?;
        }
        let claim = Claim {
            account_id: account.id.clone(),
            fingerprint: fingerprint(&account.password_hash),
        };
        self.volatile.put(&key, &claim.encode(), LIFETIME).await?;
        self.volatile.put(&latest, key.as_bytes(), LIFETIME).await?;
        Ok(token)
    }

    /// What `token` stands for, without using it up (the form's GET).
    pub async fn peek(&self, token: &str) -> Result<Option<Claim>, StoreError> {
        if !random::is_token(token) {
            return Ok(None);
        }
        let key = token_key(token);
        let Some(bytes) = self.volatile.get(&key).await? else {
            return Ok(None);
        };
        let Some(claim) = Claim::decode(&bytes) else {
            return Ok(None);
        };
        Ok(self.is_latest(&claim, &key).await?.then_some(claim))
    }

    /// Uses `token` up: at most one caller ever gets its claim.
    pub async fn redeem(&self, token: &str) -> Result<Option<Claim>, StoreError> {
        if !random::is_token(token) {
            return Ok(None);
        }
        let key = token_key(token);
        let Some(bytes) = self.volatile.take(&key).await? else {
            return Ok(None);
        };
        let Some(claim) = Claim::decode(&bytes) else {
            return Ok(None);
        };
        if !self.is_latest(&claim, &key).await? {
            return Ok(None);
        }
        self.volatile
            .delete(&[latest_key(&claim.account_id)])
            .await?;
        Ok(Some(claim))
    }

    async fn is_latest(&self, claim: &Claim, key: &str) -> Result<bool, StoreError> {
        let latest = self.volatile.get(&latest_key(&claim.account_id)).await?;
        Ok(latest.as_deref() == Some(key.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volatile::memory::MemoryVolatile;

    fn account(id: &str, hash: &str) -> Account {
        Account {
            id: id.into(),
            login_name: format!("user-{id}"),
            display_name: String::new(),
            school_code: String::new(),
            roles: vec![],
            email: "t@school.example".into(),
            password_hash: hash.into(),
            enabled: true,
            created_at: 0,
            updated_at: 0,
            unlocked_at: 0,
            otp_bound: true,
            certificate_bound: false,
            mobile_bound: false,
            id_last4: String::new(),
        }
    }

    fn resets() -> Resets {
        Resets::new(Arc::new(MemoryVolatile::new()))
    }

    #[tokio::test]
    async fn a_token_works_once() {
        let r = resets();
        let a = account("a1", "$argon2id$old");
        let t = r.issue(&a).await.unwrap();
        assert_eq!(t.len(), random::TOKEN_LEN);
        let claim = r.peek(&t).await.unwrap().unwrap();
        assert!(claim.holds_for(&a));
        assert!(
            r.peek(&t).await.unwrap().is_some(),
            "peeking does not use it up"
        );
        assert!(r.redeem(&t).await.unwrap().is_some());
        assert!(r.redeem(&t).await.unwrap().is_none());
        assert!(r.peek(&t).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_newer_link_voids_the_older() {
        let r = resets();
        let a = account("a1", "$argon2id$old");
        let first = r.issue(&a).await.unwrap();
        let second = r.issue(&a).await.unwrap();
        assert!(r.peek(&first).await.unwrap().is_none());
        assert!(r.redeem(&first).await.unwrap().is_none());
        assert!(r.redeem(&second).await.unwrap().is_some());
        // Another account's link is unaffected by this one's.
        let b = account("b2", "$argon2id$b");
        let tb = r.issue(&b).await.unwrap();
        r.issue(&a).await.unwrap();
        assert!(r.peek(&tb).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_password_change_voids_the_claim() {
        let r = resets();
        let a = account("a1", "$argon2id$old");
        let t = r.issue(&a).await.unwrap();
        let claim = r.peek(&t).await.unwrap().unwrap();
        assert!(!claim.holds_for(&account("a1", "$argon2id$new")));
        assert!(!claim.holds_for(&account("other", "$argon2id$old")));
        let mut disabled = a.clone();
        disabled.enabled = false;
        assert!(!claim.holds_for(&disabled));
    }

    #[tokio::test]
    async fn malformed_tokens_reach_no_store() {
        let r = resets();
        for t in [
            "",
            "short",
            &"x".repeat(44),
            &format!("{}!", "a".repeat(42)),
        ] {
            assert!(r.peek(t).await.unwrap().is_none());
            assert!(r.redeem(t).await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn requests_are_limited_per_account_and_address() {
        let r = resets();
        for _ in 0..PER_ACCOUNT_PER_HOUR {
            assert_eq!(r.subject_allows("a1").await.unwrap(), Ok(()));
        }
        assert_eq!(r.subject_allows("a1").await.unwrap(), Err(Limited::Account));
        assert_eq!(r.subject_allows("b2").await.unwrap(), Ok(()));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..PER_ADDRESS_PER_HOUR {
            assert_eq!(r.address_allows(Some(ip)).await.unwrap(), Ok(()));
        }
        assert_eq!(
            r.address_allows(Some(ip)).await.unwrap(),
            Err(Limited::Address)
        );
    }
}
