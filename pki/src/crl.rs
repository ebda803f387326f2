//! Certificate revocation lists: loading, signature verification, freshness, and O(1) lookups.
//!
//! MOICA CRLs are several to tens of MB with hundreds of thousands of entries, and the gateway
//! reloads them periodically, so loading must be fast and a lookup must not scan. A CRL is
//! read in two passes over the same bytes:
//!
//! 1. the envelope (issuer, times, extensions) is decoded, skipping over the entries, and the
//!    signature is verified against the issuer in the [`TrustStore`];
//! 2. only then are the entries walked, one at a time, straight into a hash set, without a
//!    vector of parsed entries; memory stays close to the input size plus the set.
//!
//! x509-parser (used elsewhere) parses every entry before anything can be checked, so the
//! envelope is walked with `der`'s reader and `x509-cert`'s extension types instead.
//!
//! A CRL is refused, with a specific [`CrlError`], when it cannot be used as a complete list
//! of the revoked certificates of its issuer key: a delta CRL, a partitioned or indirect
//! one, one with a critical extension this code does not understand, one whose thisUpdate is
//! in the future or which is past nextUpdate plus the grace, and one that would make the
//! issuer key's thisUpdate or cRLNumber go backwards (an older, validly signed list replayed
//! over plain HTTP). One list is kept per issuer key (and scope); a newer one replaces it.
//!
//! Serial numbers are compared without leading zero octets, since some CAs write the serial
//! in a CRL with a different (non-minimal) encoding from the certificate's.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use der::asn1::{AnyRef, BitStringRef};
use der::oid::ObjectIdentifier;
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};
use x509_cert::ext::Extensions;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint;
use x509_cert::spki::AlgorithmIdentifierRef;
use x509_cert::time::Time;
use x509_parser::prelude::{FromDer, Pem, X509Name};

use crate::trust::{CrlIssuer, Purpose, SignedPart, SignerError, TrustStore};
use crate::util::{self, HashAlg};

/// The largest CRL input [`RevocationLists::load`] accepts, and what the gateway's
/// downloader should stop reading at. MOICA's complete lists are tens of MiB.
pub const MAX_CRL_BYTES: usize = 64 * 1024 * 1024;

/// How far in the future a thisUpdate may lie (clock skew between the CA and us).
pub const CLOCK_SKEW_SECS: i64 = 300;

/// Longest serial stored inline: 20 octets (RFC 5280's maximum) plus one, for
/// non-conforming CAs that go one octet over.
const INLINE_SERIAL: usize = 21;

const OID_AUTHORITY_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
const OID_ISSUER_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.18");
const OID_CRL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.20");
const OID_DELTA_CRL_INDICATOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.27");
const OID_ISSUING_DISTRIBUTION_POINT: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.28");
const OID_FRESHEST_CRL: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.46");
const OID_AUTHORITY_INFO_ACCESS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.1");
const OID_REASON_CODE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.21");
const OID_HOLD_INSTRUCTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.23");
const OID_INVALIDITY_DATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.24");
const OID_CERTIFICATE_ISSUER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.29");

/// CRL extensions understood here (RFC 5280 §5.2); the delta indicator and the issuing
/// distribution point are understood in the sense that they are acted on (refused or
/// scoped). freshestCRL only points at delta CRLs, which are not used.
const KNOWN_CRL_EXTENSIONS: [ObjectIdentifier; 7] = [
    OID_AUTHORITY_KEY_ID,
    OID_ISSUER_ALT_NAME,
    OID_CRL_NUMBER,
    OID_DELTA_CRL_INDICATOR,
    OID_ISSUING_DISTRIBUTION_POINT,
    OID_FRESHEST_CRL,
    OID_AUTHORITY_INFO_ACCESS,
];

/// A serial number's magnitude (leading zero octets removed), the one form serials are
/// stored and looked up in, whatever encoding the CRL or the certificate used.
pub(crate) fn normalise_serial(raw: &[u8]) -> &[u8] {
    let start = raw.iter().position(|&b| b != 0).unwrap_or(raw.len());
    &raw[start..]
}

