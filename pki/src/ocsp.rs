//! OCSP (RFC 6960): the request about one verified card certificate, and the checks that
//! decide what the responder's answer says.
//!
//! Like the rest of the crate this does no I/O: [`OcspRequest::new`] makes the bytes the
//! gateway POSTs (`application/ocsp-request`) and [`OcspRequest::check_response`] reads the
//! bytes that came back. An answer counts only when it is a successful basic response, signed
//! (RSA PKCS#1 v1.5 with SHA-256/384/512) by the CA that issued the certificate or by a
//! responder certificate that CA issued for OCSP signing (extended key usage
//! id-kp-OCSPSigning), about exactly the certificate asked for, current at the given clock
//! (within [`MAX_CLOCK_SKEW_SECS`]), and echoing the request's nonce when it echoes one at all.
//! Everything else is an [`OcspError`], which the gateway treats as "the responder could not
//! answer".
//!
//! The ASN.1 types are declared here with `der` derives. RustCrypto's `x509-ocsp` has them
//! too, but its latest release (0.2.1) is built on der 0.7, spki 0.7 and x509-cert 0.2, while
//! this workspace is on der 0.8, spki 0.8 and x509-cert 0.3: its types would not mix with ours
//! and it would pull a second X.509 stack into the build.

use der::asn1::{Any, BitString, GeneralizedTime, Int, Null, ObjectIdentifier, OctetString};
use der::{Choice, Decode, Encode, Enumerated, Sequence};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::{Extension, Extensions};
use x509_cert::name::Name;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::trust::{CaCert, SignedPart, TrustStore};
use crate::util::{self, HashAlg};
use crate::verify::VerifiedCertificate;

/// How far a responder's clock may be ahead of ours (thisUpdate) or our clock ahead of the
/// responder's promise (nextUpdate) before an answer is refused: five minutes.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// The longest nonce accepted (RFC 8954 §2.1: 1 to 32 octets).
pub const MAX_NONCE_LEN: usize = 32;

pub(crate) const ID_PKIX_OCSP_BASIC: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
pub(crate) const ID_PKIX_OCSP_NONCE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
pub(crate) const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// What the responder says about the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspStatus {
    /// Not revoked (as far as the responder knows at thisUpdate).
    Good,
    /// Revoked, permanently or on hold.
    Revoked,
    /// The responder does not know the certificate: not an answer to act on.
    Unknown,
}

/// A checked answer, with its validity so the gateway may cache it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OcspAnswer {
    pub status: OcspStatus,
    /// thisUpdate, Unix seconds.
    pub this_update_unix: i64,
    /// nextUpdate, Unix seconds: the answer may be reused until then. `None`: the responder
    /// promises nothing, so the answer should not be reused.
    pub next_update_unix: Option<i64>,
}

