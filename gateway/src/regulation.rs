//! Regulation: suspensions after repeated failures and the per-address throttle.
//!
//! Counters are per canonical login name (case and surrounding spaces folded) and kept for
//! names that do not exist too, so the answer never tells whether an account exists. They live
//! in the volatile store (Redis: shared by every instance, counted atomically). The decision of
//! what a stored suspension means is `menshen_policies::lockout`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::Ipv6Net;
use menshen_config::LockoutConfig;
use menshen_policies::lockout::{LockState, LockoutPolicy, Suspension, state};
use sha2::{Digest, Sha256};

use crate::sessions::StoreError;
use crate::volatile::{Reserved, Volatile};

/// Which kind of failure is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Password,
    Otp,
}

impl Counted {
    fn word(self) -> &'static str {
        match self {
            Counted::Password => "pw",
            Counted::Otp => "otp",
        }
    }
}

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Go ahead; this is attempt `n` since the last success.
    Allowed(u32),
    Suspended {
        until: u64,
    },
}

/// How a counted failure ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// Still open; this many consecutive failures so far.
    Counted(u32),
    /// This failure suspended the account until then.
    Suspended { until: u64 },
}

/// Failed attempts from one address are remembered this long (for the captcha's
/// `after_failure` mode).
const ADDRESS_FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);

/// Anonymous writes one client address may cause per minute: far above what a person does
/// (a login page, a few "change picture", a card login retried), far below a flood.
pub const ANONYMOUS_WRITES_PER_MINUTE: u64 = 60;

#[derive(Clone)]
pub struct Regulation {
    volatile: Arc<dyn Volatile>,
    config: LockoutConfig,
}

