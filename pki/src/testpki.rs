//! A MOICA-shaped PKI generated at test time (feature `testpki`).
//!
//! Mirrors what matters of the real hierarchy: a GRCA-like root; two issuing CA generations
//! (G2, G3) with the *same* subject name and different keys; a rogue CA with that name too,
//! never trusted; RSA-2048 card certificates with key usage, certificate policies and the
//! subject directory attribute holding the national ID's last four digits; CRLs from the
//! root and from each CA, with any times, numbers, entries and extensions; and CMS
//! signatures shaped like the HiPKI Local Sign Server's; and OCSP responses, signed by a CA,
//! by a delegated responder, or by a key nobody authorised.
//!
//! RSA-2048 key generation is slow (seconds in debug builds), so the keys are generated once
//! per process, in parallel, and shared by every [`TestPki`]; all test leaves share one key.
//! Nothing here is meant for production, and failures panic with a message, as test
//! fixtures do.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{
    Any, BitString, GeneralizedTime, Ia5String, Int, OctetString, PrintableString, SetOfVec,
    UtcTime,
};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode};
use rcgen::string::PrintableString as RcgenPrintable;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rsa::pkcs8::EncodePrivateKey;
use rsa::{Pkcs1v15Sign, PrivateKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, CertificatePolicies, CrlReason,
    SubjectDirectoryAttributes,
};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::ocsp::{
    BasicOcspResponse, CertStatus, ID_PKIX_OCSP_BASIC, ID_PKIX_OCSP_NONCE, OcspRequestDer,
    OcspResponseDer, OcspStatus, ResponderId, ResponseBytes, ResponseData, ResponseStatus,
    RevokedInfo, SingleResponse, Version,
};
use crate::trust::TrustStore;
use crate::verify::OID_ID_LAST4;

/// Root validity: 2000-01-01 to 2100-01-01.
pub const ROOT_NOT_BEFORE_UNIX: i64 = 946_684_800;
/// See [`ROOT_NOT_BEFORE_UNIX`].
pub const ROOT_NOT_AFTER_UNIX: i64 = 4_102_444_800;
/// Issuing CA validity: 2010-01-01 to 2090-01-01 (inside the root's, so a leaf valid
/// beyond 2090 reaches [`crate::Rejection::IssuerExpired`]).
pub const CA_NOT_BEFORE_UNIX: i64 = 1_262_304_000;
/// See [`CA_NOT_BEFORE_UNIX`].
pub const CA_NOT_AFTER_UNIX: i64 = 3_786_912_000;
/// thisUpdate of CRLs made with [`CrlOptions::default`]: 2026-02-28, a day before the date
/// this crate's tests verify at.
pub const CRL_THIS_UPDATE_UNIX: i64 = 1_772_236_800;
/// nextUpdate of CRLs made with [`CrlOptions::default`]: a week after
/// [`CRL_THIS_UPDATE_UNIX`].
pub const CRL_NEXT_UPDATE_UNIX: i64 = CRL_THIS_UPDATE_UNIX + 7 * 86_400;
/// Serial number of the G2 CA certificate (what the root's CRL lists to revoke it).
pub const CA_G2_SERIAL: u64 = 2;
/// Serial number of the G3 CA certificate.
pub const CA_G3_SERIAL: u64 = 3;
/// A certificate policy OID made up for tests (private enterprise arc), present in leaves
/// by default.
pub const TEST_POLICY_OID: &str = "1.3.6.1.4.1.55555.1.1";
/// The MOICA issuing CAs' common subject name, as [`crate::VerifiedCertificate::issuer`]
/// renders it.
pub const MOICA_ISSUER: &str = "C=TW, O=行政院, OU=內政部憑證管理中心";

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const ID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");

/// A MOICA issuing CA generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// The older generation.
    G2,
    /// The newer generation, same name as G2, different key.
    G3,
}

/// How to make a test card certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafOptions {
    /// Which CA generation issues it.
    pub generation: Generation,
    /// Subject common name (the holder's name).
    pub cn: String,
    /// Last four digits of the national ID; empty omits the subject directory attributes.
    pub id_last4: String,
    /// notBefore, Unix seconds.
    pub not_before_unix: i64,
    /// notAfter, Unix seconds.
    pub not_after_unix: i64,
    /// Whether keyUsage includes digitalSignature (else keyEncipherment, like the card's
    /// encryption certificate).
    pub digital_signature: bool,
    /// certificatePolicies OIDs; empty omits the extension.
    pub policy_oids: Vec<String>,
    /// Serial number.
    pub serial: u64,
    /// Sign it with the rogue CA: same name as the real ones, key not in the trust store.
    pub issuer_untrusted: bool,
    /// An OCSP responder URL for the Authority Information Access extension; `None` (the
    /// default) omits the extension.
    pub ocsp_url: Option<String>,
    /// basicConstraints cA=TRUE: a CA certificate posing as a card's.
    pub ca: bool,
    /// An extension with this OID (dotted), marked critical, that nothing understands.
    pub critical_extension_oid: Option<String>,
}