/// Why an OCSP request could not be made or its response cannot be relied on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// The bytes do not decode as an OCSP response (or the request could not be encoded).
    #[error("malformed OCSP data: {0}")]
    Malformed(String),
    /// responseStatus is not `successful` (`tryLater`, `internalError`, …).
    #[error("OCSP responseStatus is {0}")]
    Unsuccessful(&'static str),
    /// A successful response of a type other than id-pkix-ocsp-basic.
    #[error("OCSP response is not a basic OCSP response")]
    UnsupportedResponseType,
    /// The certificate's issuing CA is not in the trust store given to the check.
    #[error("the certificate's issuing CA is not in the trust store")]
    UnknownIssuer,
    /// The response is signed with something other than RSA and SHA-256/384/512.
    #[error("OCSP response signature algorithm is not RSA with SHA-256/384/512")]
    UnsupportedSignature,
    /// Neither the CA's key nor the key of a certificate in the response verifies the
    /// signature.
    #[error("OCSP response signature does not verify")]
    BadSignature,
    /// The response verifies with the key of a certificate the CA did not authorise to sign
    /// OCSP responses for it.
    #[error("OCSP response signed by an unauthorised responder: {0}")]
    UnauthorizedResponder(&'static str),
    /// No SingleResponse is about the certificate asked for.
    #[error("OCSP response does not answer for this certificate")]
    NoMatchingResponse,
    /// thisUpdate is later than now plus the allowed skew.
    #[error("OCSP response thisUpdate is in the future")]
    NotYetValid,
    /// nextUpdate is earlier than now minus the allowed skew.
    #[error("OCSP response is stale: its nextUpdate has passed")]
    Stale,
    /// The response carries a nonce other than the request's.
    #[error("OCSP response nonce does not match the request's")]
    NonceMismatch,
}

fn malformed(what: impl std::fmt::Display) -> OcspError {
    OcspError::Malformed(what.to_string())
}

/// An OCSP request about one verified certificate, and what its answer must match.
#[derive(Debug, Clone)]
pub struct OcspRequest {
    der: Vec<u8>,
    issuer_name_der: Vec<u8>,
    issuer_public_key: Vec<u8>,
    serial: Int,
    /// The nonce as sent, and its extension value (the DER OCTET STRING around it).
    nonce: Vec<u8>,
    nonce_value: Vec<u8>,
}

impl OcspRequest {
    /// The request about `cert` (issuer name and key hashed with SHA-1, as RFC 5019 responders
    /// expect), carrying `nonce` in a non-critical nonce extension; an empty `nonce` sends
    /// none. The gateway passes fresh random bytes, so a recorded answer cannot be replayed
    /// by a responder (or whoever sits in between) that echoes nonces.
    ///
    /// # Errors
    /// [`OcspError::Malformed`] when the nonce is longer than [`MAX_NONCE_LEN`] or the
    /// serial does not encode.
    pub fn new(cert: &VerifiedCertificate, nonce: &[u8]) -> Result<Self, OcspError> {
        if nonce.len() > MAX_NONCE_LEN {
            return Err(malformed(format!(
                "nonce longer than {MAX_NONCE_LEN} octets"
            )));
        }
        let serial = Int::new(&cert.serial_der).map_err(malformed)?;
        let cert_id = CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: ID_SHA1,
                parameters: Some(Any::null()),
            },
            issuer_name_hash: octets(Sha1::digest(&cert.issuer_name_der).to_vec())?,
            issuer_key_hash: octets(Sha1::digest(&cert.issuer_public_key).to_vec())?,
            serial_number: serial.clone(),
        };
        let nonce_value = if nonce.is_empty() {
            Vec::new()
        } else {
            octets(nonce.to_vec())?.to_der().map_err(malformed)?
        };
        let request_extensions = if nonce.is_empty() {
            None
        } else {
            Some(vec![Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: octets(nonce_value.clone())?,
            }])
        };
        let request = OcspRequestDer {
            tbs_request: TbsRequest {
                version: Version::V1,
                requestor_name: None,
                request_list: vec![SingleRequest {
                    req_cert: cert_id,
                    single_request_extensions: None,
                }],
                request_extensions,
            },
            optional_signature: None,
        };
        Ok(Self {
            der: request.to_der().map_err(malformed)?,
            issuer_name_der: cert.issuer_name_der.clone(),
            issuer_public_key: cert.issuer_public_key.clone(),
            serial,
            nonce: nonce.to_vec(),
            nonce_value,
        })
    }

    /// The DER request, the body of the POST.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Checks `response_der` against this request, with the issuing CA taken from `trust`
    /// and the clock `now_unix`, and returns what it says.
    ///
    /// Checks run in this order, and the first failure is returned: decoding and
    /// responseStatus; the signature (by the CA, or by a responder certificate the CA issued
    /// with id-kp-OCSPSigning that is valid now); the nonce; the SingleResponse about this
    /// certificate; its thisUpdate and nextUpdate. The ResponderID is not compared with the
    /// signer: the signature already proves who signed.
    ///
    /// # Errors
    /// The [`OcspError`] of the first failed check.
    pub fn check_response(
        &self,
        response_der: &[u8],
        trust: &TrustStore,
        now_unix: i64,
    ) -> Result<OcspAnswer, OcspError> {
        let response = OcspResponseDer::from_der(response_der).map_err(malformed)?;
        if response.response_status != ResponseStatus::Successful {
            return Err(OcspError::Unsuccessful(response.response_status.name()));
        }
        let bytes = response
            .response_bytes
            .ok_or_else(|| malformed("successful response without responseBytes"))?;
        if bytes.response_type != ID_PKIX_OCSP_BASIC {
            return Err(OcspError::UnsupportedResponseType);
        }
        let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).map_err(malformed)?;
        // The signature is over the tbsResponseData exactly as received; `Any` keeps its
        // content octets, and DER has one header encoding, so this is those bytes.
        let tbs = basic.tbs_response_data.to_der().map_err(malformed)?;
        let data = ResponseData::from_der(&tbs).map_err(malformed)?;

        let ca = trust
            .ca_with_key(&self.issuer_name_der, &self.issuer_public_key)
            .ok_or(OcspError::UnknownIssuer)?;
        let hash = HashAlg::from_rsa_signature_oid(&basic.signature_algorithm.oid.to_string())
            .ok_or(OcspError::UnsupportedSignature)?;
        let signature = basic
            .signature
            .as_bytes()
            .ok_or_else(|| malformed("signature BIT STRING with unused bits"))?;
        check_signer(
            ca,
            basic.certs.as_deref().unwrap_or_default(),
            &SignedPart {
                tbs: &tbs,
                hash: Some(hash),
                signature,
            },
            now_unix,
        )?;

        let mut nonce_matched = false;
        if !self.nonce.is_empty()
            && let Some(echoed) = data
                .response_extensions
                .iter()
                .flatten()
                .find(|e| e.extn_id == ID_PKIX_OCSP_NONCE)
        {
            // RFC 8954 wraps the nonce in an OCTET STRING; RFC 2560 responders echoed the
            // bare octets. Either is the nonce we sent.
            let value = echoed.extn_value.as_bytes();
            if value != self.nonce_value.as_slice() && value != self.nonce.as_slice() {
                return Err(OcspError::NonceMismatch);
            }
            nonce_matched = true;
        }

        let single = data
            .responses
            .iter()
            .find(|r| self.is_about(&r.cert_id))
            .ok_or(OcspError::NoMatchingResponse)?;
        let this_update_unix = unix(&single.this_update);
        let next_update_unix = single.next_update.as_ref().map(unix);
        if this_update_unix > now_unix.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(OcspError::NotYetValid);
        }
        if next_update_unix.is_some_and(|n| n < now_unix.saturating_sub(MAX_CLOCK_SKEW_SECS)) {
            return Err(OcspError::Stale);
        }
        // Without nextUpdate nothing bounds an answer's age: unless it echoes our nonce (so it
        // was made for this request), it must be fresh, or an old signed "good" captured
        // before a revocation could be replayed on the plain-HTTP path.
        if next_update_unix.is_none()
            && !nonce_matched
            && this_update_unix < now_unix.saturating_sub(MAX_CLOCK_SKEW_SECS)
        {
            return Err(OcspError::Stale);
        }
        let status = match single.cert_status {
            CertStatus::Good(_) => OcspStatus::Good,
            CertStatus::Revoked(_) => OcspStatus::Revoked,
            CertStatus::Unknown(_) => OcspStatus::Unknown,
        };
        Ok(OcspAnswer {
            status,
            this_update_unix,
            next_update_unix,
        })
    }

    /// Whether `id` names the certificate this request is about. Responders answer with the
    /// hash algorithm they were asked with, but one answering with SHA-256 is understood too.
    fn is_about(&self, id: &CertId) -> bool {
        let hash = |data: &[u8]| -> Option<Vec<u8>> {
            if id.hash_algorithm.oid == ID_SHA1 {
                Some(Sha1::digest(data).to_vec())
            } else if id.hash_algorithm.oid == ID_SHA256 {
                Some(Sha256::digest(data).to_vec())
            } else {
                None
            }
        };
        id.serial_number == self.serial
            && hash(&self.issuer_name_der).as_deref() == Some(id.issuer_name_hash.as_bytes())
            && hash(&self.issuer_public_key).as_deref() == Some(id.issuer_key_hash.as_bytes())
    }
}

