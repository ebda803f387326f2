//! Unguessable values: session ids, CSRF tokens, demo passwords. All come from the
//! operating system's CSPRNG through `rand`'s thread-local generator.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Length of a token's text form: 32 random bytes (256 bits) in unpadded base64url.
pub const TOKEN_LEN: usize = 43;

/// A new 256-bit token in unpadded base64url (43 characters).
pub fn token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// True when `value` has the exact shape of [`token`]'s output. Anything else sent by a client
/// is refused before it reaches a store.
pub fn is_token(value: &str) -> bool {
    value.len() == TOKEN_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A password a person can type: no characters easily confused (0/O, 1/l/I).
pub fn readable_password(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = vec![0u8; len];
    rand::fill(&mut bytes[..]);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_distinct_and_well_formed() {
        let a = token();
        let b = token();
        assert_ne!(a, b);
        assert!(is_token(&a));
        assert!(!is_token(&a[1..]));
        assert!(!is_token(&format!("{}=", &a[1..])));
    }

    #[test]
    fn readable_passwords_avoid_confusable_characters() {
        let p = readable_password(200);
        assert_eq!(p.chars().count(), 200);
        assert!(!p.contains(['0', 'O', '1', 'l', 'I']));
    }
}