/// A serial number's magnitude, stored inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct InlineSerial {
    len: u8,
    bytes: [u8; INLINE_SERIAL],
}

impl InlineSerial {
    fn new(magnitude: &[u8]) -> Option<Self> {
        let len = u8::try_from(magnitude.len()).ok()?;
        let mut bytes = [0u8; INLINE_SERIAL];
        bytes.get_mut(..magnitude.len())?.copy_from_slice(magnitude);
        Some(Self { len, bytes })
    }
}

/// The revoked serials of one CRL.
#[derive(Debug, Clone, Default)]
struct IssuerSerials {
    inline: HashSet<InlineSerial>,
    /// Serials longer than RFC 5280 allows; non-conforming CAs exist, so keep them anyway.
    long: HashSet<Vec<u8>>,
}

impl IssuerSerials {
    fn insert(&mut self, raw: &[u8]) {
        let magnitude = normalise_serial(raw);
        match InlineSerial::new(magnitude) {
            Some(key) => {
                self.inline.insert(key);
            }
            None => {
                self.long.insert(magnitude.to_vec());
            }
        }
    }

    fn contains(&self, raw: &[u8]) -> bool {
        let magnitude = normalise_serial(raw);
        match InlineSerial::new(magnitude) {
            Some(key) => self.inline.contains(&key),
            None => self.long.contains(magnitude),
        }
    }

    fn len(&self) -> usize {
        self.inline.len() + self.long.len()
    }
}

/// Which certificates a CRL speaks about (its issuingDistributionPoint's
/// onlyContainsUserCerts / onlyContainsCACerts). A list about end-entity certificates only
/// says nothing about a CA certificate, and the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrlScope {
    /// Every certificate the issuer key signed.
    All,
    /// End-entity certificates only.
    UserCertificates,
    /// CA certificates only (an authority revocation list, ARL).
    CaCertificates,
}

impl CrlScope {
    fn covers(self, subject_is_ca: bool) -> bool {
        match self {
            Self::All => true,
            Self::UserCertificates => !subject_is_ca,
            Self::CaCertificates => subject_is_ca,
        }
    }
}

/// Why a CRL was not loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    /// The bytes are not a DER CRL, nor PEM holding `X509 CRL` blocks.
    #[error("not a CRL: {0}")]
    Malformed(String),
    /// The input is larger than [`MAX_CRL_BYTES`].
    #[error("CRL input of {0} bytes is larger than the {MAX_CRL_BYTES}-byte limit")]
    TooLarge(usize),
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
    /// A delta CRL (deltaCRLIndicator): it lists only changes since a base CRL, so merging
    /// it as a complete list would un-revoke everything else.
    #[error("delta CRL from {0} is not supported; configure the complete CRL")]
    Delta(String),
    /// A partitioned or indirect CRL (issuingDistributionPoint with onlySomeReasons,
    /// indirectCRL or onlyContainsAttributeCerts, or entries naming another issuer): it is
    /// not the complete list of its issuer's revocations.
    #[error("partitioned or indirect CRL from {issuer} is not supported: {detail}")]
    Partitioned {
        /// The CRL issuer's name.
        issuer: String,
        /// What made it partial.
        detail: String,
    },
    /// A critical CRL or entry extension not understood here (RFC 5280 §5.2 forbids using
    /// such a CRL).
    #[error("CRL from {issuer} has an unsupported critical extension {oid}")]
    UnsupportedCriticalExtension {
        /// The CRL issuer's name.
        issuer: String,
        /// The extension's OID, dotted.
        oid: String,
    },
    /// thisUpdate is more than [`CLOCK_SKEW_SECS`] in the future.
    #[error("CRL from {issuer} is not valid yet (thisUpdate {this_update_unix})")]
    NotYetValid {
        /// The CRL issuer's name.
        issuer: String,
        /// thisUpdate, Unix seconds.
        this_update_unix: i64,
    },
    /// now is past nextUpdate plus the grace: the list is too old to say anything current.
    #[error("CRL from {issuer} is out of date (nextUpdate {next_update_unix})")]
    Expired {
        /// The CRL issuer's name.
        issuer: String,
        /// nextUpdate, Unix seconds.
        next_update_unix: i64,
    },
    /// The CRL has no nextUpdate, so nobody can tell when it stops being current.
    #[error("CRL from {0} has no nextUpdate")]
    NoNextUpdate(String),
    /// The CRL is older than the one held for the same issuer key: its thisUpdate or its
    /// cRLNumber is lower (a replayed old list).
    #[error("CRL from {issuer} is older than the one loaded: {detail}")]
    Rollback {
        /// The CRL issuer's name.
        issuer: String,
        /// Which field went backwards, with both values.
        detail: String,
    },
}

