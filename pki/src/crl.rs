//! Certificate revocation lists: loading, signature verification, and O(1) lookups.
//!
//! MOICA CRLs are several to tens of MB with hundreds of thousands of entries, and the gateway
//! reloads them periodically, so loading must be fast and a lookup must not scan. Each CRL is
//! verified against its issuer in the [`TrustStore`] (an unverified CRL could only add false
//! revocations, but it could also be a stale one replayed; refusing it keeps the loaded set
//! honest). Entries are kept per issuer key identifier, because several CA generations share
//! one issuer name and their serial number spaces are independent.
//!
//! Serial numbers are stored inline in a fixed-size key, without one heap allocation per
//! entry; x509-parser itself still allocates a little per entry while parsing.

use std::collections::{HashMap, HashSet};

use x509_parser::prelude::*;

use crate::trust::{Purpose, SignedPart, SignerError, TrustStore};
use crate::util::{self, HashAlg};

/// Longest serial stored inline: 20 octets (RFC 5280's maximum) plus the sign octet DER adds
/// when the top bit is set.
const INLINE_SERIAL: usize = 21;

/// A serial number's DER INTEGER content octets, stored inline. DER integers are minimal,
/// so equal serials always have equal bytes and need no normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct InlineSerial {
    len: u8,
    bytes: [u8; INLINE_SERIAL],
}

impl InlineSerial {
    fn new(raw: &[u8]) -> Option<Self> {
        let len = u8::try_from(raw.len()).ok()?;
        let mut bytes = [0u8; INLINE_SERIAL];
        bytes.get_mut(..raw.len())?.copy_from_slice(raw);
        Some(Self { len, bytes })
    }
}

/// The revoked serials of one issuer key.
#[derive(Debug, Clone, Default)]
struct IssuerSerials {
    inline: HashSet<InlineSerial>,
    /// Serials longer than RFC 5280 allows; non-conforming CAs exist, so keep them anyway.
    long: HashSet<Vec<u8>>,
}

impl IssuerSerials {
    fn insert(&mut self, raw: &[u8]) {
        match InlineSerial::new(raw) {
            Some(key) => {
                self.inline.insert(key);
            }
            None => {
                self.long.insert(raw.to_vec());
            }
        }
    }

    fn contains(&self, raw: &[u8]) -> bool {
        match InlineSerial::new(raw) {
            Some(key) => self.inline.contains(&key),
            None => self.long.contains(raw),
        }
    }
}

/// Why a CRL was not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    /// The bytes are not a DER CRL, nor PEM holding `X509 CRL` blocks.
    #[error("not a CRL: {0}")]
    Malformed(String),
    /// No CA in the trust store has the CRL's issuer name (and key identifier).
    #[error("CRL issuer is not in the trust store: {0}")]
    UnknownIssuer(String),
    /// A CA with the CRL's issuer name exists, but the signature does not verify with it, or
    /// the signature algorithm is not RSA with SHA-256/384/512.
    #[error("CRL signature does not verify: {0}")]
    BadSignature(String),
    /// PEM input held no `X509 CRL` block.
    #[error("no CRL found in PEM input")]
    Empty,
}

/// What one loaded CRL said about itself, for logs, metrics and staleness alarms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlInfo {
    /// The issuer's distinguished name (same form as [`crate::VerifiedCertificate::issuer`]).
    pub issuer: String,
    /// Key identifier of the CA whose signature verified, lowercase hex.
    pub issuer_key_id_hex: String,
    /// thisUpdate, Unix seconds.
    pub this_update_unix: i64,
    /// nextUpdate, Unix seconds; a CRL past it is stale and should be refreshed.
    pub next_update_unix: Option<i64>,
    /// Number of revoked-certificate entries in this CRL.
    pub entries: usize,
    /// The cRLNumber extension, lowercase hex, when present.
    pub crl_number_hex: Option<String>,
}

/// The revoked certificates of every loaded CRL, keyed by (issuer key identifier, serial).
///
/// Build a new value on every refresh and swap it in; loading into an existing value merges
/// (union) with what it already holds.
#[derive(Debug, Clone, Default)]
pub struct RevocationLists {
    by_issuer: HashMap<Vec<u8>, IssuerSerials>,
    crls: Vec<CrlInfo>,
}

impl RevocationLists {
    /// No revocations at all.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads one DER CRL or PEM holding one or more `X509 CRL` blocks, each verified against
    /// `trust`. Returns what each loaded CRL said about itself.
    ///
    /// # Errors
    /// [`CrlError`] when a CRL does not parse or does not verify; for PEM input, CRLs before
    /// the failing one stay loaded.
    pub fn load(
        &mut self,
        der_or_pem: &[u8],
        trust: &TrustStore,
    ) -> Result<Vec<CrlInfo>, CrlError> {
        if !util::looks_like_pem(der_or_pem) {
            return Ok(vec![self.load_der(der_or_pem, trust)?]);
        }
        let mut infos = Vec::new();
        for pem in Pem::iter_from_buffer(der_or_pem) {
            let pem = pem.map_err(|e| CrlError::Malformed(e.to_string()))?;
            if pem.label == "X509 CRL" {
                infos.push(self.load_der(&pem.contents, trust)?);
            }
        }
        if infos.is_empty() {
            return Err(CrlError::Empty);
        }
        Ok(infos)
    }

