//! The trust store: the government root(s) (GRCA) and the MOICA issuing CAs.
//!
//! MOICA has issued cards under several CA generations (G2, G3, …) that all carry the same
//! subject name `C=TW, O=行政院, OU=內政部憑證管理中心`. A name therefore does not identify an
//! issuer; the key identifier does (the leaf's authority key identifier equals the CA's
//! subject key identifier), and the signature decides. The store keeps what verification
//! needs from each certificate in owned form, so a verification never re-parses the CAs.

use rsa::PublicKey;
use x509_parser::prelude::*;

use crate::util::{self, HashAlg, KeyProblem};
use crate::verify::Rejection;

/// Longest CA path walked above a leaf's issuer; MOICA is leaf → MOICA CA → GRCA, and the
/// cap also stops a cycle of cross-signed certificates from looping.
const MAX_CHAIN_DEPTH: usize = 5;

/// Why a certificate could not be added to the [`TrustStore`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The bytes are neither a DER certificate nor PEM holding certificates.
    #[error("not a certificate: {0}")]
    Malformed(String),
    /// The CA key is not RSA (of at least 2048 bits); MOICA and GRCA keys all are.
    #[error("CA key is not RSA of at least 2048 bits")]
    NotRsa,
    /// The certificate lacks basicConstraints cA=TRUE, so it must not vouch for others.
    #[error("certificate is not a CA certificate")]
    NotCa,
    /// PEM input held no CERTIFICATE block.
    #[error("no certificate found in PEM input")]
    Empty,
}

/// What certificate-issuing signature is being checked, so a CA whose key usage forbids it
/// (keyCertSign for certificates, cRLSign for CRLs) is never accepted as the signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Certificates,
    Crls,
}

/// Why no CA in the store could be confirmed as the signer of something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignerError {
    /// No CA with that name (and key identifier, when one was given).
    NoCandidate,
    /// Candidates exist but none of their keys verifies the signature.
    BadSignature,
}

/// One CA certificate as the verifier needs it.
#[derive(Debug, Clone)]
pub(crate) struct CaCert {
    pub(crate) subject_raw: Vec<u8>,
    /// The subject name as [`crate::VerifiedCertificate::issuer`] renders names.
    pub(crate) subject: String,
    /// The serial number's DER INTEGER content octets, to look the CA up in its issuer's CRL.
    pub(crate) serial: Vec<u8>,
    issuer_raw: Vec<u8>,
    pub(crate) key_id: Vec<u8>,
    authority_key_id: Option<Vec<u8>>,
    pub(crate) key: PublicKey,
    /// The subjectPublicKey bits, as OCSP's CertID hashes them.
    pub(crate) key_bits: Vec<u8>,
    not_before: i64,
    not_after: i64,
    tbs: Vec<u8>,
    signature_hash: Option<HashAlg>,
    signature: Vec<u8>,
    pub(crate) is_root: bool,
    may_sign_certificates: bool,
    may_sign_crls: bool,
}

/// The certificates trusted to issue MOICA card certificates and CRLs.
///
/// Roots are trust anchors: their own signatures are not checked, only their validity
/// period. Intermediates are trusted only while they chain to a root, which is checked at
/// every verification (with the clock of that verification).
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    cas: Vec<CaCert>,
}

impl TrustStore {
    /// An empty store; nothing verifies against it until roots and CAs are added.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds trust anchors (e.g. GRCA) from DER or PEM (PEM may hold several certificates).
    /// Returns how many certificates were added.
    ///
    /// # Errors
    /// [`TrustError`] when the input is not a certificate, not an RSA CA certificate, or PEM
    /// without certificates; nothing is added then.
    pub fn add_root(&mut self, der_or_pem: &[u8]) -> Result<usize, TrustError> {
        self.add(der_or_pem, true)
    }

    /// Adds issuing CAs (e.g. MOICA G2, G3) from DER or PEM. They are trusted only through a
    /// root added with [`TrustStore::add_root`], in any order of adding.
    ///
    /// # Errors
    /// As for [`TrustStore::add_root`].
    pub fn add_intermediate(&mut self, der_or_pem: &[u8]) -> Result<usize, TrustError> {
        self.add(der_or_pem, false)
    }