impl Default for LeafOptions {
    /// A valid G3 signing certificate from 2020 to 2035 with [`TEST_POLICY_OID`].
    fn default() -> Self {
        Self {
            generation: Generation::G3,
            cn: "王小明".to_owned(),
            id_last4: "6789".to_owned(),
            not_before_unix: 1_577_836_800,
            not_after_unix: 2_051_222_400,
            digital_signature: true,
            policy_oids: vec![TEST_POLICY_OID.to_owned()],
            serial: 0x1234_5678,
            issuer_untrusted: false,
            ocsp_url: None,
            ca: false,
            critical_extension_oid: None,
        }
    }
}

struct Keys {
    root: PrivateKey,
    g2: PrivateKey,
    g3: PrivateKey,
    rogue: PrivateKey,
    leaf: PrivateKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let generated: Vec<PrivateKey> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..5)
                .map(|_| {
                    s.spawn(|| PrivateKey::new(&mut rand::rng(), 2048).expect("RSA key generation"))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("key generation thread"))
                .collect()
        });
        let [root, g2, g3, rogue, leaf]: [PrivateKey; 5] = generated
            .try_into()
            .unwrap_or_else(|_| unreachable!("five keys were generated"));
        Keys {
            root,
            g2,
            g3,
            rogue,
            leaf,
        }
    })
}

fn key_pair(key: &PrivateKey) -> KeyPair {
    let pkcs8 = key.to_pkcs8_der().expect("PKCS#8 encoding");
    let pair = KeyPair::try_from(pkcs8.as_bytes()).expect("rcgen accepts the RSA key");
    assert_eq!(pair.algorithm(), &rcgen::PKCS_RSA_SHA256);
    pair
}

fn time(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).expect("timestamp in range")
}

fn printable(s: &str) -> DnValue {
    DnValue::PrintableString(RcgenPrintable::try_from(s).expect("printable string"))
}

fn moica_name() -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, printable("TW"));
    dn.push(DnType::OrganizationName, "行政院");
    dn.push(DnType::OrganizationalUnitName, "內政部憑證管理中心");
    dn
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
}

impl Ca {
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

fn ca_params(
    name: DistinguishedName,
    serial: u64,
    not_before: i64,
    not_after: i64,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name;
    params.serial_number = Some(SerialNumber::from(serial));
    params.not_before = time(not_before);
    params.not_after = time(not_after);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    params
}

/// A generated MOICA-shaped PKI.
pub struct TestPki {
    /// The root (GRCA-like), DER.
    pub root_der: Vec<u8>,
    /// The G2 issuing CA, DER.
    pub ca_g2_der: Vec<u8>,
    /// The G3 issuing CA, DER: same subject name as G2, different key.
    pub ca_g3_der: Vec<u8>,
    /// A self-signed CA with the MOICA name and a key of its own; never trusted.
    pub rogue_ca_der: Vec<u8>,
    g2: Ca,
    g3: Ca,
    rogue: Ca,
    leaf_key: KeyPair,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").finish_non_exhaustive()
    }
}

impl TestPki {
    /// Generates the CA certificates (the keys come from a per-process cache).
    ///
    /// # Panics
    /// If key or certificate generation fails, which only a broken environment causes.
    #[must_use]
    pub fn generate() -> TestPki {
        let keys = keys();
        let mut root_name = DistinguishedName::new();
        root_name.push(DnType::CountryName, printable("TW"));
        root_name.push(DnType::OrganizationName, "行政院");
        root_name.push(DnType::OrganizationalUnitName, "政府憑證總管理中心");
        let mut root_params = ca_params(root_name, 1, ROOT_NOT_BEFORE_UNIX, ROOT_NOT_AFTER_UNIX);
        root_params.use_authority_key_identifier_extension = false;
        let root = Ca {
            params: root_params,
            key: key_pair(&keys.root),
        };
        let root_der = root
            .params
            .self_signed(&root.key)
            .expect("root certificate")
            .der()
            .to_vec();

        let make_ca = |key: &PrivateKey, serial: u64| {
            let ca = Ca {
                params: ca_params(moica_name(), serial, CA_NOT_BEFORE_UNIX, CA_NOT_AFTER_UNIX),
                key: key_pair(key),
            };
            let der = ca
                .params
                .signed_by(&ca.key, &root.issuer())
                .expect("CA certificate")
                .der()
                .to_vec();
            (ca, der)
        };
        let (g2, ca_g2_der) = make_ca(&keys.g2, CA_G2_SERIAL);
        let (g3, ca_g3_der) = make_ca(&keys.g3, CA_G3_SERIAL);
        let rogue = Ca {
            params: ca_params(moica_name(), 666, CA_NOT_BEFORE_UNIX, CA_NOT_AFTER_UNIX),
            key: key_pair(&keys.rogue),
        };
        let rogue_ca_der = rogue
            .params
            .self_signed(&rogue.key)
            .expect("rogue CA certificate")
            .der()
            .to_vec();

        TestPki {
            root_der,
            ca_g2_der,
            ca_g3_der,
            rogue_ca_der,
            g2,
            g3,
            rogue,
            leaf_key: key_pair(&keys.leaf),
        }
    }

