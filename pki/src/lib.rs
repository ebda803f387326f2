//! Verification of citizen digital certificate (自然人憑證, MOICA smart card) logins.
//!
//! The MOI "HiPKI Local Sign Server" component on the user's computer signs a challenge that
//! the gateway issued, either as CMS SignedData (`signatureType` PKCS7) or as a bare RSA
//! PKCS#1 v1.5 signature with the certificate sent beside it (PKCS1). This crate decides
//! whether such a signature proves possession of a currently valid, unrevoked MOICA card
//! certificate. It is pure: it reads only the bytes it is handed (certificates, CRLs,
//! signatures) and the clock value in [`verify::Policy`], so the gateway decides where those
//! come from and how often they are refreshed.
//!
//! - [`trust`]: the trusted root(s) and CA certificates, several generations with one name.
//! - [`crl`]: revocation lists, verified against the trust store before their entries are
//!   read, refused when partial, stale or older than the one held; kept for O(1) lookups.
//! - [`verify`](mod@verify): the verification of one signed challenge.
//! - [`ocsp`]: an OCSP request about a verified certificate, and the checks of the answer.
//! - `testpki` (feature `testpki`): a MOICA-shaped PKI generated at test time.

pub mod crl;
pub mod ocsp;
pub mod trust;
mod util;
pub mod verify;

#[cfg(feature = "testpki")]
pub mod testpki;

pub use crl::{
    CLOCK_SKEW_SECS, CrlCheck, CrlError, CrlInfo, CrlScope, Freshness, MAX_CRL_BYTES,
    RevocationLists, RevocationStatus,
};
pub use ocsp::{OcspAnswer, OcspError, OcspRequest, OcspStatus};
pub use trust::{CrlIssuer, TrustError, TrustStore};
pub use verify::{Policy, Rejection, SignedChallenge, VerifiedCertificate, verify};