    /// Number of certificates held (roots and intermediates).
    #[must_use]
    pub fn len(&self) -> usize {
        self.cas.len()
    }

    /// Whether the store holds no certificate at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.cas.is_empty()
    }

    /// The CAs whose CRL a verification asks for: every intermediate (about the cards it
    /// issues), and every CA in the store that signed an intermediate (about CA
    /// certificates: the root's ARL). For `check-config`, start-up logs and CRL-age metrics:
    /// see [`crate::RevocationLists::uncovered`].
    #[must_use]
    pub fn crl_issuers(&self) -> Vec<CrlIssuer> {
        let mut issuers: Vec<CrlIssuer> = Vec::new();
        let mut push = |ca: &CaCert, about_ca_certificates: bool| {
            if !issuers
                .iter()
                .any(|i| i.key_id == ca.key_id && i.about_ca_certificates == about_ca_certificates)
            {
                issuers.push(CrlIssuer {
                    name: ca.subject.clone(),
                    key_id: ca.key_id.clone(),
                    key_id_hex: util::hex(&ca.key_id),
                    about_ca_certificates,
                });
            }
        };
        for ca in self.cas.iter().filter(|ca| !ca.is_root) {
            push(ca, false);
            let signed = SignedPart {
                tbs: &ca.tbs,
                hash: ca.signature_hash,
                signature: &ca.signature,
            };
            if let Ok(parent) = self.find_signer(
                &ca.issuer_raw,
                ca.authority_key_id.as_deref(),
                &signed,
                Purpose::Certificates,
            ) {
                push(parent, true);
            }
        }
        issuers
    }

    fn add(&mut self, der_or_pem: &[u8], is_root: bool) -> Result<usize, TrustError> {
        let mut parsed = Vec::new();
        if util::looks_like_pem(der_or_pem) {
            for pem in Pem::iter_from_buffer(der_or_pem) {
                let pem = pem.map_err(|e| TrustError::Malformed(e.to_string()))?;
                if pem.label == "CERTIFICATE" {
                    parsed.push(CaCert::from_der(&pem.contents, is_root)?);
                }
            }
            if parsed.is_empty() {
                return Err(TrustError::Empty);
            }
        } else {
            parsed.push(CaCert::from_der(der_or_pem, is_root)?);
        }
        let added = parsed.len();
        self.cas.extend(parsed);
        Ok(added)
    }

    /// Finds the CA that signed `tbs`: same subject name as `issuer_raw`, same key identifier
    /// when `authority_key_id` is given, allowed to sign for `purpose`, and whose key verifies
    /// the signature. Trying every same-named candidate is what lets generations that share a
    /// name coexist even when a signed object carries no key identifier.
    pub(crate) fn find_signer(
        &self,
        issuer_raw: &[u8],
        authority_key_id: Option<&[u8]>,
        signed: &SignedPart<'_>,
        purpose: Purpose,
    ) -> Result<&CaCert, SignerError> {
        let mut saw_candidate = false;
        for ca in &self.cas {
            if ca.subject_raw != issuer_raw {
                continue;
            }
            if authority_key_id.is_some_and(|aki| aki != ca.key_id.as_slice()) {
                continue;
            }
            let allowed = match purpose {
                Purpose::Certificates => ca.may_sign_certificates,
                Purpose::Crls => ca.may_sign_crls,
            };
            if !allowed {
                continue;
            }
            saw_candidate = true;
            if let Some(hash) = signed.hash
                && util::rsa_verify(&ca.key, hash, signed.tbs, signed.signature)
            {
                return Ok(ca);
            }
        }
        Err(if saw_candidate {
            SignerError::BadSignature
        } else {
            SignerError::NoCandidate
        })
    }

    /// The CA with this subject name (DER) and public key (subjectPublicKey bits), if held:
    /// the issuer of a certificate [`crate::verify`] accepted, found again for an OCSP check.
    pub(crate) fn ca_with_key(&self, subject_raw: &[u8], key_bits: &[u8]) -> Option<&CaCert> {
        self.cas
            .iter()
            .find(|ca| ca.subject_raw == subject_raw && ca.key_bits == key_bits)
    }

    /// Checks that `ca` chains to a root through verified signatures and that every CA on
    /// the way is within its validity period at `now_unix`. Returns the path, `ca` first and
    /// the root last, so each CA's revocation can be checked against its issuer's CRL.
    pub(crate) fn check_chain<'s>(
        &'s self,
        ca: &'s CaCert,
        now_unix: i64,
    ) -> Result<Vec<&'s CaCert>, Rejection> {
        let mut current = ca;
        let mut path = Vec::with_capacity(3);
        for _ in 0..MAX_CHAIN_DEPTH {
            if now_unix < current.not_before || now_unix > current.not_after {
                return Err(Rejection::IssuerExpired);
            }
            path.push(current);
            if current.is_root {
                return Ok(path);
            }
            let signed = SignedPart {
                tbs: &current.tbs,
                hash: current.signature_hash,
                signature: &current.signature,
            };
            current = self
                .find_signer(
                    &current.issuer_raw,
                    current.authority_key_id.as_deref(),
                    &signed,
                    Purpose::Certificates,
                )
                .map_err(|_| Rejection::UntrustedIssuer)?;
        }
        Err(Rejection::UntrustedIssuer)
    }
}