    /// A trust store holding the root and both real CA generations (not the rogue CA).
    ///
    /// # Panics
    /// If the generated certificates do not load, which would be a bug here.
    #[must_use]
    pub fn trust_store(&self) -> TrustStore {
        let mut store = TrustStore::new();
        store.add_root(&self.root_der).expect("root loads");
        store.add_intermediate(&self.ca_g2_der).expect("G2 loads");
        store.add_intermediate(&self.ca_g3_der).expect("G3 loads");
        store
    }

    /// The key identifier (subject key identifier) of a CA generation, as the revocation
    /// lists key their entries.
    ///
    /// # Panics
    /// If the generated certificate does not parse, which would be a bug here.
    #[must_use]
    pub fn key_id(&self, generation: Generation) -> Vec<u8> {
        let der = match generation {
            Generation::G2 => &self.ca_g2_der,
            Generation::G3 => &self.ca_g3_der,
        };
        let (_, cert) = X509Certificate::from_der(der).expect("generated CA parses");
        crate::util::key_identifier(&cert)
    }

    fn ca(&self, generation: Generation) -> &Ca {
        match generation {
            Generation::G2 => &self.g2,
            Generation::G3 => &self.g3,
        }
    }

    /// Issues a card certificate.
    ///
    /// # Panics
    /// If the options cannot be encoded (e.g. `id_last4` not printable, a bad policy OID).
    #[must_use]
    pub fn leaf(&self, opts: LeafOptions) -> TestLeaf {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, printable("TW"));
        dn.push(DnType::CommonName, opts.cn.as_str());
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.serial_number = Some(SerialNumber::from(opts.serial));
        params.not_before = time(opts.not_before_unix);
        params.not_after = time(opts.not_after_unix);
        params.is_ca = if opts.ca {
            IsCa::Ca(BasicConstraints::Unconstrained)
        } else {
            IsCa::ExplicitNoCa
        };
        params.use_authority_key_identifier_extension = true;
        if let Some(oid) = &opts.critical_extension_oid {
            let arcs: Vec<u64> = oid
                .split('.')
                .map(|arc| arc.parse().expect("dotted OID"))
                .collect();
            let mut ext = CustomExtension::from_oid_content(&arcs, vec![0x05, 0x00]);
            ext.set_criticality(true);
            params.custom_extensions.push(ext);
        }
        params.key_usages = if opts.digital_signature {
            vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::ContentCommitment,
            ]
        } else {
            vec![
                KeyUsagePurpose::KeyEncipherment,
                KeyUsagePurpose::DataEncipherment,
            ]
        };
        if !opts.policy_oids.is_empty() {
            let policies = CertificatePolicies(
                opts.policy_oids
                    .iter()
                    .map(|oid| PolicyInformation {
                        policy_identifier: ObjectIdentifier::new(oid).expect("policy OID"),
                        policy_qualifiers: None,
                    })
                    .collect(),
            );
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[2, 5, 29, 32],
                    policies.to_der().expect("certificatePolicies encodes"),
                ));
        }
        if !opts.id_last4.is_empty() {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[2, 5, 29, 9],
                    subject_directory_attributes(&opts.id_last4),
                ));
        }
        if let Some(url) = &opts.ocsp_url {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                    authority_info_access(url),
                ));
        }
        let ca = if opts.issuer_untrusted {
            &self.rogue
        } else {
            self.ca(opts.generation)
        };
        let certificate_der = params
            .signed_by(&self.leaf_key, &ca.issuer())
            .expect("leaf certificate")
            .der()
            .to_vec();
        TestLeaf {
            certificate_der,
            key: &keys().leaf,
        }
    }

    /// A DER CRL from `generation` listing `revoked_serials`, current at the wall clock
    /// (thisUpdate an hour ago, nextUpdate in a week), for tests that load it at the real
    /// time (the gateway's, the stand-ins').
    ///
    /// # Panics
    /// If the CRL cannot be encoded or signed.
    #[must_use]
    pub fn crl(
        &self,
        generation: Generation,
        revoked_serials: impl Iterator<Item = u64>,
    ) -> Vec<u8> {
        self.current_crl(CrlSigner::Ca(generation), revoked_serials.collect())
    }

    /// The root's CRL (ARL) listing the CA serials `revoked_serials` ([`CA_G2_SERIAL`],
    /// [`CA_G3_SERIAL`]), current at the wall clock like [`TestPki::crl`]. A verification
    /// needs it for the CA certificate on the path.
    ///
    /// # Panics
    /// If the CRL cannot be encoded or signed.
    #[must_use]
    pub fn root_crl(&self, revoked_serials: impl Iterator<Item = u64>) -> Vec<u8> {
        self.current_crl(CrlSigner::Root, revoked_serials.collect())
    }

    fn current_crl(&self, issuer: CrlSigner, revoked_serials: Vec<u64>) -> Vec<u8> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(CRL_THIS_UPDATE_UNIX, |d| {
                i64::try_from(d.as_secs()).expect("time fits")
            });
        self.crl_with(
            issuer,
            &CrlOptions {
                this_update_unix: now - 3600,
                next_update_unix: Some(now + 7 * 86_400),
                revoked_serials,
                ..CrlOptions::default()
            },
        )
    }

    /// A DER CRL signed by `issuer` as `opts` say: any times, cRLNumber, entries (with
    /// padded serials and entry extensions) and CRL extensions (delta indicator, issuing
    /// distribution point, unknown critical ones). Built by hand rather than with rcgen,
    /// which cannot add arbitrary extensions.
    ///
    /// # Panics
    /// If the options cannot be encoded (e.g. a bad OID) or signing fails.
    #[must_use]
    pub fn crl_with(&self, issuer: CrlSigner, opts: &CrlOptions) -> Vec<u8> {
        let (key, ca_der) = match issuer {
            CrlSigner::Root => (&keys().root, &self.root_der),
            CrlSigner::Ca(Generation::G2) => (&keys().g2, &self.ca_g2_der),
            CrlSigner::Ca(Generation::G3) => (&keys().g3, &self.ca_g3_der),
        };
        let (_, ca) = X509Certificate::from_der(ca_der).expect("generated CA parses");
        let key_id = crate::util::key_identifier(&ca);
        let algorithm = AlgorithmIdentifierOwned {
            oid: SHA256_WITH_RSA,
            parameters: Some(Any::null()),
        }
        .to_der()
        .expect("algorithm encodes");
        let revocation_time = der_time(opts.this_update_unix - 86_400);

        let mut entries = Vec::new();
        for &serial in &opts.revoked_serials {
            let mut serial_octets = vec![0u8; opts.serial_padding];
            serial_octets.extend_from_slice(&serial_bytes(serial));
            let mut entry = tlv(0x02, &serial_octets);
            entry.extend_from_slice(&revocation_time);
            if !opts.entry_extensions.is_empty() {
                let exts: Vec<u8> = opts.entry_extensions.iter().flat_map(|e| e.der()).collect();
                entry.extend_from_slice(&tlv(0x30, &exts));
            }
            entries.extend_from_slice(&tlv(0x30, &entry));
        }

        let authority_key_id = x509_cert::ext::pkix::AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(key_id).expect("key identifier")),
            authority_cert_issuer: None,
            authority_cert_serial_number: None,
        };
        let mut extensions = vec![TestExtension {
            oid: "2.5.29.35".to_owned(),
            critical: false,
            value: authority_key_id.to_der().expect("AKI encodes"),
        }];
        if let Some(number) = opts.crl_number {
            extensions.push(TestExtension {
                oid: "2.5.29.20".to_owned(),
                critical: false,
                value: tlv(0x02, &serial_bytes(number)),
            });
        }
        if let Some(base) = opts.delta_base {
            extensions.push(TestExtension {
                oid: "2.5.29.27".to_owned(),
                critical: true,
                value: tlv(0x02, &serial_bytes(base)),
            });
        }
        extensions.extend(opts.extensions.iter().cloned());

        let mut tbs = vec![0x02, 0x01, 0x01];
        tbs.extend_from_slice(&algorithm);
        tbs.extend_from_slice(ca.subject().as_raw());
        tbs.extend_from_slice(&der_time(opts.this_update_unix));
        if let Some(next) = opts.next_update_unix {
            tbs.extend_from_slice(&der_time(next));
        }
        if !opts.revoked_serials.is_empty() {
            tbs.extend_from_slice(&tlv(0x30, &entries));
        }
        let exts: Vec<u8> = extensions.iter().flat_map(TestExtension::der).collect();
        tbs.extend_from_slice(&tlv(0xa0, &tlv(0x30, &exts)));
        let tbs = tlv(0x30, &tbs);

        let signature = key
            .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&tbs))
            .expect("RSA signing");
        let mut bits = vec![0u8];
        bits.extend_from_slice(&signature);
        let mut list = tbs;
        list.extend_from_slice(&algorithm);
        list.extend_from_slice(&tlv(0x03, &bits));
        tlv(0x30, &list)
    }

    /// An OCSP response answering `request_der` (as [`crate::OcspRequest::der`] makes it):
    /// one SingleResponse per CertID asked about, echoing it, with the options' status,
    /// times, signer and nonce handling.
    ///
    /// # Panics
    /// If the request does not decode or the response cannot be encoded or signed.
    #[must_use]
    pub fn ocsp_response(&self, request_der: &[u8], opts: &OcspResponseOptions) -> Vec<u8> {
        let request = OcspRequestDer::from_der(request_der).expect("OCSP request decodes");
        let generalized = |unix: i64| {
            let secs = u64::try_from(unix).expect("time after 1970");
            GeneralizedTime::from_unix_duration(Duration::from_secs(secs)).expect("time fits")
        };
        let cert_status = match opts.status {
            OcspStatus::Good => CertStatus::Good(der::asn1::Null),
            OcspStatus::Revoked => CertStatus::Revoked(RevokedInfo {
                revocation_time: generalized(opts.this_update_unix - 86_400),
                revocation_reason: Some(CrlReason::KeyCompromise),
            }),
            OcspStatus::Unknown => CertStatus::Unknown(der::asn1::Null),
        };
        let responses = request
            .tbs_request
            .request_list
            .iter()
            .map(|single| {
                let mut cert_id = single.req_cert.clone();
                if let Some(serial) = opts.serial_override {
                    cert_id.serial_number =
                        Int::new(&serial_bytes(serial)).expect("serial encodes");
                }
                SingleResponse {
                    cert_id,
                    cert_status,
                    this_update: generalized(opts.this_update_unix),
                    next_update: opts.next_update_unix.map(generalized),
                    single_extensions: None,
                }
            })
            .collect();
        let asked = request
            .tbs_request
            .request_extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == ID_PKIX_OCSP_NONCE)
            .cloned();
        let nonce = match opts.nonce {
            NonceReply::Echo => asked,
            NonceReply::Omit => None,
            NonceReply::Other => Some(Extension {
                extn_id: ID_PKIX_OCSP_NONCE,
                critical: false,
                extn_value: OctetString::new(
                    OctetString::new(vec![0x5a; 16])
                        .and_then(|o| o.to_der())
                        .expect("nonce encodes"),
                )
                .expect("nonce value"),
            }),
        };

        let (key, responder_id, certs) = self.ocsp_signer(opts.signer);
        let data = ResponseData {
            version: Version::V1,
            responder_id,
            produced_at: generalized(opts.this_update_unix),
            responses,
            response_extensions: nonce.map(|n| vec![n]),
        };
        let tbs = data.to_der().expect("ResponseData encodes");
        let signature = key
            .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&tbs))
            .expect("RSA signing");
        let basic = BasicOcspResponse {
            tbs_response_data: Any::from_der(&tbs).expect("ResponseData is DER"),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: SHA256_WITH_RSA,
                parameters: Some(Any::null()),
            },
            signature: BitString::from_bytes(&signature).expect("signature bits"),
            certs,
        };
        OcspResponseDer {
            response_status: ResponseStatus::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: ID_PKIX_OCSP_BASIC,
                response: OctetString::new(basic.to_der().expect("BasicOCSPResponse encodes"))
                    .expect("response octets"),
            }),
        }
        .to_der()
        .expect("OCSPResponse encodes")
    }

    /// An OCSP response with responseStatus `tryLater` and no response bytes: a responder
    /// that is up but cannot answer.
    ///
    /// # Panics
    /// If the response cannot be encoded, which would be a bug here.
    #[must_use]
    pub fn ocsp_try_later() -> Vec<u8> {
        OcspResponseDer {
            response_status: ResponseStatus::TryLater,
            response_bytes: None,
        }
        .to_der()
        .expect("OCSPResponse encodes")
    }

    /// The key that signs, the ResponderID naming it, and the certificates to include.
    fn ocsp_signer(
        &self,
        signer: OcspSigner,
    ) -> (&'static PrivateKey, ResponderId, Option<Vec<Any>>) {
        let moica = || {
            let ca = x509_cert::Certificate::from_der(&self.ca_g3_der).expect("CA decodes");
            ResponderId::ByName(ca.tbs_certificate().subject().clone())
        };
        match signer {
            OcspSigner::Ca(generation) => {
                let key = match generation {
                    Generation::G2 => &keys().g2,
                    Generation::G3 => &keys().g3,
                };
                (key, moica(), None)
            }
            OcspSigner::Unrelated => (&keys().rogue, moica(), None),
            OcspSigner::Responder {
                issuer,
                ocsp_signing,
            } => {
                let der = self.responder_certificate(issuer, ocsp_signing);
                let (_, cert) = X509Certificate::from_der(&der).expect("responder parses");
                let key_hash = Sha1::digest(&cert.public_key().subject_public_key.data).to_vec();
                let id = ResponderId::ByKey(OctetString::new(key_hash).expect("key hash"));
                let certs = vec![Any::from_der(&der).expect("certificate is DER")];
                (responder_key(), id, Some(certs))
            }
        }
    }

    /// A delegated OCSP responder certificate issued by `issuer`, valid as long as the CAs.
    fn responder_certificate(&self, issuer: Generation, ocsp_signing: bool) -> Vec<u8> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, printable("TW"));
        dn.push(DnType::OrganizationName, "行政院");
        dn.push(DnType::CommonName, "MOICA OCSP Responder");
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.serial_number = Some(SerialNumber::from(0x0c5bu64));
        params.not_before = time(CA_NOT_BEFORE_UNIX);
        params.not_after = time(CA_NOT_AFTER_UNIX);
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if ocsp_signing {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        }
        params
            .signed_by(&key_pair(responder_key()), &self.ca(issuer).issuer())
            .expect("responder certificate")
            .der()
            .to_vec()
    }
}