fn name_hash(login_name: &str) -> String {
    let canonical = menshen_policies::canonical_login_name(login_name);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

impl Regulation {
    pub fn new(volatile: Arc<dyn Volatile>, config: LockoutConfig) -> Self {
        Regulation { volatile, config }
    }

    fn policy(&self, kind: Counted) -> LockoutPolicy {
        LockoutPolicy {
            threshold: match kind {
                Counted::Password => self.config.password_failures,
                Counted::Otp => self.config.otp_failures,
            },
            duration_secs: self.config.duration.as_secs(),
        }
    }

    fn keys(kind: Counted, login_name: &str) -> (String, String) {
        let h = name_hash(login_name);
        (
            format!("lc:{}:{h}", kind.word()),
            format!("lk:{}:{h}", kind.word()),
        )
    }

    /// Whether `login_name` may try `kind` now.
    pub async fn state(
        &self,
        kind: Counted,
        login_name: &str,
        unlocked_at: u64,
        now: u64,
    ) -> Result<LockState, StoreError> {
        let (counter, lock) = Self::keys(kind, login_name);
        let stored = self.volatile.get(&lock).await?;
        let suspension = stored.as_deref().and_then(Suspension::decode);
        let result = state(suspension, unlocked_at, now);
        if result == LockState::Open && suspension.is_some_and(|s| s.until > now) {
            // Lifted by an operator: forget it, and the failures before it.
            self.volatile.delete(&[counter, lock]).await?;
        }
        Ok(result)
    }

    /// Whether the account is suspended for either kind of failure (wrong passwords or wrong
    /// OTP codes): a method that counts no failures of its own (a card, a provider trusted
    /// alone) still respects both. `Some(until)` when suspended.
    pub async fn suspended_until(
        &self,
        login_name: &str,
        unlocked_at: u64,
        now: u64,
    ) -> Result<Option<u64>, StoreError> {
        for kind in [Counted::Password, Counted::Otp] {
            if let LockState::Suspended { until } =
                self.state(kind, login_name, unlocked_at, now).await?
            {
                return Ok(Some(until));
            }
        }
        Ok(None)
    }

    /// Reserves one attempt before the (slow) check, so attempts sent in parallel cannot
    /// get more guesses than the threshold allows.
    pub async fn reserve(
        &self,
        kind: Counted,
        login_name: &str,
        unlocked_at: u64,
        now: u64,
    ) -> Result<Attempt, StoreError> {
        let policy = self.policy(kind);
        let (counter, lock) = Self::keys(kind, login_name);
        // Two rounds at most: the second follows an operator's unlock found in the first.
        for _ in 0..2 {
            let value = Suspension::starting(now, &policy).encode();
            let reserved = self
                .volatile
                .reserve(
                    &counter,
                    &lock,
                    policy.threshold,
                    self.config.duration,
                    self.config.duration,
                    value.as_bytes(),
                )
                .await?;
            match reserved {
                Reserved::Attempt(n) => return Ok(Attempt::Allowed(n)),
                Reserved::Locked(stored) => {
                    let Some(suspension) = Suspension::decode(&stored) else {
                        // Unreadable: stay closed for a full duration.
                        return Ok(Attempt::Suspended {
                            until: now.saturating_add(policy.duration_secs),
                        });
                    };
                    match state(Some(suspension), unlocked_at, now) {
                        LockState::Suspended { until } => return Ok(Attempt::Suspended { until }),
                        LockState::Open => {
                            // Lifted by an operator (or just over): forget it and its count.
                            self.volatile
                                .delete(&[counter.clone(), lock.clone()])
                                .await?;
                        }
                    }
                }
            }
        }
        Ok(Attempt::Suspended {
            until: now.saturating_add(policy.duration_secs),
        })
    }

    /// The reserved attempt `attempt` failed: the one that reaches the threshold suspends.
    pub async fn failure(
        &self,
        kind: Counted,
        login_name: &str,
        attempt: u32,
        now: u64,
    ) -> Result<FailureOutcome, StoreError> {
        let policy = self.policy(kind);
        if attempt < policy.threshold {
            return Ok(FailureOutcome::Counted(attempt));
        }
        let (counter, lock) = Self::keys(kind, login_name);
        let suspension = Suspension::starting(now, &policy);
        self.volatile
            .lock_now(
                &counter,
                &lock,
                self.config.duration,
                suspension.encode().as_bytes(),
            )
            .await?;
        Ok(FailureOutcome::Suspended {
            until: suspension.until,
        })
    }

    /// A success resets the consecutive count.
    pub async fn success(&self, kind: Counted, login_name: &str) -> Result<(), StoreError> {
        let (counter, _) = Self::keys(kind, login_name);
        self.volatile.delete(&[counter]).await
    }

    /// Lifts every suspension and count of a name (`menshen account unlock`).
    pub async fn unlock(&self, login_name: &str) -> Result<(), StoreError> {
        let (c1, l1) = Self::keys(Counted::Password, login_name);
        let (c2, l2) = Self::keys(Counted::Otp, login_name);
        self.volatile.delete(&[c1, l1, c2, l2]).await
    }

    fn throttled_address(&self, ip: Option<IpAddr>) -> Option<String> {
        let ip = ip?.to_canonical();
        let trusted = self.config.trusted_networks.iter().any(|n| n.contains(&ip));
        (!trusted && self.config.ip_attempts_per_minute > 0).then(|| address_key(ip))
    }

    /// Counts one login attempt from `ip`; false when the address is over its limit.
    pub async fn admit(&self, ip: Option<IpAddr>) -> Result<bool, StoreError> {
        let Some(key) = self.throttled_address(ip) else {
            return Ok(true);
        };
        let n = self
            .volatile
            .hit(&format!("ip:{key}"), Duration::from_secs(60))
            .await?;
        Ok(n <= u64::from(self.config.ip_attempts_per_minute))
    }

    /// Counts one anonymous write to the shared store from `ip` (a captcha for the login
    /// page, an OpenID Connect flow, a certificate login challenge); false when the address is
    /// over [`ANONYMOUS_WRITES_PER_MINUTE`]. Without it a loop of page views fills Redis: each
    /// of those requests stores a value for minutes and needs nothing but an address. A
    /// budget of its own, so page views cannot use up the login attempts (or the reverse);
    /// trusted networks and a throttle turned off (`ip_attempts_per_minute = 0`) are exempt
    /// as for logins.
    pub async fn admit_anonymous_write(&self, ip: Option<IpAddr>) -> Result<bool, StoreError> {
        let Some(key) = self.throttled_address(ip) else {
            return Ok(true);
        };
        let n = self
            .volatile
            .hit(&format!("ipw:{key}"), Duration::from_secs(60))
            .await?;
        Ok(n <= ANONYMOUS_WRITES_PER_MINUTE)
    }

    /// Remembers that a login from `ip` failed (the captcha's `after_failure` mode).
    pub async fn note_address_failure(&self, ip: Option<IpAddr>) -> Result<(), StoreError> {
        if let Some(ip) = ip {
            self.volatile
                .hit(&format!("ipf:{}", address_key(ip)), ADDRESS_FAILURE_MEMORY)
                .await?;
        }
        Ok(())
    }

    pub async fn address_has_failed(&self, ip: Option<IpAddr>) -> Result<bool, StoreError> {
        match ip {
            Some(ip) => Ok(self
                .volatile
                .get(&format!("ipf:{}", address_key(ip)))
                .await?
                .is_some()),
            None => Ok(true),
        }
    }
}

/// The client a per-address counter belongs to. An IPv4-mapped IPv6 address (a dual-stack
/// listener's view of an IPv4 client) is its IPv4 address, so one client has one counter
/// whichever listener it used. An IPv6 client is its /64: that is the smallest block a
/// provider hands one subscriber, and one host can pick any address in it, so counting single
/// addresses would give one attacker 2^64 fresh budgets.
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => Ipv6Net::new(v6, 64)
            .map(|net| net.trunc().to_string())
            .unwrap_or_else(|_| v6.to_string()),
    }
}

