//! Time-based one-time passwords (RFC 6238 on top of RFC 4226 HOTP).
//!
//! Fixed to HMAC-SHA-1, 6 digits and a 30 second period: that is what Google Authenticator and
//! the other common apps implement without surprises, and what the design requires. Codes are
//! compared in constant time so response timing says nothing about how close a guess was.

use std::fmt;

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// Length of a secret in bytes: 160 bits, the HMAC-SHA-1 output size RFC 4226 recommends.
const SECRET_LEN: usize = 20;
/// Seconds per time step (RFC 6238's default, and the only value all apps honour).
pub const PERIOD_SECS: u64 = 30;
/// Digits in a code (the only length all apps honour).
pub const DIGITS: usize = 6;
/// How many steps either side of the current one are still accepted, to forgive phone clocks
/// that drift and users who type slowly, without widening the guessing window further.
const SKEW_STEPS: u64 = 1;

/// Characters left as they are in the `otpauth://` label and issuer: RFC 3986 unreserved ones.
/// Everything else (spaces, `:`, `@`, CJK school names) is percent-encoded so the label's own
/// `:` separator stays unambiguous.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A TOTP shared secret: 20 random bytes (160 bits) from the OS CSPRNG.
///
/// `Debug` prints `Secret(..)` so a secret that ends up in a log line or a panic message
/// (through some struct that derives `Debug`) does not leak.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret([u8; SECRET_LEN]);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A fresh secret for a new binding; the OS CSPRNG makes it unguessable.
    pub fn generate() -> Secret {
        let mut bytes = [0u8; SECRET_LEN];
        rand::fill(&mut bytes[..]);
        Secret(bytes)
    }

    /// The secret from its stored bytes (after unsealing); `None` unless exactly 20 bytes, so a
    /// truncated or foreign value is refused rather than silently producing wrong codes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Secret> {
        <[u8; SECRET_LEN]>::try_from(bytes).ok().map(Secret)
    }

    /// The raw bytes, for sealing before storage.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32, uppercase, no padding (32 characters): the form authenticator apps
    /// accept for manual entry when the QR code cannot be scanned.
    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(&self.0)
    }

    /// Parses what a person may type or paste: case is ignored, and whitespace and trailing `=`
    /// padding are dropped. `None` unless it decodes to exactly 20 bytes.
    pub fn from_base32(text: &str) -> Option<Secret> {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bytes = BASE32_NOPAD
            .decode(cleaned.trim_end_matches('=').as_bytes())
            .ok()?;
        Secret::from_bytes(&bytes)
    }

    /// Groups of 4 for display: "ABCD EFGH ..." — easier to copy by hand without losing one's
    /// place; [`Secret::from_base32`] accepts it back.
    pub fn to_base32_grouped(&self) -> String {
        let plain = self.to_base32();
        let mut out = String::with_capacity(plain.len() + plain.len() / 4);
        for (i, c) in plain.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push(' ');
            }
            out.push(c);
        }
        out
    }
}

/// `otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`,
/// the Key URI Format that authenticator apps read from a QR code.
///
/// Issuer and account are percent-encoded (the label's `:` stays literal); the issuer appears
/// both in the label and as a parameter because older apps read only one of the two. The
/// parameters are spelled out even though they are the defaults, so no app guesses.
pub fn otpauth_uri(secret: &Secret, issuer: &str, account: &str) -> String {
    let issuer = utf8_percent_encode(issuer, URI_COMPONENT).to_string();
    let account = utf8_percent_encode(account, URI_COMPONENT);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}\
         &algorithm=SHA1&digits={DIGITS}&period={PERIOD_SECS}",
        secret = secret.to_base32(),
    )
}

