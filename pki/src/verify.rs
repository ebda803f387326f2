//! Verification of one signed challenge from the HiPKI Local Sign Server component.
//!
//! The gateway issues a random challenge, the user's card signs it, and [`verify`] decides
//! whether the result proves possession of a valid MOICA card certificate. Every failure is
//! a distinct [`Rejection`] so the gateway can show the right page and record the right
//! activity; none of them panics, whatever bytes arrive.

use std::borrow::Cow;
use std::fmt;

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{AnyRef, Ia5StringRef, OctetString, PrintableStringRef, Utf8StringRef};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode, SliceReader, Tag, TagNumber, Tagged};
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::{SubjectDirectoryAttributes, SubjectKeyIdentifier};
use x509_parser::prelude::*;

use crate::crl::{CrlCheck, Freshness, RevocationLists, RevocationStatus};
use crate::trust::{CaCert, Purpose, SignedPart, TrustStore};
use crate::util::{self, HashAlg, KeyProblem};

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// The MOICA subject directory attribute holding the last four digits of the national ID.
pub const OID_ID_LAST4: &str = "2.16.886.1.100.2.51";
const ID_LAST4: ObjectIdentifier = ObjectIdentifier::new_unwrap(OID_ID_LAST4);
/// Subject directory attributes (RFC 5280 §4.2.1.8).
const OID_SUBJECT_DIRECTORY_ATTRIBUTES: &str = "2.5.29.9";
/// Extensions a card certificate may mark critical: the ones read or checked here, and the
/// informational ones every MOICA certificate carries. Any other critical extension refuses
/// the certificate (RFC 5280 §4.2: a certificate with a critical extension the application
/// does not recognise must be rejected).
const KNOWN_LEAF_EXTENSIONS: [&str; 12] = [
    "2.5.29.9",          // subjectDirectoryAttributes
    "2.5.29.14",         // subjectKeyIdentifier
    "2.5.29.15",         // keyUsage
    "2.5.29.17",         // subjectAltName
    "2.5.29.18",         // issuerAltName
    "2.5.29.19",         // basicConstraints
    "2.5.29.31",         // cRLDistributionPoints
    "2.5.29.32",         // certificatePolicies
    "2.5.29.35",         // authorityKeyIdentifier
    "2.5.29.37",         // extKeyUsage
    "2.5.29.46",         // freshestCRL
    "1.3.6.1.5.5.7.1.1", // authorityInfoAccess
];
/// id-ad-ocsp, the access method of an OCSP responder location (RFC 5280 §4.2.2.1).
const OID_AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";

/// What the component returned, in either of its two signature types.
#[derive(Debug, Clone, Copy)]
pub enum SignedChallenge<'a> {
    /// `signatureType` PKCS7: CMS SignedData (DER) with the challenge attached.
    Pkcs7 {
        /// The decoded `signature` field.
        cms_der: &'a [u8],
    },
    /// `signatureType` PKCS1: a bare RSA PKCS#1 v1.5 SHA-256 signature over the challenge,
    /// with the card certificate sent separately (`certb64`).
    Pkcs1 {
        /// The decoded signature.
        signature: &'a [u8],
        /// The decoded certificate (DER).
        certificate_der: &'a [u8],
    },
}

/// The deployment's requirements beyond "a valid MOICA certificate".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The time to check validity periods at, Unix seconds (passed in so tests and replays
    /// are deterministic).
    pub now_unix: i64,
    /// Policy OIDs that must all appear in the certificatePolicies extension; empty means no
    /// requirement. Lets an operator accept only card certificates (not, say, test ones).
    pub required_policy_oids: Vec<String>,
    /// How long past its nextUpdate a CRL still counts as current, seconds (see
    /// [`Freshness::grace_secs`]); decides [`VerifiedCertificate::revocation`].
    pub crl_grace_secs: i64,
}

impl Policy {
    /// The clock CRLs are judged by in this verification.
    #[must_use]
    pub fn freshness(&self) -> Freshness {
        Freshness {
            now_unix: self.now_unix,
            grace_secs: self.crl_grace_secs,
        }
    }
}