/// The clock a CRL is judged by: when a CRL is loaded, and when a verification asks whether
/// a current CRL covers a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Now, Unix seconds.
    pub now_unix: i64,
    /// How long past its nextUpdate a CRL still counts as current, seconds: the time a
    /// late publication or a failed download is tolerated (the gateway's
    /// `certificate.crl_grace`, 12 hours by default).
    pub grace_secs: i64,
}

impl Freshness {
    /// Whether a CRL with this nextUpdate is current.
    #[must_use]
    pub fn is_current(&self, next_update_unix: i64) -> bool {
        self.now_unix <= next_update_unix.saturating_add(self.grace_secs)
    }
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
    /// nextUpdate, Unix seconds (a CRL without one is refused, so always present; kept an
    /// `Option` for the callers written when it was not).
    pub next_update_unix: Option<i64>,
    /// Number of revoked-certificate entries in this CRL.
    pub entries: usize,
    /// The cRLNumber extension, lowercase hex, when present.
    pub crl_number_hex: Option<String>,
    /// Which certificates it speaks about.
    pub scope: CrlScope,
}

/// Whether the CRLs held speak for a verified certificate path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationStatus {
    /// Every certificate on the path was looked up in a current CRL of its issuer, and none
    /// is listed.
    Good,
    /// A certificate on the path is listed ([`crate::verify()`] turns this into
    /// [`crate::Rejection::Revoked`]).
    Revoked {
        /// The name of the CA whose CRL lists it.
        issuer: String,
        /// That CA's key identifier, lowercase hex.
        issuer_key_id_hex: String,
        /// Whether the listed certificate is the card's own (else a CA on its path).
        leaf: bool,
    },
    /// A CA on the path has no current CRL (none loaded, or past nextUpdate plus the grace):
    /// nothing says the certificate is revoked, and nothing says it is not. Fail closed,
    /// unless `leaf` and a good OCSP answer about the card stands in.
    NoCurrentCrl {
        /// The name of the CA whose current CRL is missing.
        issuer: String,
        /// That CA's key identifier, lowercase hex.
        issuer_key_id_hex: String,
        /// Whether the missing CRL is the one about the card itself (an OCSP answer about
        /// the card can replace it); `false` for a CA's issuer (e.g. the root's ARL).
        leaf: bool,
    },
}

/// One certificate on a verified path and the current CRL of its issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlCheck {
    /// Whether the certificate is the card's own (else a CA certificate on its path).
    pub leaf: bool,
    /// The issuer's name.
    pub issuer: String,
    /// The issuer's key identifier, lowercase hex.
    pub issuer_key_id_hex: String,
    /// The issuer's current CRL speaking about this kind of certificate, if one is held.
    pub crl: Option<CrlInfo>,
}

/// One loaded CRL: what it said, and its serials.
#[derive(Debug)]
struct LoadedCrl {
    info: CrlInfo,
    next_update_unix: i64,
    /// cRLNumber magnitude, for the rollback check.
    crl_number: Option<Vec<u8>>,
    serials: IssuerSerials,
}