/// Who signs a test CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrlSigner {
    /// The root: an authority revocation list, about the issuing CAs.
    Root,
    /// An issuing CA generation: about card certificates.
    Ca(Generation),
}

/// An extension to put in a test CRL or CRL entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestExtension {
    /// Dotted OID.
    pub oid: String,
    pub critical: bool,
    /// The DER of the extension's value (what goes inside extnValue).
    pub value: Vec<u8>,
}

impl TestExtension {
    /// An issuingDistributionPoint (critical) with these flags and no distribution point.
    ///
    /// # Panics
    /// If it cannot be encoded, which would be a bug here.
    #[must_use]
    pub fn issuing_distribution_point(
        only_user_certs: bool,
        only_ca_certs: bool,
        indirect: bool,
    ) -> Self {
        let idp = x509_cert::ext::pkix::crl::dp::IssuingDistributionPoint {
            distribution_point: None,
            only_contains_user_certs: only_user_certs,
            only_contains_ca_certs: only_ca_certs,
            only_some_reasons: None,
            indirect_crl: indirect,
            only_contains_attribute_certs: false,
        };
        Self {
            oid: "2.5.29.28".to_owned(),
            critical: true,
            value: idp.to_der().expect("IDP encodes"),
        }
    }

    /// A reasonCode entry extension (non-critical) with this CRLReason value.
    #[must_use]
    pub fn reason_code(reason: u8) -> Self {
        Self {
            oid: "2.5.29.21".to_owned(),
            critical: false,
            value: vec![0x0a, 0x01, reason],
        }
    }