/// What the gateway learns about the card holder after a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCertificate {
    /// The issuer's distinguished name, RFC 4514-like (`C=TW, O=行政院, OU=內政部憑證管理中心`).
    pub issuer: String,
    /// Serial number as lowercase hex of its big-endian magnitude (no sign octet).
    pub serial_hex: String,
    /// SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex: stable across renewals that
    /// keep the key, and what a binding can be keyed on.
    pub spki_sha256_hex: String,
    /// The subject common name (the card holder's name).
    pub subject_cn: String,
    /// The last four digits of the national ID (attribute 2.16.886.1.100.2.51), if present.
    pub id_last4: Option<String>,
    /// notAfter of the card certificate, Unix seconds.
    pub not_after_unix: i64,
    /// Key identifier of the CA that issued it, lowercase hex; tells CA generations apart.
    pub issuer_key_id_hex: String,
    /// The issuing CA's subject name, DER. With `issuer_public_key` and `serial_der`, what an
    /// OCSP request ([`crate::ocsp::OcspRequest`]) names the certificate by.
    pub issuer_name_der: Vec<u8>,
    /// The issuing CA's public key (the subjectPublicKey bits of the CA certificate that
    /// verified the signature, so the right one among CA generations sharing a name).
    pub issuer_public_key: Vec<u8>,
    /// The serial number's DER INTEGER content octets, as the certificate encodes it.
    pub serial_der: Vec<u8>,
    /// The OCSP responder named by the Authority Information Access extension (the first
    /// http:// or https:// id-ad-ocsp location), if any.
    pub ocsp_url: Option<String>,
    /// Whether current CRLs cover every certificate on the path: [`RevocationStatus::Good`],
    /// or [`RevocationStatus::NoCurrentCrl`] naming the first CA without one, so the caller
    /// can fail closed (or ask OCSP about the card). Never `Revoked`: a listed certificate
    /// is [`Rejection::Revoked`].
    pub revocation: RevocationStatus,
    /// Each certificate on the path (the card first, then each CA below the root) and the
    /// current CRL of its issuer, if any: for logs and CRL-age metrics.
    pub crl_checks: Vec<CrlCheck>,
}

/// Why a signed challenge was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The input does not decode as what it claims to be (detail for logs only).
    Malformed(String),
    /// The signed content is not the challenge this login was given.
    ChallengeMismatch,
    /// The signature does not verify with the certificate's key.
    BadSignature,
    /// The certificate was not issued by a trusted CA (or the CA does not chain to a root).
    UntrustedIssuer,
    /// The certificate's validity period has ended.
    Expired,
    /// The certificate's validity period has not started.
    NotYetValid,
    /// The certificate's key usage does not include digitalSignature (e.g. the card's
    /// encryption certificate was used).
    WrongKeyUsage,
    /// A required certificate policy is absent.
    PolicyMissing,
    /// The certificate, or a CA certificate on its path, is listed in a loaded CRL.
    Revoked,
    /// The certificate key is not RSA of at least 2048 bits, or the signature is not RSA.
    NotRsa,
    /// A CA certificate on the path is outside its validity period.
    IssuerExpired,
    /// The certificate is a CA certificate (basicConstraints cA=TRUE), not a card's.
    NotEndEntity,
    /// The certificate has a critical extension not understood here (its OID, dotted).
    UnsupportedCriticalExtension(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(detail) => write!(f, "malformed signature or certificate: {detail}"),
            Self::ChallengeMismatch => f.write_str("signed content is not the issued challenge"),
            Self::BadSignature => f.write_str("signature does not verify"),
            Self::UntrustedIssuer => f.write_str("certificate issuer is not trusted"),
            Self::Expired => f.write_str("certificate has expired"),
            Self::NotYetValid => f.write_str("certificate is not yet valid"),
            Self::WrongKeyUsage => f.write_str("certificate is not for digital signatures"),
            Self::PolicyMissing => f.write_str("certificate lacks a required policy"),
            Self::Revoked => f.write_str("certificate has been revoked"),
            Self::NotRsa => f.write_str("certificate key or signature is not RSA"),
            Self::IssuerExpired => f.write_str("issuing CA certificate is not valid now"),
            Self::NotEndEntity => f.write_str("certificate is a CA certificate, not a card's"),
            Self::UnsupportedCriticalExtension(oid) => {
                write!(f, "certificate has an unsupported critical extension {oid}")
            }
        }
    }
}

impl std::error::Error for Rejection {}

fn malformed(what: impl fmt::Display) -> Rejection {
    Rejection::Malformed(what.to_string())
}