/// The newest CRL of every issuer key (and scope), for O(1) lookups of (issuer key, serial).
///
/// Cloning is cheap (each list is shared), so a refresh clones the lists in force, loads
/// each source into the clone on its own (a failed source keeps its issuer's previous list,
/// which then ages out by nextUpdate), and swaps the clone in. Keeping the previous lists is
/// also what makes the rollback check work across refreshes.
#[derive(Debug, Clone, Default)]
pub struct RevocationLists {
    by_issuer: HashMap<(Vec<u8>, CrlScope), Arc<LoadedCrl>>,
}

/// The parts of a CRL read before its signature is checked; the entries are only located.
struct Envelope<'a> {
    tbs: &'a [u8],
    hash: Option<HashAlg>,
    signature: &'a [u8],
    issuer_raw: &'a [u8],
    this_update_unix: i64,
    next_update_unix: Option<i64>,
    /// The content octets of revokedCertificates, when present.
    entries: &'a [u8],
    extensions: Extensions,
}

impl RevocationLists {
    /// No revocations at all.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads one DER CRL or PEM holding one or more `X509 CRL` blocks, each verified against
    /// `trust` and judged by `at`. Returns what each loaded CRL said about itself.
    ///
    /// # Errors
    /// [`CrlError`] when the input is larger than [`MAX_CRL_BYTES`] or a CRL is refused; for
    /// PEM input, CRLs before the failing one stay loaded.
    pub fn load(
        &mut self,
        der_or_pem: &[u8],
        trust: &TrustStore,
        at: Freshness,
    ) -> Result<Vec<CrlInfo>, CrlError> {
        if der_or_pem.len() > MAX_CRL_BYTES {
            return Err(CrlError::TooLarge(der_or_pem.len()));
        }
        if !util::looks_like_pem(der_or_pem) {
            return Ok(vec![self.load_der(der_or_pem, trust, at)?]);
        }
        let mut infos = Vec::new();
        for pem in Pem::iter_from_buffer(der_or_pem) {
            let pem = pem.map_err(|e| CrlError::Malformed(e.to_string()))?;
            if pem.label == "X509 CRL" {
                infos.push(self.load_der(&pem.contents, trust, at)?);
            }
        }
        if infos.is_empty() {
            return Err(CrlError::Empty);
        }
        Ok(infos)
    }

    /// Loads one DER CRL: verified against `trust` first, then checked (kind, critical
    /// extensions, times by `at`, no rollback), then its entries read. It replaces the list
    /// held for the same issuer key and scope.
    ///
    /// # Errors
    /// [`CrlError`] describing the first failed check; nothing changes then.
    pub fn load_der(
        &mut self,
        der: &[u8],
        trust: &TrustStore,
        at: Freshness,
    ) -> Result<CrlInfo, CrlError> {
        if der.len() > MAX_CRL_BYTES {
            return Err(CrlError::TooLarge(der.len()));
        }
        let env = Envelope::decode(der).map_err(|e| CrlError::Malformed(e.to_string()))?;
        let issuer = X509Name::from_der(env.issuer_raw)
            .map(|(_, name)| name.to_string())
            .map_err(|e| CrlError::Malformed(format!("issuer name: {e}")))?;

        let mut authority_key_id = None;
        for ext in &env.extensions {
            if ext.extn_id == OID_AUTHORITY_KEY_ID {
                let aki = AuthorityKeyIdentifier::from_der(ext.extn_value.as_bytes())
                    .map_err(|e| CrlError::Malformed(format!("authority key identifier: {e}")))?;
                authority_key_id = aki.key_identifier.map(|k| k.as_bytes().to_vec());
            }
        }
        let signed = SignedPart {
            tbs: env.tbs,
            hash: env.hash,
            signature: env.signature,
        };
        let ca = trust
            .find_signer(
                env.issuer_raw,
                authority_key_id.as_deref(),
                &signed,
                Purpose::Crls,
            )
            .map_err(|e| match e {
                SignerError::NoCandidate => CrlError::UnknownIssuer(issuer.clone()),
                SignerError::BadSignature => CrlError::BadSignature(issuer.clone()),
            })?;

        // From here on the CRL is known to come from `ca`.
        let (scope, crl_number) = crl_extensions(&env.extensions, &issuer)?;
        if env.this_update_unix > at.now_unix.saturating_add(CLOCK_SKEW_SECS) {
            return Err(CrlError::NotYetValid {
                issuer,
                this_update_unix: env.this_update_unix,
            });
        }
        let next_update_unix = env
            .next_update_unix
            .ok_or_else(|| CrlError::NoNextUpdate(issuer.clone()))?;
        if !at.is_current(next_update_unix) {
            return Err(CrlError::Expired {
                issuer,
                next_update_unix,
            });
        }
        let key = (ca.key_id.clone(), scope);
        if let Some(held) = self.by_issuer.get(&key) {
            check_not_older(held, env.this_update_unix, crl_number.as_deref(), &issuer)?;
        }

        let serials = read_entries(env.entries, &issuer)?;
        let info = CrlInfo {
            issuer,
            issuer_key_id_hex: util::hex(&ca.key_id),
            this_update_unix: env.this_update_unix,
            next_update_unix: Some(next_update_unix),
            entries: serials.len(),
            crl_number_hex: crl_number.as_deref().map(util::hex),
            scope,
        };
        self.by_issuer.insert(
            key,
            Arc::new(LoadedCrl {
                info: info.clone(),
                next_update_unix,
                crl_number,
                serials,
            }),
        );
        Ok(info)
    }