/// RFC 4226 HOTP value for one counter, already reduced to [`DIGITS`] digits.
fn hotp(secret: &Secret, counter: u64) -> u32 {
    // HMAC accepts keys of any length, so this never fails; falling back to a code nobody can
    // match (u32::MAX has more than 6 digits) keeps the function panic-free regardless.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // Dynamic truncation (RFC 4226 section 5.3): the low nibble of the last byte picks where
    // 31 bits are read from. The digest is 20 bytes and offset <= 15, so offset + 3 <= 18.
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(DIGITS as u32)
}

/// The code as the user sees it: zero-padded to [`DIGITS`] digits.
fn format_code(value: u32) -> String {
    format!("{value:0width$}", width = DIGITS)
}

/// The 6-digit code for a Unix time, for tests and for showing what the app should display.
pub fn code_at(secret: &Secret, unix_secs: u64) -> String {
    format_code(hotp(secret, unix_secs / PERIOD_SECS))
}

/// Reduces a submitted code to its 6 digits, or `None` when it is not a plausible code.
///
/// Surrounding whitespace is dropped and single spaces between digits are tolerated ("123 456",
/// as some apps display it); anything else (letters, double spaces, too few or too many
/// digits) is refused before any HMAC is computed.
fn normalize_code(code: &str) -> Option<[u8; DIGITS]> {
    let trimmed = code.trim();
    if trimmed.contains("  ") {
        return None;
    }
    let mut out = [0u8; DIGITS];
    let mut count = 0;
    for b in trimmed.bytes() {
        match b {
            b'0'..=b'9' => {
                *out.get_mut(count)? = b;
                count += 1;
            }
            b' ' => {}
            _ => return None,
        }
    }
    (count == DIGITS).then_some(out)
}

