//! Encryption at rest for TOTP secrets (and later other small secrets).
//!
//! A database dump alone must not yield working second factors, so secrets are stored sealed
//! with XChaCha20-Poly1305: its 192-bit nonces can be drawn at random for every value without
//! any risk of reuse, and it needs no hardware support to be fast and constant-time.
//!
//! Keys live in a [`Keyring`] so they can be rotated: every sealed value names the key that
//! sealed it, new values use the primary key, and old keys stay in the ring for opening until
//! everything has been re-sealed ([`Keyring::needs_reseal`] finds what is left).
//!
//! Sealed text form: `v1.<key id>.<base64url(nonce || ciphertext || tag)>`, without padding.
//! The version prefix leaves room for another algorithm later; key ids and base64url never
//! contain `.`, so the form splits unambiguously.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_PAD_INDIFFERENT, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};

/// Key size of XChaCha20-Poly1305.
const KEY_LEN: usize = 32;
/// Nonce size of XChaCha20-Poly1305; large enough that random nonces never collide.
const NONCE_LEN: usize = 24;
/// Poly1305 tag size; a payload shorter than nonce + tag cannot be genuine.
const TAG_LEN: usize = 16;
/// What the index key of each ring key is derived with.
const INDEX_KEY_LABEL: &[u8] = b"menshen keyring: index key v1";
/// Format version written into every sealed value.
const VERSION: &str = "v1";
/// Longest key id; ids are short labels such as `2025a`, not secrets.
const MAX_ID_LEN: usize = 16;

/// Whether `id` is a valid key id: 1-16 characters of `[A-Za-z0-9_-]`, so it can sit in the
/// sealed text form and in a comma/colon separated spec without escaping.
fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One key of the ring: its id and the cipher keyed with it.
struct Entry {
    id: String,
    cipher: XChaCha20Poly1305,
    /// The key for [`Keyring::keyed_hashes`], derived from the sealing key so the same key
    /// material is never used for two purposes directly.
    index_key: [u8; KEY_LEN],
}

/// The keys that seal and open secrets at rest: one primary key for sealing, any number of
/// older keys kept only for opening values sealed before a rotation.
///
/// `Debug` shows key ids only, never key material.
pub struct Keyring {
    primary: Entry,
    others: Vec<Entry>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary.id)
            .field(
                "others",
                &self.others.iter().map(|e| &e.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why a key specification was refused. Messages name entries by position or id, and never
/// contain key material, so they are safe to print at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// An entry is not `ID:BASE64KEY` with a valid id and a 32-byte key.
    BadFormat(String),
    /// Two entries share an id, so a sealed value could not say which key sealed it.
    DuplicateId(String),
    /// No keys at all: nothing could be sealed.
    Empty,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::BadFormat(why) => write!(f, "bad key specification: {why}"),
            KeyError::DuplicateId(id) => write!(f, "bad key specification: duplicate key id {id}"),
            KeyError::Empty => f.write_str("bad key specification: no keys given"),
        }
    }
}

impl std::error::Error for KeyError {}

/// Why a sealed value did not open. None of the variants carries plaintext or key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Not in the `v1.<id>.<base64url>` form (or too short to hold a nonce and tag).
    Malformed,
    /// Sealed with a key id that is not in the ring (a key was removed too early, or the
    /// value comes from another deployment).
    UnknownKey(String),
    /// Authentication failed: the value was altered, belongs to another context, or the key
    /// under this id is not the one that sealed it.
    Forged,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Malformed => f.write_str("sealed value is malformed"),
            OpenError::UnknownKey(id) => write!(f, "sealed value uses unknown key id {id}"),
            OpenError::Forged => f.write_str("sealed value failed authentication"),
        }
    }
}

impl std::error::Error for OpenError {}

/// Parses one `ID:BASE64KEY` entry; `position` (1-based) names it in errors instead of its
/// text, which may be key material.
fn parse_entry(entry: &str, position: usize) -> Result<Entry, KeyError> {
    let Some((id, key_text)) = entry.split_once(':') else {
        return Err(KeyError::BadFormat(format!(
            "entry {position}: expected ID:BASE64KEY"
        )));
    };
    let id = id.trim();
    if !valid_id(id) {
        return Err(KeyError::BadFormat(format!(
            "entry {position}: key id must be 1-{MAX_ID_LEN} characters of A-Z a-z 0-9 _ -"
        )));
    }
    let Ok(key) = STANDARD_PAD_INDIFFERENT.decode(key_text.trim()) else {
        return Err(KeyError::BadFormat(format!(
            "key {id}: not valid standard base64"
        )));
    };
    let Ok(key) = <[u8; KEY_LEN]>::try_from(key.as_slice()) else {
        return Err(KeyError::BadFormat(format!(
            "key {id}: must be {KEY_LEN} bytes, got {}",
            key.len()
        )));
    };
    Ok(Entry {
        id: id.to_owned(),
        cipher: XChaCha20Poly1305::new(&Key::from(key)),
        index_key: hmac_sha256(&key, &[INDEX_KEY_LABEL]),
    })
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    // HMAC takes keys of any length; 32 bytes never fail.
    let mut mac = <Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The parts of a sealed value: key id and decoded payload.
fn split_sealed(sealed: &str) -> Result<(&str, &str), OpenError> {
    let mut parts = sealed.trim().split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(VERSION), Some(id), Some(payload), None) if valid_id(id) => Ok((id, payload)),
        _ => Err(OpenError::Malformed),
    }
}