fn octets(bytes: Vec<u8>) -> Result<OctetString, OcspError> {
    OctetString::new(bytes).map_err(malformed)
}

fn unix(time: &GeneralizedTime) -> i64 {
    i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

/// Confirms that the response was signed by `ca` itself or by a responder it authorised.
fn check_signer(
    ca: &CaCert,
    certs: &[Any],
    signed: &SignedPart<'_>,
    now_unix: i64,
) -> Result<(), OcspError> {
    let (Some(hash), signature) = (signed.hash, signed.signature) else {
        return Err(OcspError::UnsupportedSignature);
    };
    if util::rsa_verify(&ca.key, hash, signed.tbs, signature) {
        return Ok(());
    }
    for cert in certs {
        let der = cert.to_der().map_err(malformed)?;
        let Ok((_, responder)) = X509Certificate::from_der(&der) else {
            continue;
        };
        let Ok(key) = util::rsa_key(responder.public_key()) else {
            continue;
        };
        if util::rsa_verify(&key, hash, signed.tbs, signature) {
            return authorised(ca, &responder, now_unix);
        }
    }
    Err(OcspError::BadSignature)
}

/// RFC 6960 §4.2.2.2: a delegated responder's certificate is issued directly by the CA that
/// issued the certificate in question and carries id-kp-OCSPSigning. It must also be valid
/// now. (Whether it is itself revoked is not checked: MOICA's responders carry
/// id-pkix-ocsp-nocheck, and asking the responder about itself would prove nothing.)
fn authorised(
    ca: &CaCert,
    responder: &X509Certificate<'_>,
    now_unix: i64,
) -> Result<(), OcspError> {
    if responder.issuer().as_raw() != ca.subject_raw.as_slice() {
        return Err(OcspError::UnauthorizedResponder(
            "its certificate was not issued by the certificate's CA",
        ));
    }
    let issued = SignedPart::of_certificate(responder);
    let Some(hash) = issued.hash else {
        return Err(OcspError::UnauthorizedResponder(
            "its certificate is not signed with RSA and SHA-256/384/512",
        ));
    };
    if !util::rsa_verify(&ca.key, hash, issued.tbs, issued.signature) {
        return Err(OcspError::UnauthorizedResponder(
            "its certificate was not signed by the certificate's CA",
        ));
    }
    let may_sign_ocsp = responder
        .extended_key_usage()
        .ok()
        .flatten()
        .is_some_and(|eku| eku.value.ocsp_signing);
    if !may_sign_ocsp {
        return Err(OcspError::UnauthorizedResponder(
            "its certificate lacks the OCSPSigning extended key usage",
        ));
    }
    let validity = responder.validity();
    if now_unix < validity.not_before.timestamp() || now_unix > validity.not_after.timestamp() {
        return Err(OcspError::UnauthorizedResponder(
            "its certificate is not valid now",
        ));
    }
    Ok(())
}

// RFC 6960 §4.1.1 and §4.2.1, as far as this crate reads or writes them. `pub(crate)` so the
// test PKI can answer requests with the same definitions.

/// `Version ::= INTEGER { v1(0) }`
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Enumerated)]
#[asn1(type = "INTEGER")]
#[repr(u8)]
pub(crate) enum Version {
    #[default]
    V1 = 0,
}

