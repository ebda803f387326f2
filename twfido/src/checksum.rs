//! `sp_checksum` and `idp_checksum`: SHA-256 of the concatenated fields as 64 lowercase hex
//! characters, sealed with AES-256-GCM under the key MOI shares with the school, written as
//! the lowercase hex of IV ‖ ciphertext ‖ tag (12 + 64 + 16 bytes, 184 characters).

use std::fmt;

use aes_gcm::aead::{Aead, Nonce};
use aes_gcm::{Aes256Gcm, Key, KeyInit};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The sealed text is always the 64-character hex digest.
const DIGEST_HEX_LEN: usize = 64;
/// Length in hex characters of every well-formed checksum.
pub const CHECKSUM_HEX_LEN: usize = 2 * (IV_LEN + DIGEST_HEX_LEN + TAG_LEN);

/// The AES-256 key MOI issued with the service ID. Whoever holds it can push prompts to any
/// ID in the school's name, so `Debug` shows nothing of it.
#[derive(Clone)]
pub struct SpKey([u8; 32]);

impl SpKey {
    pub fn new(bytes: [u8; 32]) -> SpKey {
        SpKey(bytes)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(self.0))
    }
}

impl fmt::Debug for SpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpKey(..)")
    }
}

/// Lowercase hex SHA-256 of the fields concatenated with no separator; a missing optional
/// field is passed as "".
pub fn digest_hex(fields: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update(field.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Seals the digest of `fields` under a fresh random IV: a fixed IV under one GCM key would
/// leak the authentication subkey (several public clients use all zeros; MOI reads the IV
/// from the prefix, so a random one is accepted).
pub fn seal(key: &SpKey, fields: &[&str]) -> String {
    let mut iv = [0u8; IV_LEN];
    rand::fill(&mut iv[..]);
    seal_with_iv(key, fields, iv)
}

/// [`seal`] with a given IV: for the stand-in's tests of zero IVs, never for real requests.
pub fn seal_with_iv(key: &SpKey, fields: &[&str], iv: [u8; IV_LEN]) -> String {
    let digest = digest_hex(fields);
    // Encrypting 64 bytes under a valid key and 12-byte nonce cannot fail; an empty
    // ciphertext (never accepted by `open`) stands in rather than a panic.
    let sealed = key
        .cipher()
        .encrypt(&Nonce::<Aes256Gcm>::from(iv), digest.as_bytes())
        .unwrap_or_default();
    let mut out = Vec::with_capacity(IV_LEN + sealed.len());
    out.extend_from_slice(&iv);
    out.extend_from_slice(&sealed);
    hex::encode(out)
}

/// Whether `checksum` seals the digest of `fields` under `key`. Decrypts with the IV from
/// the prefix and compares the plaintext with the fresh digest in constant time; checksum
/// strings are never compared (two valid ones differ by their random IVs). Upper-case hex is
/// accepted.
pub fn verify(key: &SpKey, fields: &[&str], checksum: &str) -> bool {
    let Ok(bytes) = hex::decode(checksum.trim()) else {
        return false;
    };
    if bytes.len() != IV_LEN + DIGEST_HEX_LEN + TAG_LEN {
        return false;
    }
    let (iv, sealed) = bytes.split_at(IV_LEN);
    let Ok(iv) = <[u8; IV_LEN]>::try_from(iv) else {
        return false;
    };
    let Ok(plain) = key.cipher().decrypt(&Nonce::<Aes256Gcm>::from(iv), sealed) else {
        return false;
    };
    let expected = digest_hex(fields);
    // Some implementations may write the digest in upper case; hex is case-blind.
    let plain = plain.to_ascii_lowercase();
    bool::from(plain.as_slice().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SpKey {
        SpKey::new([7; 32])
    }

    #[test]
    fn digest_is_lowercase_hex_of_the_concatenation() {
        // SHA-256("abc"), split across fields and an empty optional one.
        assert_eq!(
            digest_hex(&["a", "", "bc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sealed_checksums_open_and_differ() {
        let fields = [
            "txn-1",
            "12345678901234567890",
            "A123456789",
            "SIGN",
            "I-SCAN",
            "hi",
            "c2ln",
        ];
        let one = seal(&key(), &fields);
        let two = seal(&key(), &fields);
        assert_eq!(one.len(), CHECKSUM_HEX_LEN);
        assert_eq!(one, one.to_ascii_lowercase());
        assert_ne!(one, two, "random IVs");
        assert!(verify(&key(), &fields, &one));
        assert!(verify(&key(), &fields, &two));
        assert!(verify(&key(), &fields, &one.to_ascii_uppercase()));
        // A zero IV (several public clients) opens too.
        let zero = seal_with_iv(&key(), &fields, [0; 12]);
        assert!(zero.starts_with(&"0".repeat(24)));
        assert!(verify(&key(), &fields, &zero));
    }

    #[test]
    fn tampered_or_foreign_checksums_are_refused() {
        let fields = ["txn-1", "0", "ticket"];
        let good = seal(&key(), &fields);
        // Any flipped character: in the IV, the ciphertext or the tag.
        for at in [0, 30, CHECKSUM_HEX_LEN - 1] {
            let mut bytes = good.clone().into_bytes();
            bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(!verify(&key(), &fields, &tampered), "flip at {at}");
        }
        assert!(!verify(&key(), &["txn-1", "0", "ticket2"], &good));
        assert!(!verify(&key(), &["txn-2", "0", "ticket"], &good));
        assert!(!verify(&SpKey::new([8; 32]), &fields, &good));
        assert!(!verify(&key(), &fields, &good[..CHECKSUM_HEX_LEN - 2]));
        assert!(!verify(&key(), &fields, "not hex"));
        assert!(!verify(&key(), &fields, ""));
        // The digest in clear (no encryption) is not a checksum.
        assert!(!verify(&key(), &fields, &digest_hex(&fields)));
    }

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(format!("{:?}", key()), "SpKey(..)");
    }
}
