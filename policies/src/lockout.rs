//! Suspensions after repeated failures (three wrong passwords, or three wrong OTP codes,
//! suspend an account for fifteen minutes), decided from what the stores hold. The counting
//! itself is atomic in the store; this module only says what a stored value means.

/// How many consecutive failures suspend an account, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub threshold: u32,
    pub duration_secs: u64,
}

/// A suspension as stored: when it began and when it ends (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suspension {
    pub since: u64,
    pub until: u64,
}

impl Suspension {
    /// The suspension that begins now under `policy`.
    pub fn starting(now: u64, policy: &LockoutPolicy) -> Suspension {
        Suspension {
            since: now,
            until: now.saturating_add(policy.duration_secs),
        }
    }

    /// Stored text form `since:until`.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.since, self.until)
    }

    pub fn decode(bytes: &[u8]) -> Option<Suspension> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (since, until) = text.split_once(':')?;
        Some(Suspension {
            since: since.parse().ok()?,
            until: until.parse().ok()?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    Open,
    Suspended { until: u64 },
}

/// Whether an account may try now. `unlocked_at` is when an operator last lifted its
/// suspensions (`menshen account unlock`; 0 = never): a suspension that began before that no
/// longer counts.
pub fn state(stored: Option<Suspension>, unlocked_at: u64, now: u64) -> LockState {
    match stored {
        Some(s) if s.until > now && s.since > unlocked_at => {
            LockState::Suspended { until: s.until }
        }
        _ => LockState::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        threshold: 3,
        duration_secs: 900,
    };

    #[test]
    fn a_suspension_lasts_its_duration() {
        let s = Suspension::starting(1000, &POLICY);
        assert_eq!(
            state(Some(s), 0, 1000),
            LockState::Suspended { until: 1900 }
        );
        assert_eq!(
            state(Some(s), 0, 1899),
            LockState::Suspended { until: 1900 }
        );
        assert_eq!(state(Some(s), 0, 1900), LockState::Open);
        assert_eq!(state(None, 0, 1000), LockState::Open);
    }

    #[test]
    fn an_unlock_lifts_earlier_suspensions_only() {
        let s = Suspension::starting(1000, &POLICY);
        assert_eq!(state(Some(s), 1200, 1300), LockState::Open);
        assert_eq!(
            state(Some(s), 900, 1300),
            LockState::Suspended { until: 1900 }
        );
    }

    #[test]
    fn stored_form_round_trips_and_rejects_garbage() {
        let s = Suspension {
            since: 5,
            until: 905,
        };
        assert_eq!(Suspension::decode(s.encode().as_bytes()), Some(s));
        assert_eq!(Suspension::decode(b"x:1"), None);
        assert_eq!(Suspension::decode(b"\xff"), None);
        assert_eq!(Suspension::decode(b"12"), None);
    }
}