    /// Whether the certificate with serial `serial` (DER INTEGER content octets, leading
    /// zeros or not) issued by the CA key `issuer_key_id` is listed as revoked by any CRL
    /// held for that key, current or not: a listed certificate stays revoked.
    #[must_use]
    pub fn is_revoked(&self, issuer_key_id: &[u8], serial: &[u8]) -> bool {
        [
            CrlScope::All,
            CrlScope::UserCertificates,
            CrlScope::CaCertificates,
        ]
        .into_iter()
        .filter_map(|scope| self.by_issuer.get(&(issuer_key_id.to_vec(), scope)))
        .any(|crl| crl.serials.contains(serial))
    }

    /// The current CRL (by `at`) of the CA key `issuer_key_id` that speaks about a
    /// certificate of that kind (`subject_is_ca`), if one is held: without one, "not
    /// listed" does not mean "not revoked".
    #[must_use]
    pub fn current_crl(
        &self,
        issuer_key_id: &[u8],
        subject_is_ca: bool,
        at: Freshness,
    ) -> Option<&CrlInfo> {
        self.by_issuer
            .iter()
            .filter(|((key, scope), crl)| {
                key == issuer_key_id
                    && scope.covers(subject_is_ca)
                    && at.is_current(crl.next_update_unix)
            })
            .map(|(_, crl)| &crl.info)
            .max_by_key(|info| info.next_update_unix)
    }

    /// The CAs of `trust` that verifications need a CRL from (see
    /// [`TrustStore::crl_issuers`]) and that have no current one by `at`: what the gateway
    /// should warn about at start and in `check-config`, and alert on.
    #[must_use]
    pub fn uncovered(&self, trust: &TrustStore, at: Freshness) -> Vec<CrlIssuer> {
        trust
            .crl_issuers()
            .into_iter()
            .filter(|ca| {
                self.current_crl(&ca.key_id, ca.about_ca_certificates, at)
                    .is_none()
            })
            .collect()
    }

    /// The CRL held for every issuer key and scope, ordered by issuer key.
    #[must_use]
    pub fn crls(&self) -> Vec<&CrlInfo> {
        let mut infos: Vec<&CrlInfo> = self.by_issuer.values().map(|c| &c.info).collect();
        infos.sort_by(|a, b| a.issuer_key_id_hex.cmp(&b.issuer_key_id_hex));
        infos
    }

    /// Held CRLs whose nextUpdate is before `now_unix`: the gateway should alarm and
    /// refresh, since revocations newer than them are unknown.
    pub fn stale_at(&self, now_unix: i64) -> impl Iterator<Item = &CrlInfo> {
        self.by_issuer
            .values()
            .filter(move |c| c.next_update_unix < now_unix)
            .map(|c| &c.info)
    }