/// `CertID ::= SEQUENCE { hashAlgorithm, issuerNameHash, issuerKeyHash, serialNumber }`
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct CertId {
    pub(crate) hash_algorithm: AlgorithmIdentifierOwned,
    pub(crate) issuer_name_hash: OctetString,
    pub(crate) issuer_key_hash: OctetString,
    pub(crate) serial_number: Int,
}

/// `OCSPRequest ::= SEQUENCE { tbsRequest, optionalSignature [0] EXPLICIT OPTIONAL }`
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct OcspRequestDer {
    pub(crate) tbs_request: TbsRequest,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub(crate) optional_signature: Option<Any>,
}

/// `TBSRequest`
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct TbsRequest {
    #[asn1(
        context_specific = "0",
        default = "Default::default",
        tag_mode = "EXPLICIT"
    )]
    pub(crate) version: Version,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub(crate) requestor_name: Option<Any>,
    pub(crate) request_list: Vec<SingleRequest>,
    #[asn1(context_specific = "2", optional = "true", tag_mode = "EXPLICIT")]
    pub(crate) request_extensions: Option<Extensions>,
}

/// `Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT OPTIONAL }`
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct SingleRequest {
    pub(crate) req_cert: CertId,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub(crate) single_request_extensions: Option<Extensions>,
}