    /// An extension nobody understands, with a NULL value.
    #[must_use]
    pub fn unknown(critical: bool) -> Self {
        Self {
            oid: "1.3.6.1.4.1.55555.7.7".to_owned(),
            critical,
            value: vec![0x05, 0x00],
        }
    }

    fn der(&self) -> Vec<u8> {
        Extension {
            extn_id: ObjectIdentifier::new(&self.oid).expect("extension OID"),
            critical: self.critical,
            extn_value: OctetString::new(self.value.clone()).expect("extension value"),
        }
        .to_der()
        .expect("extension encodes")
    }
}

/// How [`TestPki::crl_with`] makes a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlOptions {
    /// thisUpdate, Unix seconds.
    pub this_update_unix: i64,
    /// nextUpdate, Unix seconds; `None` omits it.
    pub next_update_unix: Option<i64>,
    /// cRLNumber; `None` omits it.
    pub crl_number: Option<u64>,
    /// The serials listed.
    pub revoked_serials: Vec<u64>,
    /// Extra zero octets in front of each listed serial (a non-minimal encoding).
    pub serial_padding: usize,
    /// Makes it a delta CRL (critical deltaCRLIndicator) over this base cRLNumber.
    pub delta_base: Option<u64>,
    /// CRL extensions added after the authority key identifier and cRLNumber.
    pub extensions: Vec<TestExtension>,
    /// Extensions added to every entry.
    pub entry_extensions: Vec<TestExtension>,
}