    /// Whether a CRL (current or not) from the CA key `issuer_key_id` is held. Use
    /// [`RevocationLists::current_crl`] to decide about a login.
    #[must_use]
    pub fn covers(&self, issuer_key_id: &[u8]) -> bool {
        self.by_issuer.keys().any(|(key, _)| key == issuer_key_id)
    }

    /// Total number of revoked-certificate entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_issuer.values().map(|c| c.serials.len()).sum()
    }

    /// Whether no revocation is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Refuses a CRL older than `held`: thisUpdate or cRLNumber lower. Equal is the same list
/// downloaded again, which is fine.
fn check_not_older(
    held: &LoadedCrl,
    this_update_unix: i64,
    crl_number: Option<&[u8]>,
    issuer: &str,
) -> Result<(), CrlError> {
    if this_update_unix < held.info.this_update_unix {
        return Err(CrlError::Rollback {
            issuer: issuer.to_owned(),
            detail: format!(
                "thisUpdate {this_update_unix} is before the loaded list's {}",
                held.info.this_update_unix
            ),
        });
    }
    if let (Some(new), Some(old)) = (crl_number, held.crl_number.as_deref())
        && compare_magnitudes(new, old) == Ordering::Less
    {
        return Err(CrlError::Rollback {
            issuer: issuer.to_owned(),
            detail: format!(
                "cRLNumber {} is below the loaded list's {}",
                util::hex(new),
                util::hex(old)
            ),
        });
    }
    Ok(())
}