/// A CA whose CRL verifications need, as [`TrustStore::crl_issuers`] lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlIssuer {
    /// The CA's subject name (same form as [`crate::VerifiedCertificate::issuer`]).
    pub name: String,
    /// The CA's key identifier, as [`crate::RevocationLists`] keys lists by.
    pub key_id: Vec<u8>,
    /// [`CrlIssuer::key_id`], lowercase hex.
    pub key_id_hex: String,
    /// Whether the list needed is about CA certificates (a root's ARL) rather than cards.
    pub about_ca_certificates: bool,
}

/// The signed portion of a certificate or CRL with its signature, borrowed for one check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedPart<'a> {
    pub(crate) tbs: &'a [u8],
    /// `None` when the signature algorithm is not one we accept; nothing verifies then.
    pub(crate) hash: Option<HashAlg>,
    pub(crate) signature: &'a [u8],
}

impl<'a> SignedPart<'a> {
    /// The signed part of a certificate, refusing a signature algorithm in the TBS that
    /// differs from the outer one (RFC 5280 §4.1.1.2 requires them to be equal).
    pub(crate) fn of_certificate(cert: &'a X509Certificate<'a>) -> Self {
        let outer = &cert.signature_algorithm;
        let inner = &cert.tbs_certificate.signature;
        let hash = if outer == inner {
            HashAlg::from_rsa_signature_oid(&outer.algorithm.to_id_string())
        } else {
            None
        };
        Self {
            tbs: cert.tbs_certificate.as_ref(),
            hash,
            signature: &cert.signature_value.data,
        }
    }
}

impl CaCert {
    fn from_der(der: &[u8], is_root: bool) -> Result<Self, TrustError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| TrustError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(TrustError::Malformed(
                "trailing bytes after certificate".into(),
            ));
        }
        let key = util::rsa_key(cert.public_key()).map_err(|p| match p {
            KeyProblem::NotRsa => TrustError::NotRsa,
            KeyProblem::Malformed => TrustError::Malformed("bad RSA public key".into()),
        })?;
        let is_ca = cert
            .basic_constraints()
            .map_err(|e| TrustError::Malformed(e.to_string()))?
            .is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err(TrustError::NotCa);
        }
        // Without a keyUsage extension a CA may do anything (RFC 5280 §4.2.1.3).
        let (may_sign_certificates, may_sign_crls) = match cert
            .key_usage()
            .map_err(|e| TrustError::Malformed(e.to_string()))?
        {
            Some(ku) => (ku.value.key_cert_sign(), ku.value.crl_sign()),
            None => (true, true),
        };
        let signed = SignedPart::of_certificate(&cert);
        let validity = cert.validity();
        Ok(Self {
            subject_raw: cert.subject().as_raw().to_vec(),
            subject: cert.subject().to_string(),
            serial: cert.raw_serial().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            key_id: util::key_identifier(&cert),
            authority_key_id: util::authority_key_id(cert.extensions()).map(<[u8]>::to_vec),
            key,
            key_bits: cert.public_key().subject_public_key.data.to_vec(),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            tbs: signed.tbs.to_vec(),
            signature_hash: signed.hash,
            signature: signed.signature.to_vec(),
            is_root,
            may_sign_certificates,
            may_sign_crls,
        })
    }
}