impl Keyring {
    /// Parses a key specification: comma-separated `ID:BASE64KEY` entries (32-byte keys,
    /// standard base64 with or without padding; whitespace around entries is ignored). The
    /// FIRST entry is the primary key used for sealing, so rotating means prepending a new
    /// entry. Ids are 1-16 characters of `[A-Za-z0-9_-]` and must be unique.
    pub fn parse(spec: &str) -> Result<Keyring, KeyError> {
        if spec.trim().is_empty() {
            return Err(KeyError::Empty);
        }
        let mut entries: Vec<Entry> = Vec::new();
        for (index, entry) in spec.split(',').enumerate() {
            let parsed = parse_entry(entry, index + 1)?;
            if entries.iter().any(|e| e.id == parsed.id) {
                return Err(KeyError::DuplicateId(parsed.id));
            }
            entries.push(parsed);
        }
        let mut entries = entries.into_iter();
        let primary = entries.next().ok_or(KeyError::Empty)?;
        Ok(Keyring {
            primary,
            others: entries.collect(),
        })
    }

    /// A random 32-byte key in the `ID:BASE64` form, for `menshen` to print when generating
    /// configuration. `id` is used as given; an invalid one makes [`Keyring::parse`] refuse
    /// the entry later.
    pub fn generate_entry(id: &str) -> String {
        let mut key = [0u8; KEY_LEN];
        rand::fill(&mut key[..]);
        format!("{id}:{}", STANDARD_PAD_INDIFFERENT.encode(key))
    }

    /// The id new values are sealed under.
    pub fn primary_id(&self) -> &str {
        &self.primary.id
    }

    /// Keyed hashes of `value` under every key of the ring, primary first, each as
    /// `<key id>.<hex>`: what a lookup column holds for a value that must be found again but
    /// never stored in clear (a national ID). Without the key, a leaked column cannot be
    /// tested against the few million possible values. A row hashed under an older key is
    /// still found (look up every hash) and can be re-hashed under the primary key when the
    /// value is at hand again. `context` separates uses, so two columns never share hashes.
    pub fn keyed_hashes(&self, context: &str, value: &[u8]) -> Vec<String> {
        std::iter::once(&self.primary)
            .chain(&self.others)
            .map(|e| {
                let digest = hmac_sha256(&e.index_key, &[context.as_bytes(), &[0], value]);
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                format!("{}.{hex}", e.id)
            })
            .collect()
    }

    /// The entry for a key id, primary first.
    fn find(&self, id: &str) -> Option<&Entry> {
        std::iter::once(&self.primary)
            .chain(&self.others)
            .find(|e| e.id == id)
    }