/// Verifies that `signed` is a signature over exactly `challenge` by a MOICA card
/// certificate that chains to `trust`, is valid at `policy.now_unix`, may sign, carries the
/// required policies, and neither it nor a CA on its path is in `revoked`.
///
/// Checks run in this order, and the first failure is returned: decoding; the signature
/// over the challenge; the issuing CA and its signature; the leaf's validity period; the CA
/// path to a root and its validity; key usage; end entity (not cA=TRUE) and critical
/// extensions; policies; revocation of the leaf and of each CA below the root.
///
/// Success does not mean current CRLs were consulted: see
/// [`VerifiedCertificate::revocation`], which the caller must act on.
///
/// # Errors
/// The [`Rejection`] describing the first failed check.
pub fn verify(
    signed: &SignedChallenge<'_>,
    challenge: &[u8],
    trust: &TrustStore,
    revoked: &RevocationLists,
    policy: &Policy,
) -> Result<VerifiedCertificate, Rejection> {
    let leaf_der: Cow<'_, [u8]> = match *signed {
        SignedChallenge::Pkcs7 { cms_der } => Cow::Owned(verify_cms(cms_der, challenge)?),
        SignedChallenge::Pkcs1 {
            signature,
            certificate_der,
        } => {
            let leaf = parse_certificate(certificate_der)?;
            let key = leaf_key(&leaf)?;
            if !util::rsa_verify(&key, HashAlg::Sha256, challenge, signature) {
                return Err(Rejection::BadSignature);
            }
            Cow::Borrowed(certificate_der)
        }
    };
    let leaf = parse_certificate(&leaf_der)?;
    check_certificate(&leaf, trust, revoked, policy)
}

fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, Rejection> {
    let (rest, cert) = X509Certificate::from_der(der).map_err(malformed)?;
    if !rest.is_empty() {
        return Err(malformed("trailing bytes after certificate"));
    }
    Ok(cert)
}

fn leaf_key(leaf: &X509Certificate<'_>) -> Result<rsa::PublicKey, Rejection> {
    util::rsa_key(leaf.public_key()).map_err(|p| match p {
        KeyProblem::NotRsa => Rejection::NotRsa,
        KeyProblem::Malformed => malformed("bad RSA public key"),
    })
}

/// Verifies the CMS SignedData over `challenge` and returns the signer's certificate (DER).
fn verify_cms(cms_der: &[u8], challenge: &[u8]) -> Result<Vec<u8>, Rejection> {
    let info = ContentInfo::from_der(cms_der).map_err(malformed)?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(malformed("content is not SignedData"));
    }
    let signed_data: SignedData = info.content.decode_as().map_err(malformed)?;
    let [signer] = signed_data.signer_infos.0.as_slice() else {
        return Err(malformed("expected exactly one signer"));
    };

    // The content must be our challenge, byte for byte.
    let encap = &signed_data.encap_content_info;
    if encap.econtent_type != ID_DATA {
        return Err(malformed("encapsulated content is not id-data"));
    }
    let content: OctetString = encap
        .econtent
        .as_ref()
        .ok_or_else(|| malformed("no attached content"))?
        .decode_as()
        .map_err(malformed)?;
    if content.as_bytes() != challenge {
        return Err(Rejection::ChallengeMismatch);
    }

    let digest = HashAlg::from_digest_oid(&signer.digest_alg.oid.to_string())
        .ok_or_else(|| malformed("unsupported digest algorithm"))?;
    let sig_oid = signer.signature_algorithm.oid.to_string();
    if sig_oid != util::OID_RSA_ENCRYPTION {
        match HashAlg::from_rsa_signature_oid(&sig_oid) {
            Some(h) if h == digest => {}
            Some(_) => return Err(malformed("signature and digest algorithms disagree")),
            None => return Err(Rejection::NotRsa),
        }
    }

    let leaf_der = signer_certificate(&signed_data, &signer.sid)?;
    let leaf = parse_certificate(&leaf_der)?;
    let key = leaf_key(&leaf)?;

    let signed_bytes: Cow<'_, [u8]> = match &signer.signed_attrs {
        None => Cow::Borrowed(challenge),
        Some(attrs) => {
            // content-type must be present and match (RFC 5652 §11.1).
            let content_type = single_attribute(attrs, ID_CONTENT_TYPE)?
                .decode_as::<ObjectIdentifier>()
                .map_err(malformed)?;
            if content_type != encap.econtent_type {
                return Err(malformed("content-type attribute does not match"));
            }
            let message_digest = single_attribute(attrs, ID_MESSAGE_DIGEST)?
                .decode_as::<OctetString>()
                .map_err(malformed)?;
            if message_digest.as_bytes() != digest.digest(challenge).as_slice() {
                // The signer signed some other content, then the content was swapped.
                return Err(Rejection::ChallengeMismatch);
            }
            Cow::Owned(raw_signed_attributes(cms_der)?)
        }
    };
    if !util::rsa_verify(&key, digest, &signed_bytes, signer.signature.as_bytes()) {
        return Err(Rejection::BadSignature);
    }
    Ok(leaf_der)
}