impl Default for CrlOptions {
    /// An empty complete CRL, number 1, from [`CRL_THIS_UPDATE_UNIX`] to
    /// [`CRL_NEXT_UPDATE_UNIX`].
    fn default() -> Self {
        Self {
            this_update_unix: CRL_THIS_UPDATE_UNIX,
            next_update_unix: Some(CRL_NEXT_UPDATE_UNIX),
            crl_number: Some(1),
            revoked_serials: Vec::new(),
            serial_padding: 0,
            delta_base: None,
            extensions: Vec::new(),
            entry_extensions: Vec::new(),
        }
    }
}

/// A DER TLV with a one-octet tag.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(u8::try_from(len).expect("short length"));
    } else {
        let octets = len.to_be_bytes();
        let first = octets
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(octets.len() - 1);
        out.push(0x80 | u8::try_from(octets.len() - first).expect("length of length"));
        out.extend_from_slice(&octets[first..]);
    }
    out.extend_from_slice(content);
    out
}

/// An X.509 Time (UTCTime up to 2049, else GeneralizedTime), DER.
fn der_time(unix: i64) -> Vec<u8> {
    let secs = u64::try_from(unix).expect("time after 1970");
    let date = der::DateTime::from_unix_duration(Duration::from_secs(secs)).expect("time fits");
    x509_cert::time::Time::from(date)
        .to_der()
        .expect("time encodes")
}