    /// Seals `plaintext` under the primary key with a fresh random nonce, so sealing the same
    /// value twice gives different text.
    ///
    /// `context` (e.g. the account id) is authenticated associated data: a sealed value copied
    /// to another account's row does not open there. The output is
    /// `v1.<key id>.<base64url nonce||ciphertext>`.
    ///
    /// The cipher refuses only plaintexts beyond its 256 GiB limit, which small secrets never
    /// approach; rather than panic, such input yields a value that [`Keyring::open`] rejects as
    /// [`OpenError::Malformed`].
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce[..]);
        let payload = Payload {
            msg: plaintext,
            aad: context,
        };
        let Ok(ciphertext) = self.primary.cipher.encrypt(&XNonce::from(nonce), payload) else {
            return format!("{VERSION}.{}.", self.primary.id);
        };
        let mut bytes = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        format!(
            "{VERSION}.{}.{}",
            self.primary.id,
            URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// Opens a value sealed by any key in the ring, with the same `context` it was sealed with.
    pub fn open(&self, sealed: &str, context: &[u8]) -> Result<Vec<u8>, OpenError> {
        let (id, payload) = split_sealed(sealed)?;
        let entry = self
            .find(id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(OpenError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| OpenError::Malformed)?;
        entry
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| OpenError::Forged)
    }

    /// True when `sealed` was not made with the primary key, so a re-sealing pass should open
    /// and seal it again. Only the header is read (nothing is authenticated); a value that is
    /// not in the sealed form at all also answers true, so such a pass reaches it and reports
    /// the error from [`Keyring::open`] instead of skipping it silently.
    pub fn needs_reseal(&self, sealed: &str) -> bool {
        match split_sealed(sealed) {
            Ok((id, _)) => id != self.primary.id,
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_hashes_are_stable_per_key_and_separate_contexts() {
        let old = Keyring::generate_entry("old");
        let new = Keyring::generate_entry("new");
        let before = Keyring::parse(&old).unwrap();
        let after = Keyring::parse(&format!("{new},{old}")).unwrap();
        let h1 = before.keyed_hashes("mobile-id", b"A123456789");
        let h2 = after.keyed_hashes("mobile-id", b"A123456789");
        assert_eq!(h1.len(), 1);
        assert!(h1[0].starts_with("old.") && h1[0].len() == 4 + 64);
        // After a rotation the primary hash is new and the old one is still among them.
        assert!(h2[0].starts_with("new."));
        assert_eq!(h2[1], h1[0]);
        assert_ne!(h2[0], h1[0]);
        assert_ne!(before.keyed_hashes("other", b"A123456789"), h1);
        assert_ne!(before.keyed_hashes("mobile-id", b"A123456788"), h1);
        // Another deployment's key gives other hashes.
        let stranger = Keyring::parse(&Keyring::generate_entry("old")).unwrap();
        assert_ne!(stranger.keyed_hashes("mobile-id", b"A123456789"), h1);
    }

    /// A fixed key entry, so failures are reproducible.
    fn entry(id: &str, byte: u8) -> String {
        format!("{id}:{}", STANDARD_PAD_INDIFFERENT.encode([byte; KEY_LEN]))
    }

    fn ring(spec: &str) -> Keyring {
        Keyring::parse(spec).expect("valid spec")
    }

    #[test]
    fn round_trip() {
        let keys = ring(&entry("k1", 7));
        let sealed = keys.seal(b"totp secret bytes", b"account:42");
        assert!(sealed.starts_with("v1.k1."), "{sealed}");
        assert_eq!(
            keys.open(&sealed, b"account:42"),
            Ok(b"totp secret bytes".to_vec())
        );
        let empty = keys.seal(b"", b"");
        assert_eq!(keys.open(&empty, b""), Ok(Vec::new()));
    }

    #[test]
    fn sealing_is_randomised() {
        let keys = ring(&entry("k1", 7));
        let a = keys.seal(b"same", b"ctx");
        let b = keys.seal(b"same", b"ctx");
        assert_ne!(a, b);
        assert!(!a.contains("same"));
    }

    #[test]
    fn wrong_context_is_forged() {
        let keys = ring(&entry("k1", 7));
        let sealed = keys.seal(b"secret", b"account:42");
        assert_eq!(keys.open(&sealed, b"account:43"), Err(OpenError::Forged));
    }

    #[test]
    fn tampering_is_forged() {
        let keys = ring(&entry("k1", 7));
        let sealed = keys.seal(b"secret", b"ctx");
        let (head, payload) = sealed.rsplit_once('.').expect("form");
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).expect("base64");
        for i in [0, NONCE_LEN, bytes.len() - 1] {
            bytes[i] ^= 0x01;
            let tampered = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert_eq!(
                keys.open(&tampered, b"ctx"),
                Err(OpenError::Forged),
                "byte {i}"
            );
            bytes[i] ^= 0x01;
        }
    }

    #[test]
    fn same_id_different_key_is_forged() {
        let sealed = ring(&entry("k1", 7)).seal(b"secret", b"ctx");
        assert_eq!(
            ring(&entry("k1", 8)).open(&sealed, b"ctx"),
            Err(OpenError::Forged)
        );
    }

    #[test]
    fn unknown_key() {
        let sealed = ring(&entry("gone", 7)).seal(b"secret", b"ctx");
        assert_eq!(
            ring(&entry("k1", 7)).open(&sealed, b"ctx"),
            Err(OpenError::UnknownKey("gone".to_owned()))
        );
    }

    #[test]
    fn malformed() {
        let keys = ring(&entry("k1", 7));
        let good = keys.seal(b"secret", b"ctx");
        let payload = good.rsplit_once('.').expect("form").1;
        for bad in [
            String::new(),
            "v1".to_owned(),
            "v1.k1".to_owned(),
            format!("v2.k1.{payload}"),
            format!("v1.k1.{payload}.x"),
            format!("v1.k1.{payload}!"),
            format!("v1.bad id.{payload}"),
            "v1.k1.AAAA".to_owned(),
            "v1.k1.".to_owned(),
        ] {
            assert_eq!(
                keys.open(&bad, b"ctx"),
                Err(OpenError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn rotation() {
        let old_spec = entry("old", 1);
        let old = ring(&old_spec);
        let sealed_old = old.seal(b"secret", b"ctx");

        let rotated = ring(&format!("{}, {old_spec}", entry("new", 2)));
        assert_eq!(rotated.primary_id(), "new");
        assert_eq!(rotated.open(&sealed_old, b"ctx"), Ok(b"secret".to_vec()));
        assert!(rotated.needs_reseal(&sealed_old));

        let sealed_new = rotated.seal(b"secret", b"ctx");
        assert!(sealed_new.starts_with("v1.new."));
        assert!(!rotated.needs_reseal(&sealed_new));
        assert_eq!(rotated.open(&sealed_new, b"ctx"), Ok(b"secret".to_vec()));
        assert!(!old.needs_reseal(&sealed_old));
        assert!(rotated.needs_reseal("garbage"));
        // The old ring alone cannot open what the new key sealed.
        assert_eq!(
            old.open(&sealed_new, b"ctx"),
            Err(OpenError::UnknownKey("new".to_owned()))
        );
    }

    #[test]
    fn parse_accepts_padding_or_not() {
        let padded = entry("a", 3);
        assert!(padded.ends_with('='));
        let unpadded = padded.trim_end_matches('=').to_owned();
        let sealed = ring(&padded).seal(b"x", b"");
        assert_eq!(ring(&unpadded).open(&sealed, b""), Ok(b"x".to_vec()));
    }

    #[test]
    fn generated_entries_parse_and_differ() {
        let a = Keyring::generate_entry("k-2025_a");
        let b = Keyring::generate_entry("k-2025_a");
        assert_ne!(a, b);
        assert!(a.starts_with("k-2025_a:"));
        let keys = ring(&a);
        assert_eq!(keys.primary_id(), "k-2025_a");
        let sealed = keys.seal(b"x", b"y");
        assert_eq!(keys.open(&sealed, b"y"), Ok(b"x".to_vec()));
    }

    #[test]
    fn parse_errors_do_not_leak_key_material() {
        let good = entry("k1", 9);
        let key_text = good.split_once(':').expect("form").1.to_owned();
        let short = STANDARD_PAD_INDIFFERENT.encode([9u8; 31]);
        let cases = [
            (String::new(), KeyError::Empty),
            ("  ".to_owned(), KeyError::Empty),
            (
                key_text.clone(),
                KeyError::BadFormat("entry 1: expected ID:BASE64KEY".into()),
            ),
            (
                format!("k1:{}!", &key_text[..10]),
                KeyError::BadFormat("key k1: not valid standard base64".into()),
            ),
            (
                format!("k1:{short}"),
                KeyError::BadFormat("key k1: must be 32 bytes, got 31".into()),
            ),
            (
                format!("{good},k1:{key_text}"),
                KeyError::DuplicateId("k1".into()),
            ),
            (
                format!("{good},"),
                KeyError::BadFormat("entry 2: expected ID:BASE64KEY".into()),
            ),
            (
                format!("{}:{key_text}", &key_text[..20]),
                KeyError::BadFormat(
                    "entry 1: key id must be 1-16 characters of A-Z a-z 0-9 _ -".into(),
                ),
            ),
            (
                format!(":{key_text}"),
                KeyError::BadFormat(
                    "entry 1: key id must be 1-16 characters of A-Z a-z 0-9 _ -".into(),
                ),
            ),
        ];
        for (spec, expected) in cases {
            let err = Keyring::parse(&spec).expect_err("refused");
            assert_eq!(err, expected, "{spec:?}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(&key_text[..8]), "{shown}");
            assert!(!shown.contains(&short[..8]), "{shown}");
        }
    }

    #[test]
    fn debug_shows_ids_only() {
        let spec = format!("{},{}", entry("new", 2), entry("old", 1));
        let shown = format!("{:?}", ring(&spec));
        assert_eq!(shown, "Keyring { primary: \"new\", others: [\"old\"] }");
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            OpenError::Forged.to_string(),
            "sealed value failed authentication"
        );
        assert_eq!(
            OpenError::UnknownKey("k9".into()).to_string(),
            "sealed value uses unknown key id k9"
        );
        assert_eq!(
            KeyError::Empty.to_string(),
            "bad key specification: no keys given"
        );
    }
}