/// The one value of the one attribute with `oid` among the signed attributes.
fn single_attribute(
    attrs: &x509_cert::attr::Attributes,
    oid: ObjectIdentifier,
) -> Result<AnyRef<'_>, Rejection> {
    let mut found = attrs.iter().filter(|a| a.oid == oid);
    let (Some(attr), None) = (found.next(), found.next()) else {
        return Err(malformed(format!("need exactly one attribute {oid}")));
    };
    let [value] = attr.values.as_slice() else {
        return Err(malformed(format!(
            "need exactly one value in attribute {oid}"
        )));
    };
    Ok(value.to_ref())
}

/// The embedded certificate that the signer identifier names, re-encoded as DER.
fn signer_certificate(
    signed_data: &SignedData,
    sid: &SignerIdentifier,
) -> Result<Vec<u8>, Rejection> {
    let certificates = signed_data
        .certificates
        .as_ref()
        .ok_or_else(|| malformed("no certificate embedded"))?;
    for choice in certificates.0.iter() {
        let CertificateChoices::Certificate(cert) = choice else {
            continue;
        };
        let tbs = cert.tbs_certificate();
        let matches = match sid {
            SignerIdentifier::IssuerAndSerialNumber(isn) => {
                tbs.issuer() == &isn.issuer && tbs.serial_number() == &isn.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
                .get_extension::<SubjectKeyIdentifier>()
                .ok()
                .flatten()
                .is_some_and(|(_, own)| own.0 == ski.0),
        };
        if matches {
            return cert.to_der().map_err(malformed);
        }
    }
    Err(malformed("signer certificate not embedded"))
}

/// The signed attributes exactly as the signer encoded them, re-tagged as a SET: RFC 5652
/// §5.4 signs that encoding, and re-encoding the decoded attributes could reorder them when
/// a signer did not sort its SET, which would break a genuine signature.
fn raw_signed_attributes(cms_der: &[u8]) -> Result<Vec<u8>, Rejection> {
    fn walk(cms_der: &[u8]) -> der::Result<Option<Vec<u8>>> {
        let content_info = AnyRef::from_der(cms_der)?;
        let mut r = SliceReader::new(content_info.value())?;
        let _content_type = AnyRef::decode(&mut r)?;
        let explicit = AnyRef::decode(&mut r)?;
        let signed_data = AnyRef::from_der(explicit.value())?;
        let mut r = SliceReader::new(signed_data.value())?;
        let _version = AnyRef::decode(&mut r)?;
        let _digest_algorithms = AnyRef::decode(&mut r)?;
        let _encap = AnyRef::decode(&mut r)?;
        // Optional [0] certificates and [1] crls precede the SET of SignerInfo.
        let mut next = AnyRef::decode(&mut r)?;
        while matches!(next.tag(), Tag::ContextSpecific { .. }) {
            next = AnyRef::decode(&mut r)?;
        }
        let mut r = SliceReader::new(next.value())?;
        let signer_info = AnyRef::decode(&mut r)?;
        let mut r = SliceReader::new(signer_info.value())?;
        let _version = AnyRef::decode(&mut r)?;
        let _sid = AnyRef::decode(&mut r)?;
        let _digest_alg = AnyRef::decode(&mut r)?;
        let attrs = AnyRef::decode(&mut r)?;
        let signed_attrs_tag = Tag::ContextSpecific {
            constructed: true,
            number: TagNumber(0),
        };
        if attrs.tag() != signed_attrs_tag {
            return Ok(None);
        }
        AnyRef::new(Tag::Set, attrs.value())?.to_der().map(Some)
    }
    walk(cms_der)
        .map_err(malformed)?
        .ok_or_else(|| malformed("signed attributes not found"))
}

/// Everything about the leaf certificate once the challenge signature is known good.
fn check_certificate(
    leaf: &X509Certificate<'_>,
    trust: &TrustStore,
    revoked: &RevocationLists,
    policy: &Policy,
) -> Result<VerifiedCertificate, Rejection> {
    leaf_key(leaf)?;
    let ca = trust
        .find_signer(
            leaf.issuer().as_raw(),
            util::authority_key_id(leaf.extensions()),
            &SignedPart::of_certificate(leaf),
            Purpose::Certificates,
        )
        .map_err(|_| Rejection::UntrustedIssuer)?;

    let validity = leaf.validity();
    if policy.now_unix < validity.not_before.timestamp() {
        return Err(Rejection::NotYetValid);
    }
    if policy.now_unix > validity.not_after.timestamp() {
        return Err(Rejection::Expired);
    }
    let path = trust.check_chain(ca, policy.now_unix)?;

    // MOICA signing certificates always carry keyUsage; one without it is not a card's
    // signing certificate, so absence is refused rather than read as "any usage".
    let may_sign = leaf
        .key_usage()
        .map_err(malformed)?
        .is_some_and(|ku| ku.value.digital_signature());
    if !may_sign {
        return Err(Rejection::WrongKeyUsage);
    }
    if leaf
        .basic_constraints()
        .map_err(malformed)?
        .is_some_and(|bc| bc.value.ca)
    {
        return Err(Rejection::NotEndEntity);
    }
    if let Some(ext) = leaf.extensions().iter().find(|ext| {
        ext.critical && !KNOWN_LEAF_EXTENSIONS.contains(&ext.oid.to_id_string().as_str())
    }) {
        return Err(Rejection::UnsupportedCriticalExtension(
            ext.oid.to_id_string(),
        ));
    }

    if !policy.required_policy_oids.is_empty() {
        let present = certificate_policies(leaf);
        if !policy
            .required_policy_oids
            .iter()
            .all(|required| present.iter().any(|p| p == required))
        {
            return Err(Rejection::PolicyMissing);
        }
    }

    let (revocation, crl_checks) =
        revocation_status(leaf.raw_serial(), &path, revoked, policy.freshness());
    if matches!(revocation, RevocationStatus::Revoked { .. }) {
        return Err(Rejection::Revoked);
    }

    let subject_cn = leaf
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or_else(|| malformed("no subject common name"))?
        .to_owned();
    let serial = leaf.raw_serial();
    let magnitude = match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        all => all,
    };
    Ok(VerifiedCertificate {
        issuer: leaf.issuer().to_string(),
        serial_hex: util::hex(magnitude),
        spki_sha256_hex: util::hex(&Sha256::digest(leaf.public_key().raw)),
        subject_cn,
        id_last4: id_last4(leaf),
        not_after_unix: validity.not_after.timestamp(),
        issuer_key_id_hex: util::hex(&ca.key_id),
        issuer_name_der: ca.subject_raw.clone(),
        issuer_public_key: ca.key_bits.clone(),
        serial_der: serial.to_vec(),
        ocsp_url: ocsp_url(leaf),
        revocation,
        crl_checks,
    })
}