/// "HH:MM" in Taiwan time (UTC+8, no daylight saving), for "try again after …".
pub fn taipei_clock(unix_secs: u64) -> String {
    let local = unix_secs.saturating_add(8 * 3600);
    let minutes = (local % 86_400) / 60;
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volatile::memory::MemoryVolatile;
    use ipnet::IpNet;

    fn regulation() -> Regulation {
        Regulation::new(
            Arc::new(MemoryVolatile::new()),
            LockoutConfig {
                password_failures: 3,
                otp_failures: 3,
                duration: Duration::from_secs(900),
                ip_attempts_per_minute: 2,
                trusted_networks: "10.0.0.0/8".parse::<IpNet>().into_iter().collect(),
            },
        )
    }

    /// One full attempt: reserve, then fail.
    async fn fail(
        r: &Regulation,
        kind: Counted,
        name: &str,
        now: u64,
    ) -> Result<Option<FailureOutcome>, StoreError> {
        match r.reserve(kind, name, 0, now).await? {
            Attempt::Allowed(n) => Ok(Some(r.failure(kind, name, n, now).await?)),
            Attempt::Suspended { .. } => Ok(None),
        }
    }

    #[tokio::test]
    async fn three_failures_suspend_and_names_are_folded() -> Result<(), StoreError> {
        let r = regulation();
        assert_eq!(
            fail(&r, Counted::Password, "Teacher", 100).await?,
            Some(FailureOutcome::Counted(1))
        );
        assert_eq!(
            fail(&r, Counted::Password, " teacher ", 100).await?,
            Some(FailureOutcome::Counted(2))
        );
        assert_eq!(
            fail(&r, Counted::Password, "TEACHER", 100).await?,
            Some(FailureOutcome::Suspended { until: 1000 })
        );
        assert_eq!(
            r.reserve(Counted::Password, "teacher", 0, 500).await?,
            Attempt::Suspended { until: 1000 }
        );
        assert_eq!(
            r.state(Counted::Password, "teacher", 0, 500).await?,
            LockState::Suspended { until: 1000 }
        );
        assert!(matches!(
            r.reserve(Counted::Otp, "teacher", 0, 500).await?,
            Attempt::Allowed(1)
        ));
        Ok(())
    }

    #[tokio::test]
    async fn parallel_attempts_never_exceed_the_threshold() -> Result<(), StoreError> {
        let r = regulation();
        // Ten attempts reserved before any of them failed: only three may go ahead.
        let mut allowed = 0;
        for _ in 0..10 {
            if matches!(
                r.reserve(Counted::Otp, "b", 0, 50).await?,
                Attempt::Allowed(_)
            ) {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 3);
        assert!(matches!(
            r.reserve(Counted::Otp, "b", 0, 60).await?,
            Attempt::Suspended { .. }
        ));
        Ok(())
    }

    #[tokio::test]
    async fn success_resets_the_count_and_unlock_lifts() -> Result<(), StoreError> {
        let r = regulation();
        fail(&r, Counted::Otp, "a", 1).await?;
        fail(&r, Counted::Otp, "a", 1).await?;
        r.success(Counted::Otp, "a").await?;
        assert_eq!(
            fail(&r, Counted::Otp, "a", 1).await?,
            Some(FailureOutcome::Counted(1))
        );
        fail(&r, Counted::Otp, "a", 1).await?;
        fail(&r, Counted::Otp, "a", 1).await?;
        assert!(matches!(
            r.reserve(Counted::Otp, "a", 0, 2).await?,
            Attempt::Suspended { .. }
        ));
        // An unlock recorded after the suspension began lifts it.
        assert!(matches!(
            r.reserve(Counted::Otp, "a", 5, 6).await?,
            Attempt::Allowed(1)
        ));
        Ok(())
    }

    #[tokio::test]
    async fn throttle_spares_trusted_networks() -> Result<(), StoreError> {
        let r = regulation();
        let outside = Some(IpAddr::from([192, 0, 2, 1]));
        assert!(r.admit(outside).await?);
        assert!(r.admit(outside).await?);
        assert!(!r.admit(outside).await?);
        let inside = Some(IpAddr::from([10, 1, 2, 3]));
        for _ in 0..5 {
            assert!(r.admit(inside).await?);
        }
        Ok(())
    }

    #[tokio::test]
    async fn one_ipv6_64_shares_one_budget() -> Result<(), StoreError> {
        let r = regulation();
        let ip = |t: &str| t.parse::<IpAddr>().ok();
        assert!(r.admit(ip("2001:db8:1:2::1")).await?);
        assert!(r.admit(ip("2001:db8:1:2:ffff:1:2:3")).await?);
        // A third address in the same /64 is the same client, over its budget of two.
        assert!(!r.admit(ip("2001:db8:1:2:abcd::9")).await?);
        // The next /64 is someone else.
        assert!(r.admit(ip("2001:db8:1:3::1")).await?);
        Ok(())
    }

    #[tokio::test]
    async fn mapped_ipv4_is_the_ipv4_client() -> Result<(), StoreError> {
        let r = regulation();
        let ip = |t: &str| t.parse::<IpAddr>().ok();
        assert!(r.admit(ip("192.0.2.1")).await?);
        assert!(r.admit(ip("::ffff:192.0.2.1")).await?);
        assert!(!r.admit(ip("192.0.2.1")).await?);
        // Trusted networks apply to the mapped spelling too.
        for _ in 0..5 {
            assert!(r.admit(ip("::ffff:10.1.2.3")).await?);
        }
        // A failure noted under one spelling is found under the other (captcha after_failure).
        r.note_address_failure(ip("::ffff:192.0.2.9")).await?;
        assert!(r.address_has_failed(ip("192.0.2.9")).await?);
        r.note_address_failure(ip("2001:db8::1")).await?;
        assert!(r.address_has_failed(ip("2001:db8::2")).await?);
        assert!(!r.address_has_failed(ip("2001:db8:0:1::1")).await?);
        Ok(())
    }

    #[test]
    fn address_keys() {
        let key = |t: &str| t.parse::<IpAddr>().map(address_key).unwrap_or_default();
        assert_eq!(key("192.0.2.1"), "192.0.2.1");
        assert_eq!(key("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(key("::1"), "::/64");
    }

    #[test]
    fn taipei_time() {
        // 2026-01-01T00:00:00Z is 08:00 in Taipei.
        assert_eq!(taipei_clock(1_767_225_600), "08:00");
    }
}