/// Who signs a test OCSP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspSigner {
    /// A CA generation's own key (the issuing CA's, for a leaf of that generation).
    Ca(Generation),
    /// A delegated responder whose certificate `issuer` issued, with or without the
    /// id-kp-OCSPSigning extended key usage; the certificate travels in the response.
    Responder {
        issuer: Generation,
        ocsp_signing: bool,
    },
    /// The rogue CA's key, naming itself as the MOICA CA: a key nobody authorised.
    Unrelated,
}

/// What a test OCSP response does with the request's nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceReply {
    /// Echoes it, as RFC 8954 asks.
    Echo,
    /// Leaves it out, as responders serving pre-signed answers do.
    Omit,
    /// Returns a different one (a replayed answer).
    Other,
}

/// How [`TestPki::ocsp_response`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OcspResponseOptions {
    pub status: OcspStatus,
    pub signer: OcspSigner,
    /// thisUpdate (and producedAt), Unix seconds.
    pub this_update_unix: i64,
    /// nextUpdate, Unix seconds; `None` omits it.
    pub next_update_unix: Option<i64>,
    pub nonce: NonceReply,
    /// Answers about this serial instead of the one asked about (a confused responder).
    pub serial_override: Option<u64>,
}

impl OcspResponseOptions {
    /// An answer with `status`, signed by `signer`, echoing the nonce, about the certificate
    /// asked about.
    #[must_use]
    pub fn new(
        status: OcspStatus,
        signer: OcspSigner,
        this_update_unix: i64,
        next_update_unix: Option<i64>,
    ) -> Self {
        Self {
            status,
            signer,
            this_update_unix,
            next_update_unix,
            nonce: NonceReply::Echo,
            serial_override: None,
        }
    }
}

/// The delegated OCSP responder's key: generated on first use only, since most tests never
/// need it and RSA key generation is slow.
fn responder_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::new(&mut rand::rng(), 2048).expect("RSA key generation"))
}

/// The DER content octets of the INTEGER encoding `serial`, i.e. what
/// [`crate::RevocationLists::is_revoked`] takes.
#[must_use]
pub fn serial_bytes(serial: u64) -> Vec<u8> {
    let bytes = serial.to_be_bytes();
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bytes.len() - 1);
    let mut out = Vec::with_capacity(9);
    if bytes[first] & 0x80 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&bytes[first..]);
    out
}

/// An Authority Information Access extension naming `url` as the OCSP responder.
fn authority_info_access(url: &str) -> Vec<u8> {
    AuthorityInfoAccessSyntax(vec![AccessDescription {
        access_method: ID_AD_OCSP,
        access_location: GeneralName::UniformResourceIdentifier(
            Ia5String::new(url).expect("ASCII OCSP URL"),
        ),
    }])
    .to_der()
    .expect("authority information access encodes")
}