/// Checks the leaf (serial `leaf_serial`, issued by `path[0]`) and every CA below the root
/// (`path[i]`, issued by `path[i + 1]`) against the issuer's CRLs. A listing in any held CRL
/// wins; otherwise the first certificate whose issuer has no current CRL speaking about it
/// decides; otherwise the path is good.
fn revocation_status(
    leaf_serial: &[u8],
    path: &[&CaCert],
    revoked: &RevocationLists,
    at: Freshness,
) -> (RevocationStatus, Vec<CrlCheck>) {
    let links = std::iter::once((leaf_serial, false, path.first()))
        .chain(
            path.iter()
                .enumerate()
                .filter(|(_, ca)| !ca.is_root)
                .map(|(i, ca)| (ca.serial.as_slice(), true, path.get(i + 1))),
        )
        .filter_map(|(serial, is_ca, issuer)| issuer.map(|issuer| (serial, is_ca, *issuer)));
    let mut checks = Vec::with_capacity(path.len());
    let mut listed = None;
    let mut missing = None;
    for (serial, is_ca, issuer) in links {
        let crl = revoked.current_crl(&issuer.key_id, is_ca, at).cloned();
        let issuer_key_id_hex = util::hex(&issuer.key_id);
        if listed.is_none() && revoked.is_revoked(&issuer.key_id, serial) {
            listed = Some(RevocationStatus::Revoked {
                issuer: issuer.subject.clone(),
                issuer_key_id_hex: issuer_key_id_hex.clone(),
                leaf: !is_ca,
            });
        }
        if missing.is_none() && crl.is_none() {
            missing = Some(RevocationStatus::NoCurrentCrl {
                issuer: issuer.subject.clone(),
                issuer_key_id_hex: issuer_key_id_hex.clone(),
                leaf: !is_ca,
            });
        }
        checks.push(CrlCheck {
            leaf: !is_ca,
            issuer: issuer.subject.clone(),
            issuer_key_id_hex,
            crl,
        });
    }
    let status = listed.or(missing).unwrap_or(RevocationStatus::Good);
    (status, checks)
}

