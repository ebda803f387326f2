//! The data the phone signs: a fresh challenge made by Menshen, never a constant (a
//! signature over a fixed text would be a bearer token that never expires).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;

/// MOI refuses `sign_data` longer than this (`SIGNDATA_LEN_LIMIT`).
pub const SIGN_DATA_LIMIT: usize = 1024;

/// A challenge: 256 random bits, the origin the person signs in to, when it was issued and
/// until when it is good. The TBS bytes are its compact JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    tbs: Vec<u8>,
    sign_data: String,
}

#[derive(Serialize)]
struct Fields<'a> {
    nonce: String,
    origin: &'a str,
    iat: u64,
    exp: u64,
}

/// Why a challenge could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("the origin makes the challenge longer than MOI's 1024-character limit")]
    TooLong,
}

impl Challenge {
    /// A new challenge for `origin` issued at `issued_at` (Unix seconds; the caller's clock)
    /// and good for `lifetime_secs`.
    pub fn new(
        origin: &str,
        issued_at: u64,
        lifetime_secs: u64,
    ) -> Result<Challenge, ChallengeError> {
        let mut nonce = [0u8; 32];
        rand::fill(&mut nonce[..]);
        let fields = Fields {
            nonce: URL_SAFE_NO_PAD.encode(nonce),
            origin,
            iat: issued_at,
            exp: issued_at.saturating_add(lifetime_secs),
        };
        let tbs = serde_json::to_vec(&fields).map_err(|_| ChallengeError::TooLong)?;
        let sign_data = STANDARD.encode(&tbs);
        if sign_data.len() > SIGN_DATA_LIMIT {
            return Err(ChallengeError::TooLong);
        }
        Ok(Challenge { tbs, sign_data })
    }

    /// The bytes the signature covers (`tbs_encoding=base64` unwraps `sign_data` to these).
    pub fn tbs(&self) -> &[u8] {
        &self.tbs
    }

    /// `sign_info.sign_data`: standard base64 of the TBS bytes.
    pub fn sign_data(&self) -> &str {
        &self.sign_data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_fresh_and_carry_origin_and_time() {
        let a = Challenge::new("https://portal.school.example", 1_790_000_000, 300).unwrap();
        let b = Challenge::new("https://portal.school.example", 1_790_000_000, 300).unwrap();
        assert_ne!(a.tbs(), b.tbs());
        assert_eq!(STANDARD.decode(a.sign_data()).unwrap(), a.tbs());
        let v: serde_json::Value = serde_json::from_slice(a.tbs()).unwrap();
        assert_eq!(v["origin"], "https://portal.school.example");
        assert_eq!(v["iat"], 1_790_000_000u64);
        assert_eq!(v["exp"], 1_790_000_300u64);
        let nonce = URL_SAFE_NO_PAD
            .decode(v["nonce"].as_str().unwrap())
            .unwrap();
        assert_eq!(nonce.len(), 32);
    }

    #[test]
    fn over_the_limit_is_refused() {
        let origin = format!("https://{}.example", "a".repeat(800));
        assert_eq!(Challenge::new(&origin, 0, 0), Err(ChallengeError::TooLong));
    }
}