/// `OCSPResponseStatus ::= ENUMERATED`
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enumerated)]
#[repr(u32)]
pub(crate) enum ResponseStatus {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

impl ResponseStatus {
    fn name(self) -> &'static str {
        match self {
            Self::Successful => "successful",
            Self::MalformedRequest => "malformedRequest",
            Self::InternalError => "internalError",
            Self::TryLater => "tryLater",
            Self::SigRequired => "sigRequired",
            Self::Unauthorized => "unauthorized",
        }
    }
}

/// `OCSPResponse ::= SEQUENCE { responseStatus, responseBytes [0] EXPLICIT OPTIONAL }`
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct OcspResponseDer {
    pub(crate) response_status: ResponseStatus,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub(crate) response_bytes: Option<ResponseBytes>,
}

/// `ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }`
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct ResponseBytes {
    pub(crate) response_type: ObjectIdentifier,
    pub(crate) response: OctetString,
}

/// `BasicOCSPResponse`, with tbsResponseData kept as received for the signature check and
/// the certificates kept as received for x509-parser.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct BasicOcspResponse {
    pub(crate) tbs_response_data: Any,
    pub(crate) signature_algorithm: AlgorithmIdentifierOwned,
    pub(crate) signature: BitString,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub(crate) certs: Option<Vec<Any>>,
}

/// `ResponseData`
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct ResponseData {
    #[asn1(
        context_specific = "0",
        default = "Default::default",
        tag_mode = "EXPLICIT"
    )]
    pub(crate) version: Version,
    pub(crate) responder_id: ResponderId,
    pub(crate) produced_at: GeneralizedTime,
    pub(crate) responses: Vec<SingleResponse>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub(crate) response_extensions: Option<Extensions>,
}

/// `ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash }`
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
pub(crate) enum ResponderId {
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Name),
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

/// `SingleResponse`
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct SingleResponse {
    pub(crate) cert_id: CertId,
    pub(crate) cert_status: CertStatus,
    pub(crate) this_update: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub(crate) next_update: Option<GeneralizedTime>,
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub(crate) single_extensions: Option<Extensions>,
}

/// `CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo,
/// unknown [2] IMPLICIT UnknownInfo }`
#[derive(Clone, Copy, Debug, PartialEq, Eq, Choice)]
pub(crate) enum CertStatus {
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfo),
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

