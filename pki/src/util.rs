//! Small helpers shared by the trust store, the CRL loader and the verifier: hash and
//! signature-algorithm mapping, RSA key extraction, hex, and PEM detection.
//!
//! Everything here works on x509-parser types or raw bytes so the modules above agree on one
//! definition of "a key identifier" and "an acceptable signature algorithm".

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_parser::prelude::*;

/// rsaEncryption, the SubjectPublicKeyInfo algorithm of every MOICA and GRCA key.
pub(crate) const OID_RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// Smallest RSA modulus accepted anywhere: MOICA cards and CAs use 2048 bits or more, and a
/// smaller key would be a downgrade no genuine card produces.
pub(crate) const MIN_RSA_BITS: usize = 2048;

/// The hash functions accepted with RSA PKCS#1 v1.5. SHA-1 is deliberately absent: MOICA
/// has signed with SHA-256 since G2, and SHA-1 signatures can be forged with chosen prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HashAlg {
    Sha256,
    Sha384,
    Sha512,
}

impl HashAlg {
    /// Maps a digest algorithm OID (as used in CMS `digestAlgorithm`).
    pub(crate) fn from_digest_oid(oid: &str) -> Option<Self> {
        match oid {
            "2.16.840.1.101.3.4.2.1" => Some(Self::Sha256),
            "2.16.840.1.101.3.4.2.2" => Some(Self::Sha384),
            "2.16.840.1.101.3.4.2.3" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// Maps a `shaXWithRSAEncryption` signature algorithm OID.
    pub(crate) fn from_rsa_signature_oid(oid: &str) -> Option<Self> {
        match oid {
            "1.2.840.113549.1.1.11" => Some(Self::Sha256),
            "1.2.840.113549.1.1.12" => Some(Self::Sha384),
            "1.2.840.113549.1.1.13" => Some(Self::Sha512),
            _ => None,
        }
    }

    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha384 => Sha384::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn scheme(self) -> Pkcs1v15Sign {
        match self {
            Self::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
            Self::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
            Self::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
        }
    }
}

/// Verifies an RSA PKCS#1 v1.5 signature over `data`; `false` on any mismatch.
pub(crate) fn rsa_verify(key: &PublicKey, hash: HashAlg, data: &[u8], signature: &[u8]) -> bool {
    key.verify(hash.scheme(), &hash.digest(data), signature)
        .is_ok()
}

/// Why a public key could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyProblem {
    /// Not an RSA key, or one below [`MIN_RSA_BITS`].
    NotRsa,
    /// Claims to be RSA but the RSAPublicKey structure does not decode.
    Malformed,
}

/// Extracts the RSA public key of a SubjectPublicKeyInfo.
pub(crate) fn rsa_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<PublicKey, KeyProblem> {
    if spki.algorithm.algorithm.to_id_string() != OID_RSA_ENCRYPTION {
        return Err(KeyProblem::NotRsa);
    }
    let key = PublicKey::from_pkcs1_der(&spki.subject_public_key.data)
        .map_err(|_| KeyProblem::Malformed)?;
    if key.size() * 8 < MIN_RSA_BITS {
        return Err(KeyProblem::NotRsa);
    }
    Ok(key)
}

/// The key identifier a CA is known by: its subject key identifier extension, or, when the
/// certificate has none, the RFC 5280 §4.2.1.2 method-1 value (SHA-1 of the public key bits)
/// that issuers of that era put in their subordinates' authority key identifiers.
pub(crate) fn key_identifier(cert: &X509Certificate<'_>) -> Vec<u8> {
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectKeyIdentifier(ki) = ext.parsed_extension() {
            return ki.0.to_vec();
        }
    }
    Sha1::digest(&cert.public_key().subject_public_key.data).to_vec()
}

/// The keyIdentifier field of an authority key identifier extension, when present.
pub(crate) fn authority_key_id<'a>(exts: &'a [X509Extension<'a>]) -> Option<&'a [u8]> {
    exts.iter().find_map(|ext| match ext.parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.as_ref().map(|k| k.0),
        _ => None,
    })
}

/// Lowercase hex without separators, the form used in logs and activity records.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Whether the input looks like PEM rather than DER, so loaders accept either without the
/// operator having to say which (DER always starts with a SEQUENCE tag, 0x30).
pub(crate) fn looks_like_pem(input: &[u8]) -> bool {
    let trimmed = input.trim_ascii_start();
    trimmed.starts_with(b"-----BEGIN")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_unseparated() {
        assert_eq!(hex(&[0x00, 0xab, 0x0f, 0xff]), "00ab0fff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn pem_detection_skips_leading_whitespace() {
        assert!(looks_like_pem(b"\n  -----BEGIN CERTIFICATE-----"));
        assert!(!looks_like_pem(&[0x30, 0x82, 0x01]));
    }
}