/// The time step (`unix_secs / 30`) a submitted code matches, checking the current step first
/// and then ±1 step of skew, or `None`.
///
/// Returning the step rather than a bool lets the caller record it and refuse the same step
/// again, which is what makes each code single-use. `code` must be exactly 6 ASCII digits after
/// trimming surrounding whitespace (single internal spaces such as "123 456" are accepted).
/// Every candidate is computed and compared in constant time; only the choice among matches
/// depends on their results.
pub fn matching_step(secret: &Secret, code: &str, unix_secs: u64) -> Option<u64> {
    let submitted = normalize_code(code)?;
    let current = unix_secs / PERIOD_SECS;
    let candidates = [
        Some(current),
        current.checked_sub(SKEW_STEPS),
        current.checked_add(SKEW_STEPS),
    ];
    let mut found = None;
    for step in candidates.into_iter().flatten() {
        let expected = format_code(hotp(secret, step));
        let matches: bool = expected.as_bytes().ct_eq(&submitted).into();
        if matches && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 6238 appendix B SHA-1 key.
    fn rfc_secret() -> Secret {
        Secret::from_bytes(b"12345678901234567890").expect("20 bytes")
    }

    #[test]
    fn rfc6238_sha1_vectors_truncated_to_six_digits() {
        // Appendix B lists 8 digits; 6-digit codes are the last 6 (value mod 10^6).
        let vectors = [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ];
        let secret = rfc_secret();
        for (t, code) in vectors {
            assert_eq!(code_at(&secret, t), code, "T={t}");
            assert_eq!(matching_step(&secret, code, t), Some(t / 30), "T={t}");
        }
    }

    #[test]
    fn rfc4226_hotp_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        let secret = rfc_secret();
        for (counter, value) in expected.into_iter().enumerate() {
            assert_eq!(hotp(&secret, counter as u64), value, "counter {counter}");
        }
    }

    #[test]
    fn accepts_one_step_of_skew_and_no_more() {
        let secret = Secret::generate();
        let now: u64 = 1_700_000_015;
        let step = now / 30;
        for (delta, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let other = step.wrapping_add_signed(delta);
            let code = code_at(&secret, other * 30);
            let result = matching_step(&secret, &code, now);
            if accepted {
                assert_eq!(result, Some(other), "delta {delta}");
            } else if result.is_some() {
                // A code of step ±2 may collide with a neighbouring step's code by chance
                // (1 in 10^6 per step); then it must match that step, never the far one.
                assert_ne!(result, Some(other), "delta {delta}");
            }
        }
    }

    #[test]
    fn preference_order_when_codes_collide() {
        // Collisions found by search with the RFC key: counters 910737 and 910738 share a
        // code, and so do 153567 and 153569.
        let secret = rfc_secret();
        assert_eq!(hotp(&secret, 910_737), hotp(&secret, 910_738));
        assert_eq!(hotp(&secret, 153_567), hotp(&secret, 153_569));

        // The current step is preferred over either neighbour...
        let code = code_at(&secret, 910_737 * 30);
        assert_eq!(matching_step(&secret, &code, 910_737 * 30), Some(910_737));
        assert_eq!(matching_step(&secret, &code, 910_738 * 30), Some(910_738));
        // ...and the previous step over the next one.
        let code = code_at(&secret, 153_567 * 30);
        assert_eq!(matching_step(&secret, &code, 153_568 * 30), Some(153_567));
    }

    #[test]
    fn skew_window_at_time_zero_does_not_underflow() {
        let secret = rfc_secret();
        assert_eq!(matching_step(&secret, &code_at(&secret, 0), 0), Some(0));
        assert_eq!(matching_step(&secret, &code_at(&secret, 30), 0), Some(1));
        let last = u64::MAX;
        assert_eq!(
            matching_step(&secret, &code_at(&secret, last), last),
            Some(last / 30)
        );
    }

    #[test]
    fn code_formats() {
        let secret = rfc_secret();
        let t = 59;
        for ok in ["287082", " 287082\n", "287 082", "2 8 7 0 8 2", "\t287082 "] {
            assert_eq!(matching_step(&secret, ok, t), Some(1), "{ok:?}");
        }
        for bad in [
            "",
            "28708",
            "2870822",
            "287  082",
            "28708a",
            "287-082",
            "２８７０８２",
            "287\t082",
            "+287082",
        ] {
            assert_eq!(matching_step(&secret, bad, t), None, "{bad:?}");
        }
        assert_eq!(matching_step(&secret, "287083", t), None);
    }

    #[test]
    fn secret_bytes_and_base32() {
        let secret = rfc_secret();
        assert_eq!(secret.as_bytes(), b"12345678901234567890");
        assert_eq!(secret.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(
            secret.to_base32_grouped(),
            "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ"
        );
        for text in [
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
            "gezd gnbv gy3t qojq gezd gnbv gy3t qojq",
            " GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n",
        ] {
            assert_eq!(Secret::from_base32(text), Some(secret.clone()), "{text:?}");
        }
        for bad in [
            "",
            "GEZDGNBVGY3TQOJQ",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1",
            "GEZD!",
        ] {
            assert_eq!(Secret::from_base32(bad), None, "{bad:?}");
        }
        assert_eq!(Secret::from_bytes(&[0; 19]), None);
        assert_eq!(Secret::from_bytes(&[0; 21]), None);
    }

    #[test]
    fn generated_secrets_differ_and_round_trip() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a, b);
        assert_eq!(a.to_base32().len(), 32);
        assert_eq!(Secret::from_base32(&a.to_base32_grouped()), Some(a));
    }

    #[test]
    fn debug_hides_the_secret() {
        let secret = rfc_secret();
        let shown = format!("{secret:?}");
        assert_eq!(shown, "Secret(..)");
        assert!(!shown.contains("GEZD"));
    }

    #[test]
    fn otpauth_uri_format() {
        let secret = rfc_secret();
        assert_eq!(
            otpauth_uri(&secret, "Menshen", "alice"),
            "otpauth://totp/Menshen:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Menshen&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(
            otpauth_uri(&secret, "臺北 School:A", "bob@tp.edu.tw"),
            "otpauth://totp/%E8%87%BA%E5%8C%97%20School%3AA:bob%40tp.edu.tw\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=%E8%87%BA%E5%8C%97%20School%3AA\
             &algorithm=SHA1&digits=6&period=30"
        );
    }
}