/// `RevokedInfo ::= SEQUENCE { revocationTime, revocationReason [0] EXPLICIT OPTIONAL }`
#[derive(Clone, Copy, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct RevokedInfo {
    pub(crate) revocation_time: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub(crate) revocation_reason: Option<CrlReason>,
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;
    use crate::testpki::{
        CRL_THIS_UPDATE_UNIX, Generation, LeafOptions, NonceReply, OcspResponseOptions, OcspSigner,
        TestPki,
    };
    use crate::{Policy, RevocationLists, SignedChallenge, verify};

    static PKI: LazyLock<TestPki> = LazyLock::new(TestPki::generate);
    const NOW: i64 = CRL_THIS_UPDATE_UNIX + 3600;
    const NONCE: &[u8] = b"sixteen-octets!!";
    const URL: &str = "http://ocsp.example.test/cgi-bin/OCSP2/ocsp";

    /// What the verifier returns for a card of `generation` with an AIA OCSP URL.
    fn verified(generation: Generation) -> VerifiedCertificate {
        verified_with(LeafOptions {
            generation,
            ocsp_url: Some(URL.to_owned()),
            ..LeafOptions::default()
        })
    }

    fn verified_with(opts: LeafOptions) -> VerifiedCertificate {
        let leaf = PKI.leaf(opts);
        let signature = leaf.sign_pkcs1(b"challenge");
        let signed = SignedChallenge::Pkcs1 {
            signature: &signature,
            certificate_der: &leaf.certificate_der,
        };
        let policy = Policy {
            now_unix: NOW,
            required_policy_oids: Vec::new(),
            crl_grace_secs: 0,
        };
        verify(
            &signed,
            b"challenge",
            &PKI.trust_store(),
            &RevocationLists::new(),
            &policy,
        )
        .expect("the card verifies")
    }

    fn good_from(signer: OcspSigner) -> OcspResponseOptions {
        OcspResponseOptions::new(OcspStatus::Good, signer, NOW - 60, Some(NOW + 3600))
    }

    /// Asks about a G3 card and checks the answer made with `opts`.
    fn answer(opts: &OcspResponseOptions) -> Result<OcspAnswer, OcspError> {
        let request = OcspRequest::new(&verified(Generation::G3), NONCE).expect("request");
        let response = PKI.ocsp_response(request.der(), opts);
        request.check_response(&response, &PKI.trust_store(), NOW)
    }

    #[test]
    fn the_request_names_the_certificate_as_rfc_6960_hashes_it() {
        let cert = verified(Generation::G3);
        assert_eq!(cert.ocsp_url.as_deref(), Some(URL));
        assert_eq!(verified_with(LeafOptions::default()).ocsp_url, None);
        let request = OcspRequest::new(&cert, NONCE).expect("request");
        let decoded = OcspRequestDer::from_der(request.der()).expect("request decodes");
        let [single] = decoded.tbs_request.request_list.as_slice() else {
            panic!("one request expected");
        };
        let id = &single.req_cert;

        // Independently: the CA certificate through x509-cert, the leaf's serial as issued.
        let ca = x509_cert::Certificate::from_der(&PKI.ca_g3_der).expect("CA decodes");
        let tbs = ca.tbs_certificate();
        let name_hash = Sha1::digest(tbs.subject().to_der().expect("name encodes"));
        let key_hash = Sha1::digest(tbs.subject_public_key_info().subject_public_key.raw_bytes());
        assert_eq!(id.hash_algorithm.oid, ID_SHA1);
        assert_eq!(id.issuer_name_hash.as_bytes(), name_hash.as_slice());
        assert_eq!(id.issuer_key_hash.as_bytes(), key_hash.as_slice());
        assert_eq!(
            id.serial_number.as_bytes(),
            crate::testpki::serial_bytes(LeafOptions::default().serial)
        );

        let [nonce] = decoded
            .tbs_request
            .request_extensions
            .as_deref()
            .expect("extensions")
        else {
            panic!("one extension expected");
        };
        assert_eq!(nonce.extn_id, ID_PKIX_OCSP_NONCE);
        assert!(!nonce.critical);
        assert_eq!(
            nonce.extn_value.as_bytes(),
            OctetString::new(NONCE)
                .expect("nonce")
                .to_der()
                .expect("DER")
        );

        // The other generation shares the name, not the key.
        let g2 = OcspRequest::new(&verified(Generation::G2), b"").expect("request");
        let decoded = OcspRequestDer::from_der(g2.der()).expect("request decodes");
        let id2 = &decoded.tbs_request.request_list[0].req_cert;
        assert_eq!(id2.issuer_name_hash, id.issuer_name_hash);
        assert_ne!(id2.issuer_key_hash, id.issuer_key_hash);
        assert!(decoded.tbs_request.request_extensions.is_none(), "no nonce");

        assert!(matches!(
            OcspRequest::new(&cert, &[0; MAX_NONCE_LEN + 1]),
            Err(OcspError::Malformed(_))
        ));
    }

    #[test]
    fn each_status_is_read_with_its_validity() {
        for status in [OcspStatus::Good, OcspStatus::Revoked, OcspStatus::Unknown] {
            let opts = OcspResponseOptions::new(
                status,
                OcspSigner::Ca(Generation::G3),
                NOW - 60,
                Some(NOW + 3600),
            );
            assert_eq!(
                answer(&opts),
                Ok(OcspAnswer {
                    status,
                    this_update_unix: NOW - 60,
                    next_update_unix: Some(NOW + 3600),
                })
            );
        }
        let open_ended = OcspResponseOptions {
            next_update_unix: None,
            ..good_from(OcspSigner::Ca(Generation::G3))
        };
        assert_eq!(answer(&open_ended).map(|a| a.next_update_unix), Ok(None));
    }

    #[test]
    fn only_the_issuing_ca_or_its_authorised_responder_may_sign() {
        let delegated = OcspSigner::Responder {
            issuer: Generation::G3,
            ocsp_signing: true,
        };
        assert_eq!(
            answer(&good_from(delegated)).map(|a| a.status),
            Ok(OcspStatus::Good)
        );
        for (signer, expected) in [
            // Same name as G3, other key: not the card's CA.
            (OcspSigner::Ca(Generation::G2), OcspError::BadSignature),
            (OcspSigner::Unrelated, OcspError::BadSignature),
            (
                OcspSigner::Responder {
                    issuer: Generation::G3,
                    ocsp_signing: false,
                },
                OcspError::UnauthorizedResponder(
                    "its certificate lacks the OCSPSigning extended key usage",
                ),
            ),
            (
                OcspSigner::Responder {
                    issuer: Generation::G2,
                    ocsp_signing: true,
                },
                OcspError::UnauthorizedResponder(
                    "its certificate was not signed by the certificate's CA",
                ),
            ),
        ] {
            assert_eq!(answer(&good_from(signer)), Err(expected), "{signer:?}");
        }

        // A responder certificate outside its validity period.
        let request = OcspRequest::new(&verified(Generation::G3), NONCE).expect("request");
        let late = crate::testpki::CA_NOT_AFTER_UNIX + 10;
        let opts =
            OcspResponseOptions::new(OcspStatus::Good, delegated, late - 60, Some(late + 3600));
        let response = PKI.ocsp_response(request.der(), &opts);
        assert_eq!(
            request.check_response(&response, &PKI.trust_store(), late),
            Err(OcspError::UnauthorizedResponder(
                "its certificate is not valid now"
            ))
        );

        // One flipped bit in the signature.
        let mut response =
            PKI.ocsp_response(request.der(), &good_from(OcspSigner::Ca(Generation::G3)));
        if let Some(last) = response.last_mut() {
            *last ^= 0x01;
        }
        assert_eq!(
            request.check_response(&response, &PKI.trust_store(), NOW),
            Err(OcspError::BadSignature)
        );
    }

    #[test]
    fn times_are_checked_with_five_minutes_of_skew() {
        let ca = OcspSigner::Ca(Generation::G3);
        let at = |this: i64, next: Option<i64>| {
            answer(&OcspResponseOptions::new(OcspStatus::Good, ca, this, next)).map(|a| a.status)
        };
        assert_eq!(at(NOW + 240, Some(NOW + 3600)), Ok(OcspStatus::Good));
        assert_eq!(at(NOW + 400, Some(NOW + 3600)), Err(OcspError::NotYetValid));
        assert_eq!(at(NOW - 7200, Some(NOW - 240)), Ok(OcspStatus::Good));
        assert_eq!(at(NOW - 7200, Some(NOW - 400)), Err(OcspError::Stale));
        assert_eq!(
            at(NOW - 86_400 * 2, Some(NOW - 86_400)),
            Err(OcspError::Stale)
        );
    }

    #[test]
    fn an_answer_without_next_update_is_fresh_or_echoes_our_nonce() {
        let ca = OcspSigner::Ca(Generation::G3);
        let check = |this: i64, nonce: NonceReply| {
            answer(&OcspResponseOptions {
                nonce,
                ..OcspResponseOptions::new(OcspStatus::Good, ca, this, None)
            })
            .map(|a| a.status)
        };
        // An old answer made for this request (our nonce echoed) is fine.
        assert_eq!(check(NOW - 86_400, NonceReply::Echo), Ok(OcspStatus::Good));
        // Without the nonce it must be recent: an old one could be a replay.
        assert_eq!(check(NOW - 60, NonceReply::Omit), Ok(OcspStatus::Good));
        assert_eq!(check(NOW - 86_400, NonceReply::Omit), Err(OcspError::Stale));
    }

    #[test]
    fn the_nonce_must_be_ours_when_echoed() {
        let ca = good_from(OcspSigner::Ca(Generation::G3));
        let omitted = OcspResponseOptions {
            nonce: NonceReply::Omit,
            ..ca
        };
        assert_eq!(answer(&omitted).map(|a| a.status), Ok(OcspStatus::Good));
        let other = OcspResponseOptions {
            nonce: NonceReply::Other,
            ..ca
        };
        assert_eq!(answer(&other), Err(OcspError::NonceMismatch));
        // Without a nonce in the request there is nothing to compare.
        let request = OcspRequest::new(&verified(Generation::G3), b"").expect("request");
        let response = PKI.ocsp_response(request.der(), &other);
        assert_eq!(
            request
                .check_response(&response, &PKI.trust_store(), NOW)
                .map(|a| a.status),
            Ok(OcspStatus::Good)
        );
    }

    #[test]
    fn an_answer_about_another_certificate_or_no_answer_is_refused() {
        let about_another = OcspResponseOptions {
            serial_override: Some(0x7777),
            ..good_from(OcspSigner::Ca(Generation::G3))
        };
        assert_eq!(answer(&about_another), Err(OcspError::NoMatchingResponse));

        let request = OcspRequest::new(&verified(Generation::G3), NONCE).expect("request");
        let trust = PKI.trust_store();
        assert_eq!(
            request.check_response(&TestPki::ocsp_try_later(), &trust, NOW),
            Err(OcspError::Unsuccessful("tryLater"))
        );
        for garbage in [
            &b""[..],
            b"garbage",
            &[0x30, 0x03, 0x0a, 0x01, 0x00],
            &[0xff; 64],
        ] {
            assert!(
                matches!(
                    request.check_response(garbage, &trust, NOW),
                    Err(OcspError::Malformed(_))
                ),
                "{garbage:?}"
            );
        }
        // A G3 answer checked against a store without G3.
        let response = PKI.ocsp_response(request.der(), &good_from(OcspSigner::Ca(Generation::G3)));
        let mut without_g3 = TrustStore::new();
        without_g3.add_root(&PKI.root_der).expect("root");
        without_g3.add_intermediate(&PKI.ca_g2_der).expect("G2");
        assert_eq!(
            request.check_response(&response, &without_g3, NOW),
            Err(OcspError::UnknownIssuer)
        );
    }

    #[test]
    fn error_messages_are_distinct() {
        let all = [
            OcspError::Malformed("x".into()),
            OcspError::Unsuccessful("tryLater"),
            OcspError::UnsupportedResponseType,
            OcspError::UnknownIssuer,
            OcspError::UnsupportedSignature,
            OcspError::BadSignature,
            OcspError::UnauthorizedResponder("x"),
            OcspError::NoMatchingResponse,
            OcspError::NotYetValid,
            OcspError::Stale,
            OcspError::NonceMismatch,
        ];
        let texts: std::collections::HashSet<String> =
            all.iter().map(ToString::to_string).collect();
        assert_eq!(texts.len(), all.len());
    }
}