/// Orders two unsigned big-endian magnitudes without leading zeros.
fn compare_magnitudes(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Checks the CRL extensions of a verified CRL: refuses delta, partitioned and indirect
/// CRLs and unknown critical extensions; returns the scope and the cRLNumber magnitude.
fn crl_extensions(
    extensions: &Extensions,
    issuer: &str,
) -> Result<(CrlScope, Option<Vec<u8>>), CrlError> {
    let partitioned = |detail: &str| CrlError::Partitioned {
        issuer: issuer.to_owned(),
        detail: detail.to_owned(),
    };
    let mut scope = CrlScope::All;
    let mut crl_number = None;
    let mut seen = HashSet::new();
    for ext in extensions {
        if !seen.insert(ext.extn_id) {
            return Err(CrlError::Malformed(format!(
                "extension {} appears twice",
                ext.extn_id
            )));
        }
        let value = ext.extn_value.as_bytes();
        match ext.extn_id {
            OID_DELTA_CRL_INDICATOR => return Err(CrlError::Delta(issuer.to_owned())),
            OID_CRL_NUMBER => {
                let number = AnyRef::from_der(value)
                    .ok()
                    .filter(|n| n.tag() == Tag::Integer)
                    .ok_or_else(|| CrlError::Malformed("cRLNumber is not an INTEGER".into()))?;
                crl_number = Some(normalise_serial(number.value()).to_vec());
            }
            OID_ISSUING_DISTRIBUTION_POINT => {
                let idp = IssuingDistributionPoint::from_der(value)
                    .map_err(|e| CrlError::Malformed(format!("issuing distribution point: {e}")))?;
                if idp.only_some_reasons.is_some() {
                    return Err(partitioned("onlySomeReasons"));
                }
                if idp.indirect_crl {
                    return Err(partitioned("indirectCRL"));
                }
                if idp.only_contains_attribute_certs {
                    return Err(partitioned("onlyContainsAttributeCerts"));
                }
                scope = match (idp.only_contains_user_certs, idp.only_contains_ca_certs) {
                    (false, false) => CrlScope::All,
                    (true, false) => CrlScope::UserCertificates,
                    (false, true) => CrlScope::CaCertificates,
                    (true, true) => {
                        return Err(CrlError::Malformed(
                            "onlyContainsUserCerts and onlyContainsCACerts both set".into(),
                        ));
                    }
                };
            }
            oid if ext.critical && !KNOWN_CRL_EXTENSIONS.contains(&oid) => {
                return Err(CrlError::UnsupportedCriticalExtension {
                    issuer: issuer.to_owned(),
                    oid: oid.to_string(),
                });
            }
            _ => {}
        }
    }
    Ok((scope, crl_number))
}

/// Walks revokedCertificates (its content octets), one entry at a time, into a set.
fn read_entries(entries: &[u8], issuer: &str) -> Result<IssuerSerials, CrlError> {
    let malformed = |e: der::Error| CrlError::Malformed(format!("revoked certificate: {e}"));
    let mut serials = IssuerSerials::default();
    let mut reader = SliceReader::new(entries).map_err(malformed)?;
    while !reader.is_finished() {
        let entry = AnyRef::decode(&mut reader).map_err(malformed)?;
        if entry.tag() != Tag::Sequence {
            return Err(CrlError::Malformed(
                "revoked certificate is not a SEQUENCE".into(),
            ));
        }
        let mut fields = SliceReader::new(entry.value()).map_err(malformed)?;
        let serial = AnyRef::decode(&mut fields).map_err(malformed)?;
        if serial.tag() != Tag::Integer || serial.value().is_empty() {
            return Err(CrlError::Malformed(
                "serial number is not an INTEGER".into(),
            ));
        }
        Time::decode(&mut fields).map_err(malformed)?;
        if !fields.is_finished() {
            let extensions = AnyRef::decode(&mut fields).map_err(malformed)?;
            if extensions.tag() != Tag::Sequence || !fields.is_finished() {
                return Err(CrlError::Malformed(
                    "unexpected field in revoked certificate".into(),
                ));
            }
            check_entry_extensions(extensions.value(), issuer)?;
        }
        serials.insert(serial.value());
    }
    Ok(serials)
}

/// Checks one entry's extensions (the content octets of its SEQUENCE OF Extension) without
/// allocating: an entry naming another certificate issuer makes the CRL indirect, and an
/// unknown critical extension makes it unusable.
fn check_entry_extensions(extensions: &[u8], issuer: &str) -> Result<(), CrlError> {
    let malformed = |e: der::Error| CrlError::Malformed(format!("entry extension: {e}"));
    let mut reader = SliceReader::new(extensions).map_err(malformed)?;
    while !reader.is_finished() {
        let (oid, critical) = reader
            .sequence(|ext| {
                let oid = ObjectIdentifier::decode(ext)?;
                let critical = if Tag::peek(ext)? == Tag::Boolean {
                    bool::decode(ext)?
                } else {
                    false
                };
                let value = AnyRef::decode(ext)?;
                value.tag().assert_eq(Tag::OctetString)?;
                Ok::<_, der::Error>((oid, critical))
            })
            .map_err(malformed)?;
        match oid {
            OID_CERTIFICATE_ISSUER => {
                return Err(CrlError::Partitioned {
                    issuer: issuer.to_owned(),
                    detail: "an entry names another certificate issuer (indirect CRL)".into(),
                });
            }
            OID_REASON_CODE | OID_HOLD_INSTRUCTION | OID_INVALIDITY_DATE => {}
            oid if critical => {
                return Err(CrlError::UnsupportedCriticalExtension {
                    issuer: issuer.to_owned(),
                    oid: oid.to_string(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

impl<'a> Envelope<'a> {
    /// Decodes CertificateList and TBSCertList down to, but not into, the entries.
    fn decode(der: &'a [u8]) -> der::Result<Self> {
        let mut outer = SliceReader::new(der)?;
        let (tbs, outer_alg, signature) = outer.sequence(|list| {
            let tbs = list.tlv_bytes()?;
            let alg = list.tlv_bytes()?;
            let signature = BitStringRef::decode(list)?;
            Ok::<_, der::Error>((tbs, alg, signature))
        })?;
        outer.finish()?;
        let signature = signature.as_bytes().ok_or_else(|| {
            der::Error::from(der::ErrorKind::Noncanonical {
                tag: Tag::BitString,
            })
        })?;

        let mut reader = SliceReader::new(tbs)?;
        let tbs_value = AnyRef::decode(&mut reader)?;
        tbs_value.tag().assert_eq(Tag::Sequence)?;
        reader.finish()?;
        let mut r = SliceReader::new(tbs_value.value())?;
        if Tag::peek(&r)? == Tag::Integer {
            let version = u8::decode(&mut r)?;
            if version != 1 {
                return Err(der::ErrorKind::Value { tag: Tag::Integer }.into());
            }
        }
        let inner_alg = r.tlv_bytes()?;
        let issuer_raw = r.tlv_bytes()?;
        let this_update = Time::decode(&mut r)?;
        // The optional fields, each at most once and in order: nextUpdate,
        // revokedCertificates, [0] crlExtensions.
        let mut next_update = None;
        let mut entries: &[u8] = &[];
        let mut extensions = Extensions::new();
        let mut stage = 0;
        while !r.is_finished() {
            let field = AnyRef::decode(&mut r)?;
            let tag = field.tag();
            match tag {
                Tag::UtcTime | Tag::GeneralizedTime if stage < 1 => {
                    next_update = Some(field.decode_as::<Time>()?);
                    stage = 1;
                }
                Tag::Sequence if stage < 2 => {
                    entries = field.value();
                    stage = 2;
                }
                Tag::ContextSpecific {
                    constructed: true,
                    number: TagNumber(0),
                } if stage < 3 => {
                    extensions = Extensions::from_der(field.value())?;
                    stage = 3;
                }
                _ => {
                    return Err(der::ErrorKind::TagUnexpected {
                        expected: None,
                        actual: tag,
                    }
                    .into());
                }
            }
        }

        // RFC 5280 §5.1.1.2: the inner and outer algorithm must be the same.
        let hash = if inner_alg == outer_alg {
            AlgorithmIdentifierRef::from_der(outer_alg)
                .ok()
                .and_then(|alg| HashAlg::from_rsa_signature_oid(&alg.oid.to_string()))
        } else {
            None
        };
        Ok(Self {
            tbs,
            hash,
            signature,
            issuer_raw,
            this_update_unix: unix(this_update),
            next_update_unix: next_update.map(unix),
            entries,
            extensions,
        })
    }
}

fn unix(time: Time) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Freshness = Freshness {
        now_unix: 1_772_323_200,
        grace_secs: 0,
    };

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
    fn serials_match_whatever_their_leading_zeros() {
        let mut s = IssuerSerials::default();
        s.insert(&[0x00, 0x00, 0x12, 0x34]);
        s.insert(&[0x00, 0x80]);
        assert!(s.contains(&[0x12, 0x34]));
        assert!(s.contains(&[0x00, 0x12, 0x34]));
        assert!(s.contains(&[0x80]));
        assert!(s.contains(&[0x00, 0x00, 0x80]));
        assert!(!s.contains(&[0x12, 0x34, 0x00]));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn crl_numbers_compare_as_integers() {
        assert_eq!(compare_magnitudes(&[0x02], &[0x01, 0x00]), Ordering::Less);
        assert_eq!(
            compare_magnitudes(&[0x01, 0x00], &[0xff]),
            Ordering::Greater
        );
        assert_eq!(compare_magnitudes(&[0x05], &[0x05]), Ordering::Equal);
    }

    #[test]
    fn freshness_counts_the_grace() {
        let at = Freshness {
            now_unix: 1_000,
            grace_secs: 100,
        };
        assert!(at.is_current(900));
        assert!(!at.is_current(899));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        let trust = TrustStore::new();
        let mut lists = RevocationLists::new();
        for input in [
            &b""[..],
            b"\x30",
            b"\x30\x03\x02\x01",
            b"\x30\x00",
            b"\x30\x02\x30\x00",
            b"-----BEGIN X509 CRL-----\n",
        ] {
            assert!(lists.load(input, &trust, AT).is_err());
        }
        assert!(lists.is_empty());
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let big = vec![0x30; MAX_CRL_BYTES + 1];
        assert_eq!(
            RevocationLists::new().load(&big, &TrustStore::new(), AT),
            Err(CrlError::TooLarge(MAX_CRL_BYTES + 1))
        );
    }
}