    /// Loads one DER CRL, verified against `trust`.
    ///
    /// # Errors
    /// [`CrlError`] when the CRL does not parse, its issuer is unknown, or its signature does
    /// not verify; nothing is added then.
    pub fn load_der(&mut self, der: &[u8], trust: &TrustStore) -> Result<CrlInfo, CrlError> {
        let (rest, crl) = CertificateRevocationList::from_der(der)
            .map_err(|e| CrlError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CrlError::Malformed("trailing bytes after CRL".into()));
        }
        let tbs = &crl.tbs_cert_list;
        let issuer_name = tbs.issuer.to_string();
        let hash = if crl.signature_algorithm == tbs.signature {
            HashAlg::from_rsa_signature_oid(&crl.signature_algorithm.algorithm.to_id_string())
        } else {
            None
        };
        let signed = SignedPart {
            tbs: tbs.as_ref(),
            hash,
            signature: &crl.signature_value.data,
        };
        let aki = util::authority_key_id(tbs.extensions());
        let ca = trust
            .find_signer(tbs.issuer.as_raw(), aki, &signed, Purpose::Crls)
            .map_err(|e| match e {
                SignerError::NoCandidate => CrlError::UnknownIssuer(issuer_name.clone()),
                SignerError::BadSignature => CrlError::BadSignature(issuer_name.clone()),
            })?;

        let entries = tbs.revoked_certificates.len();
        let serials = self.by_issuer.entry(ca.key_id.clone()).or_default();
        serials.inline.reserve(entries);
        for revoked in &tbs.revoked_certificates {
            serials.insert(revoked.raw_serial());
        }

        let info = CrlInfo {
            issuer: issuer_name,
            issuer_key_id_hex: util::hex(&ca.key_id),
            this_update_unix: tbs.this_update.timestamp(),
            next_update_unix: tbs.next_update.map(|t| t.timestamp()),
            entries,
            crl_number_hex: crl.crl_number().map(|n| util::hex(&n.to_bytes_be())),
        };
        self.crls.push(info.clone());
        Ok(info)
    }

    /// Whether the certificate with DER serial content octets `serial` issued by the CA key
    /// `issuer_key_id` is listed as revoked.
    #[must_use]
    pub fn is_revoked(&self, issuer_key_id: &[u8], serial: &[u8]) -> bool {
        self.by_issuer
            .get(issuer_key_id)
            .is_some_and(|s| s.contains(serial))
    }

    /// Every CRL loaded so far, in loading order.
    #[must_use]
    pub fn crls(&self) -> &[CrlInfo] {
        &self.crls
    }

    /// Loaded CRLs whose nextUpdate is before `now_unix`: the gateway should alarm and
    /// refresh, since revocations newer than them are unknown.
    pub fn stale_at(&self, now_unix: i64) -> impl Iterator<Item = &CrlInfo> {
        self.crls
            .iter()
            .filter(move |c| c.next_update_unix.is_some_and(|n| n < now_unix))
    }

    /// Whether at least one CRL from the CA key `issuer_key_id` has been loaded, so the
    /// gateway can tell "not revoked" from "never checked".
    #[must_use]
    pub fn covers(&self, issuer_key_id: &[u8]) -> bool {
        self.by_issuer.contains_key(issuer_key_id)
    }

    /// Total number of distinct revoked (issuer key, serial) pairs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_issuer
            .values()
            .map(|s| s.inline.len() + s.long.len())
            .sum()
    }

    /// Whether no revocation is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_long_serials_are_both_found() {
        let mut s = IssuerSerials::default();
        s.insert(&[0x01, 0x02]);
        s.insert(&[0xaa; 30]);
        assert!(s.contains(&[0x01, 0x02]));
        assert!(s.contains(&[0xaa; 30]));
        assert!(!s.contains(&[0x01]));
        assert!(!s.contains(&[0x01, 0x02, 0x00]));
        assert!(!s.contains(&[0xaa; 29]));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let trust = TrustStore::new();
        let mut lists = RevocationLists::new();
        for input in [
            &b""[..],
            b"\x30",
            b"\x30\x03\x02\x01",
            b"-----BEGIN X509 CRL-----\n",
        ] {
            assert!(lists.load(input, &trust).is_err());
        }
        assert!(lists.is_empty());
    }
}