/// MOICA's encoding: SEQUENCE OF Attribute { 2.16.886.1.100.2.51, SET { PrintableString } }.
fn subject_directory_attributes(id_last4: &str) -> Vec<u8> {
    let value = Any::encode_from(&PrintableString::new(id_last4).expect("printable ID digits"))
        .expect("attribute value encodes");
    let attribute = Attribute {
        oid: ObjectIdentifier::new(OID_ID_LAST4).expect("ID attribute OID"),
        values: SetOfVec::try_from(vec![value]).expect("one value"),
    };
    SubjectDirectoryAttributes(vec![attribute])
        .to_der()
        .expect("subject directory attributes encode")
}

/// A card certificate and its private key, playing the card and the component.
pub struct TestLeaf {
    /// The certificate, DER.
    pub certificate_der: Vec<u8>,
    key: &'static PrivateKey,
}

impl std::fmt::Debug for TestLeaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestLeaf")
            .field("certificate_der_len", &self.certificate_der.len())
            .finish_non_exhaustive()
    }
}

impl TestLeaf {
    /// CMS SignedData as the component makes it: attached content `tbs`, SHA-256, signed
    /// attributes (content-type, message-digest, signing-time), RSA PKCS#1 v1.5, and only
    /// this certificate embedded.
    ///
    /// # Panics
    /// If encoding or signing fails, which would be a bug here.
    #[must_use]
    pub fn sign_pkcs7(&self, tbs: &[u8]) -> Vec<u8> {
        let certificate =
            x509_cert::Certificate::from_der(&self.certificate_der).expect("leaf decodes");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let attribute = |oid: ObjectIdentifier, value: Any| Attribute {
            oid,
            values: SetOfVec::try_from(vec![value]).expect("one value"),
        };
        let signed_attrs = SetOfVec::try_from(vec![
            attribute(
                ID_CONTENT_TYPE,
                Any::encode_from(&ID_DATA).expect("OID encodes"),
            ),
            attribute(
                ID_SIGNING_TIME,
                Any::encode_from(&UtcTime::from_unix_duration(now).expect("time fits UTCTime"))
                    .expect("time encodes"),
            ),
            attribute(
                ID_MESSAGE_DIGEST,
                Any::encode_from(&OctetString::new(Sha256::digest(tbs).to_vec()).expect("digest"))
                    .expect("digest encodes"),
            ),
        ])
        .expect("distinct attributes");
        let to_sign = signed_attrs.to_der().expect("attributes encode");
        let signature = self.sign_raw(&to_sign);

        let signer = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: certificate.tbs_certificate().issuer().clone(),
                serial_number: certificate.tbs_certificate().serial_number().clone(),
            }),
            digest_alg: AlgorithmIdentifierOwned {
                oid: ID_SHA256,
                parameters: None,
            },
            signed_attrs: Some(signed_attrs),
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: RSA_ENCRYPTION,
                parameters: Some(Any::null()),
            },
            signature: OctetString::new(signature).expect("signature"),
            unsigned_attrs: None,
        };
        let signed_data = SignedData {
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![AlgorithmIdentifierOwned {
                oid: ID_SHA256,
                parameters: None,
            }])
            .expect("one digest algorithm"),
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: ID_DATA,
                econtent: Some(
                    Any::encode_from(&OctetString::new(tbs).expect("content")).expect("content"),
                ),
            },
            certificates: Some(CertificateSet(
                SetOfVec::try_from(vec![CertificateChoices::Certificate(certificate)])
                    .expect("one certificate"),
            )),
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).expect("one signer")),
        };
        ContentInfo {
            content_type: ID_SIGNED_DATA,
            content: Any::encode_from(&signed_data).expect("SignedData encodes"),
        }
        .to_der()
        .expect("ContentInfo encodes")
    }

    /// A bare RSA PKCS#1 v1.5 SHA-256 signature over `tbs` (`signatureType` PKCS1).
    ///
    /// # Panics
    /// If signing fails, which would be a bug here.
    #[must_use]
    pub fn sign_pkcs1(&self, tbs: &[u8]) -> Vec<u8> {
        self.sign_raw(tbs)
    }

    fn sign_raw(&self, data: &[u8]) -> Vec<u8> {
        self.key
            .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(data))
            .expect("RSA signing")
    }

    /// The card's private key as PKCS#8 DER, so a test program playing the component can sign.
    ///
    /// # Panics
    /// If encoding fails, which would be a bug here.
    #[must_use]
    pub fn private_key_pkcs8_der(&self) -> Vec<u8> {
        self.key
            .to_pkcs8_der()
            .expect("PKCS#8 encoding")
            .as_bytes()
            .to_vec()
    }
}