/// The first http(s) OCSP responder location in the Authority Information Access extension.
/// Like the subject directory attributes, an undecodable extension yields `None` (the OCSP
/// check then fails for want of a URL, which the deployment's OCSP mode decides about).
fn ocsp_url(leaf: &X509Certificate<'_>) -> Option<String> {
    leaf.extensions()
        .iter()
        .filter_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => Some(aia),
            _ => None,
        })
        .flat_map(|aia| aia.accessdescs.iter())
        .filter(|desc| desc.access_method.to_id_string() == OID_AD_OCSP)
        .find_map(|desc| match &desc.access_location {
            GeneralName::URI(uri) if uri.starts_with("http://") || uri.starts_with("https://") => {
                Some((*uri).to_owned())
            }
            _ => None,
        })
}

fn certificate_policies(leaf: &X509Certificate<'_>) -> Vec<String> {
    leaf.extensions()
        .iter()
        .filter_map(|ext| match ext.parsed_extension() {
            ParsedExtension::CertificatePolicies(policies) => Some(policies),
            _ => None,
        })
        .flat_map(|policies| policies.iter().map(|p| p.policy_id.to_id_string()))
        .collect()
}

/// The national ID's last four digits from the subject directory attributes extension.
/// The extension is informational, so an undecodable one yields `None` rather than
/// refusing a certificate that passed every security check.
fn id_last4(leaf: &X509Certificate<'_>) -> Option<String> {
    let ext = leaf
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == OID_SUBJECT_DIRECTORY_ATTRIBUTES)?;
    let attrs = SubjectDirectoryAttributes::from_der(ext.value).ok()?;
    let attr = attrs.0.iter().find(|a| a.oid == ID_LAST4)?;
    let value = attr.values.iter().next()?.to_ref();
    let text = match value.tag() {
        Tag::PrintableString => value.decode_as::<PrintableStringRef<'_>>().ok()?.as_str(),
        Tag::Utf8String => value.decode_as::<Utf8StringRef<'_>>().ok()?.as_str(),
        Tag::Ia5String => value.decode_as::<Ia5StringRef<'_>>().ok()?.as_str(),
        _ => return None,
    };
    Some(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejection_messages_are_distinct() {
        let all = [
            Rejection::Malformed("x".into()),
            Rejection::ChallengeMismatch,
            Rejection::BadSignature,
            Rejection::UntrustedIssuer,
            Rejection::Expired,
            Rejection::NotYetValid,
            Rejection::WrongKeyUsage,
            Rejection::PolicyMissing,
            Rejection::Revoked,
            Rejection::NotRsa,
            Rejection::IssuerExpired,
            Rejection::NotEndEntity,
            Rejection::UnsupportedCriticalExtension("1.2.3".into()),
        ];
        let texts: std::collections::HashSet<String> =
            all.iter().map(ToString::to_string).collect();
        assert_eq!(texts.len(), all.len());
    }

    #[test]
    fn garbage_never_panics() {
        let trust = TrustStore::new();
        let revoked = RevocationLists::new();
        let policy = Policy::default();
        let inputs: [&[u8]; 6] = [
            b"",
            b"garbage",
            &[0x30],
            &[0x30, 0x80, 0x00, 0x00],
            &[0x30, 0x03, 0x06, 0x01, 0x00],
            &[0xff; 64],
        ];
        for input in inputs {
            for signed in [
                SignedChallenge::Pkcs7 { cms_der: input },
                SignedChallenge::Pkcs1 {
                    signature: input,
                    certificate_der: input,
                },
            ] {
                let result = verify(&signed, b"challenge", &trust, &revoked, &policy);
                assert!(matches!(result, Err(Rejection::Malformed(_))), "{result:?}");
            }
        }
    }
}
