//! End-to-end tests of challenge verification and CRL handling against a generated
//! MOICA-shaped PKI: every success path and every rejection the gateway distinguishes.

use std::sync::LazyLock;
use std::time::Instant;

use menshen_pki::testpki::{
    CA_G2_SERIAL, CA_G3_SERIAL, CRL_NEXT_UPDATE_UNIX, CRL_THIS_UPDATE_UNIX, CrlOptions, CrlSigner,
    Generation, LeafOptions, MOICA_ISSUER, TEST_POLICY_OID, TestExtension, TestLeaf, TestPki,
    serial_bytes,
};
use menshen_pki::{
    CLOCK_SKEW_SECS, CrlError, CrlScope, Freshness, MAX_CRL_BYTES, Policy, Rejection,
    RevocationLists, RevocationStatus, SignedChallenge, TrustError, TrustStore,
    VerifiedCertificate, verify,
};

/// One PKI per test binary: RSA key generation dominates the run time otherwise.
static PKI: LazyLock<TestPki> = LazyLock::new(TestPki::generate);
static TRUST: LazyLock<TrustStore> = LazyLock::new(|| PKI.trust_store());

const CHALLENGE: &[u8] = b"menshen-challenge:3f1c9a7e5b2d4c6a8e0f1a2b3c4d5e6f";
const OTHER_CHALLENGE: &[u8] = b"menshen-challenge:00000000000000000000000000000000";
/// 2026-03-01, inside the default leaf's validity and the default CRLs' window.
const NOW: i64 = 1_772_323_200;
/// The gateway's default `certificate.crl_grace`.
const GRACE: i64 = 12 * 3600;
const AT: Freshness = Freshness {
    now_unix: NOW,
    grace_secs: GRACE,
};
const ROOT_NAME: &str = "C=TW, O=行政院, OU=政府憑證總管理中心";

fn policy() -> Policy {
    Policy {
        now_unix: NOW,
        required_policy_oids: vec![TEST_POLICY_OID.to_owned()],
        crl_grace_secs: GRACE,
    }
}

/// A complete CRL from a CA generation, current at [`NOW`], listing `serials`.
fn ca_crl(generation: Generation, serials: impl IntoIterator<Item = u64>) -> Vec<u8> {
    PKI.crl_with(
        CrlSigner::Ca(generation),
        &CrlOptions {
            revoked_serials: serials.into_iter().collect(),
            ..CrlOptions::default()
        },
    )
}

/// The root's CRL (ARL), current at [`NOW`], listing `serials`.
fn root_crl(serials: impl IntoIterator<Item = u64>) -> Vec<u8> {
    PKI.crl_with(
        CrlSigner::Root,
        &CrlOptions {
            revoked_serials: serials.into_iter().collect(),
            ..CrlOptions::default()
        },
    )
}

/// Lists with empty current CRLs from the root and both generations: every path covered.
fn full_lists() -> RevocationLists {
    let mut lists = RevocationLists::new();
    for crl in [
        root_crl([]),
        ca_crl(Generation::G2, []),
        ca_crl(Generation::G3, []),
    ] {
        lists.load(&crl, &TRUST, AT).unwrap();
    }
    lists
}

fn leaf(opts: LeafOptions) -> TestLeaf {
    PKI.leaf(opts)
}

fn pkcs7(
    leaf: &TestLeaf,
    signed_over: &[u8],
    revoked: &RevocationLists,
    policy: &Policy,
) -> Result<VerifiedCertificate, Rejection> {
    let cms = leaf.sign_pkcs7(signed_over);
    verify(
        &SignedChallenge::Pkcs7 { cms_der: &cms },
        CHALLENGE,
        &TRUST,
        revoked,
        policy,
    )
}

fn pkcs1(
    leaf: &TestLeaf,
    signed_over: &[u8],
    revoked: &RevocationLists,
    policy: &Policy,
) -> Result<VerifiedCertificate, Rejection> {
    let signature = leaf.sign_pkcs1(signed_over);
    verify(
        &SignedChallenge::Pkcs1 {
            signature: &signature,
            certificate_der: &leaf.certificate_der,
        },
        CHALLENGE,
        &TRUST,
        revoked,
        policy,
    )
}

/// Both signature types, expecting the same outcome.
fn both(opts: LeafOptions, policy: &Policy) -> [Result<VerifiedCertificate, Rejection>; 2] {
    let leaf = leaf(opts);
    let none = RevocationLists::new();
    [
        pkcs7(&leaf, CHALLENGE, &none, policy),
        pkcs1(&leaf, CHALLENGE, &none, policy),
    ]
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn both_signature_types_verify_under_both_generations() {
    for generation in [Generation::G2, Generation::G3] {
        let opts = LeafOptions {
            generation,
            serial: 0x00ab_cdef,
            ..LeafOptions::default()
        };
        for result in both(opts.clone(), &policy()) {
            let verified = result.unwrap_or_else(|r| panic!("{generation:?}: {r}"));
            assert_eq!(verified.issuer, MOICA_ISSUER);
            assert_eq!(verified.serial_hex, "abcdef");
            assert_eq!(verified.subject_cn, "王小明");
            assert_eq!(verified.id_last4.as_deref(), Some("6789"));
            assert_eq!(verified.not_after_unix, opts.not_after_unix);
            assert_eq!(verified.issuer_key_id_hex, hex(&PKI.key_id(generation)));
            assert_eq!(verified.spki_sha256_hex.len(), 64);
        }
    }
    assert_ne!(PKI.key_id(Generation::G2), PKI.key_id(Generation::G3));
}

#[test]
fn serial_with_high_bit_is_reported_without_sign_octet() {
    let opts = LeafOptions {
        serial: 0x8000_0000_0000_0001,
        ..LeafOptions::default()
    };
    for result in both(opts, &policy()) {
        assert_eq!(
            result.map(|v| v.serial_hex),
            Ok("8000000000000001".to_owned())
        );
    }
}

#[test]
fn leaf_without_id_attribute_verifies_with_none() {
    let opts = LeafOptions {
        id_last4: String::new(),
        ..LeafOptions::default()
    };
    for result in both(opts, &policy()) {
        assert_eq!(result.map(|v| v.id_last4), Ok(None));
    }
}

#[test]
fn same_name_untrusted_ca_is_rejected() {
    for generation in [Generation::G2, Generation::G3] {
        let opts = LeafOptions {
            generation,
            issuer_untrusted: true,
            ..LeafOptions::default()
        };
        assert_eq!(
            both(opts, &policy()),
            [
                Err(Rejection::UntrustedIssuer),
                Err(Rejection::UntrustedIssuer)
            ]
        );
    }
}

#[test]
fn ca_missing_from_store_is_untrusted() {
    // Only G2 trusted: a G3 card must fail even though the names are identical.
    let mut store = TrustStore::new();
    store.add_root(&PKI.root_der).unwrap();
    store.add_intermediate(&PKI.ca_g2_der).unwrap();
    let leaf = leaf(LeafOptions::default());
    let cms = leaf.sign_pkcs7(CHALLENGE);
    let result = verify(
        &SignedChallenge::Pkcs7 { cms_der: &cms },
        CHALLENGE,
        &store,
        &RevocationLists::new(),
        &policy(),
    );
    assert_eq!(result, Err(Rejection::UntrustedIssuer));
}

#[test]
fn intermediate_without_root_is_untrusted() {
    let mut store = TrustStore::new();
    store.add_intermediate(&PKI.ca_g3_der).unwrap();
    let leaf = leaf(LeafOptions::default());
    let signature = leaf.sign_pkcs1(CHALLENGE);
    let signed = SignedChallenge::Pkcs1 {
        signature: &signature,
        certificate_der: &leaf.certificate_der,
    };
    assert_eq!(
        verify(
            &signed,
            CHALLENGE,
            &store,
            &RevocationLists::new(),
            &policy()
        ),
        Err(Rejection::UntrustedIssuer)
    );
}

#[test]
fn expired_and_not_yet_valid() {
    let expired = LeafOptions {
        not_before_unix: NOW - 400 * 86_400,
        not_after_unix: NOW - 1,
        ..LeafOptions::default()
    };
    assert_eq!(
        both(expired, &policy()),
        [Err(Rejection::Expired), Err(Rejection::Expired)]
    );
    let future = LeafOptions {
        not_before_unix: NOW + 1,
        not_after_unix: NOW + 400 * 86_400,
        ..LeafOptions::default()
    };
    assert_eq!(
        both(future, &policy()),
        [Err(Rejection::NotYetValid), Err(Rejection::NotYetValid)]
    );
}

#[test]
fn expired_issuing_ca() {
    // The leaf outlives its CA (which ends in 2090); check in 2095.
    let opts = LeafOptions {
        not_after_unix: 4_000_000_000,
        ..LeafOptions::default()
    };
    let late = Policy {
        now_unix: 3_944_678_400,
        ..policy()
    };
    assert_eq!(
        both(opts, &late),
        [Err(Rejection::IssuerExpired), Err(Rejection::IssuerExpired)]
    );
}

#[test]
fn encryption_certificate_is_wrong_key_usage() {
    let opts = LeafOptions {
        digital_signature: false,
        ..LeafOptions::default()
    };
    assert_eq!(
        both(opts, &policy()),
        [Err(Rejection::WrongKeyUsage), Err(Rejection::WrongKeyUsage)]
    );
}

#[test]
fn required_policy_missing() {
    let opts = LeafOptions {
        policy_oids: vec!["1.3.6.1.4.1.55555.9.9".to_owned()],
        ..LeafOptions::default()
    };
    assert_eq!(
        both(opts.clone(), &policy()),
        [Err(Rejection::PolicyMissing), Err(Rejection::PolicyMissing)]
    );
    let no_policies = LeafOptions {
        policy_oids: Vec::new(),
        ..LeafOptions::default()
    };
    assert_eq!(
        both(no_policies.clone(), &policy()),
        [Err(Rejection::PolicyMissing), Err(Rejection::PolicyMissing)]
    );
    // Without a requirement both pass.
    let lax = Policy {
        required_policy_oids: Vec::new(),
        ..policy()
    };
    for opts in [opts, no_policies] {
        assert!(both(opts, &lax).iter().all(Result::is_ok));
    }
    // Every listed OID must be present.
    let two = Policy {
        required_policy_oids: vec![TEST_POLICY_OID.to_owned(), "1.3.6.1.4.1.55555.2".to_owned()],
        ..policy()
    };
    assert_eq!(
        both(LeafOptions::default(), &two),
        [Err(Rejection::PolicyMissing), Err(Rejection::PolicyMissing)]
    );
}

#[test]
fn revoked_by_crl_of_the_right_generation_only() {
    let serial = 0x0102_0304;
    let mut lists = RevocationLists::new();
    let crl = ca_crl(Generation::G3, [7, serial, 9]);
    let infos = lists.load(&crl, &TRUST, AT).unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].entries, 3);
    assert_eq!(infos[0].issuer, MOICA_ISSUER);
    assert_eq!(infos[0].issuer_key_id_hex, hex(&PKI.key_id(Generation::G3)));
    assert_eq!(infos[0].this_update_unix, CRL_THIS_UPDATE_UNIX);
    assert_eq!(infos[0].next_update_unix, Some(CRL_NEXT_UPDATE_UNIX));
    assert_eq!(infos[0].crl_number_hex.as_deref(), Some("01"));
    assert_eq!(infos[0].scope, CrlScope::All);

    let g3 = leaf(LeafOptions {
        generation: Generation::G3,
        serial,
        ..LeafOptions::default()
    });
    assert_eq!(
        pkcs7(&g3, CHALLENGE, &lists, &policy()),
        Err(Rejection::Revoked)
    );
    assert_eq!(
        pkcs1(&g3, CHALLENGE, &lists, &policy()),
        Err(Rejection::Revoked)
    );
    // Same serial under G2 is a different certificate: the G3 CRL says nothing about it.
    let g2 = leaf(LeafOptions {
        generation: Generation::G2,
        serial,
        ..LeafOptions::default()
    });
    assert!(pkcs7(&g2, CHALLENGE, &lists, &policy()).is_ok());
    let other = leaf(LeafOptions {
        generation: Generation::G3,
        serial: serial + 1,
        ..LeafOptions::default()
    });
    assert!(pkcs1(&other, CHALLENGE, &lists, &policy()).is_ok());

    assert!(lists.covers(&PKI.key_id(Generation::G3)));
    assert!(!lists.covers(&PKI.key_id(Generation::G2)));
    assert_eq!(lists.stale_at(CRL_NEXT_UPDATE_UNIX).count(), 0);
    assert_eq!(lists.stale_at(CRL_NEXT_UPDATE_UNIX + 1).count(), 1);
}

#[test]
fn crl_pem_and_tampering() {
    let der = ca_crl(Generation::G2, [42]);
    let pem = to_pem("X509 CRL", &der);
    let mut lists = RevocationLists::new();
    assert_eq!(
        lists.load(pem.as_bytes(), &TRUST, AT).map(|i| i.len()),
        Ok(1)
    );
    assert!(lists.is_revoked(&PKI.key_id(Generation::G2), &serial_bytes(42)));

    let mut tampered = der.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    assert!(matches!(
        RevocationLists::new().load_der(&tampered, &TRUST, AT),
        Err(CrlError::BadSignature(_))
    ));
    assert!(matches!(
        RevocationLists::new().load_der(&der, &TrustStore::new(), AT),
        Err(CrlError::UnknownIssuer(_))
    ));
    assert!(matches!(
        RevocationLists::new().load_der(b"not a crl", &TRUST, AT),
        Err(CrlError::Malformed(_))
    ));
}

#[test]
fn large_crl_loads_fast_and_answers_lookups() {
    const ENTRIES: u64 = 400_000;
    // Spread-out 63-bit serials with bit 62 set, so clearing bit 62 gives an absent one.
    let serial = |i: u64| 0x4000_0000_0000_0000 | (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 2);
    let der = ca_crl(Generation::G3, (0..ENTRIES).map(serial));
    let started = Instant::now();
    let mut lists = RevocationLists::new();
    let info = lists.load_der(&der, &TRUST, AT).unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "loaded {ENTRIES}-entry CRL ({} bytes) in {elapsed:?}",
        der.len()
    );
    assert_eq!(info.entries, 400_000);
    assert_eq!(lists.len(), 400_000);
    let g3 = PKI.key_id(Generation::G3);
    let g2 = PKI.key_id(Generation::G2);
    for i in (0..ENTRIES).step_by(997) {
        assert!(lists.is_revoked(&g3, &serial_bytes(serial(i))));
        assert!(!lists.is_revoked(&g2, &serial_bytes(serial(i))));
        let absent = serial(i) & !0x4000_0000_0000_0000;
        assert!(!lists.is_revoked(&g3, &serial_bytes(absent)));
    }
    // Generous bound for unoptimised test builds on a small machine.
    assert!(elapsed.as_secs() < 20, "{elapsed:?}");
}

#[test]
fn pkcs7_over_another_challenge_is_a_mismatch() {
    let leaf = leaf(LeafOptions::default());
    assert_eq!(
        pkcs7(&leaf, OTHER_CHALLENGE, &RevocationLists::new(), &policy()),
        Err(Rejection::ChallengeMismatch)
    );
}

#[test]
fn pkcs1_over_another_challenge_is_a_bad_signature() {
    let leaf = leaf(LeafOptions::default());
    assert_eq!(
        pkcs1(&leaf, OTHER_CHALLENGE, &RevocationLists::new(), &policy()),
        Err(Rejection::BadSignature)
    );
}

fn check_cms(cms: &[u8]) -> Result<VerifiedCertificate, Rejection> {
    verify(
        &SignedChallenge::Pkcs7 { cms_der: cms },
        CHALLENGE,
        &TRUST,
        &RevocationLists::new(),
        &policy(),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[test]
fn tampered_cms() {
    let leaf = leaf(LeafOptions::default());
    let cms = leaf.sign_pkcs7(CHALLENGE);
    assert!(check_cms(&cms).is_ok());

    // The signature is the last element of the structure.
    let mut bad_signature = cms.clone();
    let last = bad_signature.len() - 1;
    bad_signature[last] ^= 0x01;
    assert_eq!(check_cms(&bad_signature), Err(Rejection::BadSignature));

    let mut bad_content = cms.clone();
    let at = find(&bad_content, CHALLENGE);
    bad_content[at + 3] ^= 0x01;
    assert_eq!(check_cms(&bad_content), Err(Rejection::ChallengeMismatch));

    // Content swapped for ours after signing something else of the same length: caught by
    // the message-digest attribute.
    let mut swapped = leaf.sign_pkcs7(OTHER_CHALLENGE);
    let at = find(&swapped, OTHER_CHALLENGE);
    swapped[at..at + CHALLENGE.len()].copy_from_slice(CHALLENGE);
    assert_eq!(check_cms(&swapped), Err(Rejection::ChallengeMismatch));

    // A signed attribute changed (a digit of the signing time): the signature over the
    // attributes no longer verifies.
    let mut bad_attrs = cms.clone();
    let at = find(
        &bad_attrs,
        &[
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x05,
        ],
    );
    // The UTCTime follows the OID and the SET header: flip a digit's low bit.
    bad_attrs[at + 11 + 2 + 2 + 3] ^= 0x01;
    assert_eq!(check_cms(&bad_attrs), Err(Rejection::BadSignature));
}

#[test]
fn damaged_cms_never_panics() {
    let leaf = leaf(LeafOptions::default());
    let cms = leaf.sign_pkcs7(CHALLENGE);
    for len in (0..cms.len()).step_by(37) {
        assert!(
            matches!(check_cms(&cms[..len]), Err(Rejection::Malformed(_))),
            "prefix {len}"
        );
    }
    for at in (0..cms.len()).step_by(53) {
        let mut damaged = cms.clone();
        damaged[at] ^= 0xa5;
        assert!(check_cms(&damaged).is_err(), "byte {at}");
    }
    let mut trailing = cms.clone();
    trailing.push(0);
    assert!(matches!(check_cms(&trailing), Err(Rejection::Malformed(_))));
}

#[test]
fn garbage_is_malformed() {
    let leaf = leaf(LeafOptions::default());
    let signature = leaf.sign_pkcs1(CHALLENGE);
    for garbage in [
        &b""[..],
        b"\x00\x01\x02",
        b"MIIB...base64 not decoded",
        &[0x30, 0x82, 0xff, 0xff, 0x01],
    ] {
        assert!(matches!(check_cms(garbage), Err(Rejection::Malformed(_))));
        let signed = SignedChallenge::Pkcs1 {
            signature: &signature,
            certificate_der: garbage,
        };
        assert!(matches!(
            verify(
                &signed,
                CHALLENGE,
                &TRUST,
                &RevocationLists::new(),
                &policy()
            ),
            Err(Rejection::Malformed(_))
        ));
    }
    // A certificate is not a CMS message.
    assert!(matches!(
        check_cms(&leaf.certificate_der),
        Err(Rejection::Malformed(_))
    ));
    // Garbage signature with a good certificate is a bad signature, not a panic.
    let signed = SignedChallenge::Pkcs1 {
        signature: b"short",
        certificate_der: &leaf.certificate_der,
    };
    assert_eq!(
        verify(
            &signed,
            CHALLENGE,
            &TRUST,
            &RevocationLists::new(),
            &policy()
        ),
        Err(Rejection::BadSignature)
    );
}

#[test]
fn trust_store_inputs() {
    let mut store = TrustStore::new();
    let pem = format!(
        "{}{}",
        to_pem("CERTIFICATE", &PKI.ca_g2_der),
        to_pem("CERTIFICATE", &PKI.ca_g3_der)
    );
    assert_eq!(store.add_intermediate(pem.as_bytes()), Ok(2));
    assert_eq!(
        store.add_root(to_pem("CERTIFICATE", &PKI.root_der).as_bytes()),
        Ok(1)
    );
    assert_eq!(store.len(), 3);
    let leaf = leaf(LeafOptions::default());
    assert_eq!(
        store.add_intermediate(&leaf.certificate_der),
        Err(TrustError::NotCa)
    );
    assert!(matches!(
        store.add_root(b"junk"),
        Err(TrustError::Malformed(_))
    ));
    assert_eq!(
        store.add_root(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
        Err(TrustError::Empty)
    );
    let cms = leaf.sign_pkcs7(CHALLENGE);
    let result = verify(
        &SignedChallenge::Pkcs7 { cms_der: &cms },
        CHALLENGE,
        &store,
        &RevocationLists::new(),
        &policy(),
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn exported_private_key_is_pkcs8() {
    let der = leaf(LeafOptions::default()).private_key_pkcs8_der();
    // SEQUENCE { INTEGER 0, AlgorithmIdentifier { rsaEncryption ...
    assert_eq!(der[0], 0x30);
    assert!(
        der.windows(9)
            .any(|w| w == [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01])
    );
}

fn to_pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

// ---- CRL acceptance -------------------------------------------------------------------

fn load(crl: &[u8]) -> Result<menshen_pki::CrlInfo, CrlError> {
    RevocationLists::new().load_der(crl, &TRUST, AT)
}

fn g3_crl(opts: CrlOptions) -> Vec<u8> {
    PKI.crl_with(CrlSigner::Ca(Generation::G3), &opts)
}

#[test]
fn the_signature_is_checked_before_the_entries_are_read() {
    let der = ca_crl(Generation::G3, [0x0102_0304]);
    // Turn the entry's serial INTEGER into an OCTET STRING: the entries no longer parse,
    // and the signature no longer verifies. Reading entries first would say Malformed.
    let at = find(&der, &[0x02, 0x04, 0x01, 0x02, 0x03, 0x04]);
    let mut broken = der.clone();
    broken[at] = 0x04;
    assert!(matches!(load(&broken), Err(CrlError::BadSignature(_))));
    assert!(load(&der).is_ok());
}

#[test]
fn delta_crls_are_refused() {
    let delta = g3_crl(CrlOptions {
        crl_number: Some(8),
        delta_base: Some(7),
        revoked_serials: vec![5],
        ..CrlOptions::default()
    });
    assert_eq!(load(&delta), Err(CrlError::Delta(MOICA_ISSUER.to_owned())));
}

#[test]
fn partitioned_and_indirect_crls_are_refused() {
    let indirect = g3_crl(CrlOptions {
        extensions: vec![TestExtension::issuing_distribution_point(
            false, false, true,
        )],
        ..CrlOptions::default()
    });
    assert!(matches!(
        load(&indirect),
        Err(CrlError::Partitioned { detail, .. }) if detail == "indirectCRL"
    ));
    // An entry naming another issuer (certificateIssuer) makes it indirect too.
    let other_issuer = g3_crl(CrlOptions {
        revoked_serials: vec![5],
        entry_extensions: vec![TestExtension {
            oid: "2.5.29.29".to_owned(),
            critical: true,
            value: vec![0x30, 0x00],
        }],
        ..CrlOptions::default()
    });
    assert!(matches!(
        load(&other_issuer),
        Err(CrlError::Partitioned { .. })
    ));
}

#[test]
fn a_user_certificates_only_crl_does_not_cover_ca_certificates() {
    let mut lists = RevocationLists::new();
    let user_only = PKI.crl_with(
        CrlSigner::Root,
        &CrlOptions {
            extensions: vec![TestExtension::issuing_distribution_point(
                true, false, false,
            )],
            ..CrlOptions::default()
        },
    );
    let info = lists.load_der(&user_only, &TRUST, AT).unwrap();
    assert_eq!(info.scope, CrlScope::UserCertificates);
    lists
        .load_der(&ca_crl(Generation::G3, []), &TRUST, AT)
        .unwrap();
    let verified = pkcs1(&leaf(LeafOptions::default()), CHALLENGE, &lists, &policy()).unwrap();
    assert!(matches!(
        verified.revocation,
        RevocationStatus::NoCurrentCrl { leaf: false, .. }
    ));
    // A CA-certificates-only list (an ARL) does.
    let ca_only = PKI.crl_with(
        CrlSigner::Root,
        &CrlOptions {
            extensions: vec![TestExtension::issuing_distribution_point(
                false, true, false,
            )],
            ..CrlOptions::default()
        },
    );
    lists.load_der(&ca_only, &TRUST, AT).unwrap();
    let verified = pkcs1(&leaf(LeafOptions::default()), CHALLENGE, &lists, &policy()).unwrap();
    assert_eq!(verified.revocation, RevocationStatus::Good);
}

#[test]
fn unknown_critical_extensions_are_refused_and_unknown_others_ignored() {
    let critical = g3_crl(CrlOptions {
        extensions: vec![TestExtension::unknown(true)],
        ..CrlOptions::default()
    });
    assert!(matches!(
        load(&critical),
        Err(CrlError::UnsupportedCriticalExtension { oid, .. }) if oid == "1.3.6.1.4.1.55555.7.7"
    ));
    let critical_entry = g3_crl(CrlOptions {
        revoked_serials: vec![5],
        entry_extensions: vec![TestExtension::unknown(true)],
        ..CrlOptions::default()
    });
    assert!(matches!(
        load(&critical_entry),
        Err(CrlError::UnsupportedCriticalExtension { .. })
    ));
    let benign = g3_crl(CrlOptions {
        revoked_serials: vec![5],
        extensions: vec![TestExtension::unknown(false)],
        entry_extensions: vec![TestExtension::unknown(false), TestExtension::reason_code(1)],
        ..CrlOptions::default()
    });
    assert_eq!(load(&benign).map(|i| i.entries), Ok(1));
}

#[test]
fn crls_from_the_future_or_past_their_next_update_are_refused() {
    let future = |this_update_unix| {
        g3_crl(CrlOptions {
            this_update_unix,
            next_update_unix: Some(this_update_unix + 86_400),
            ..CrlOptions::default()
        })
    };
    assert!(matches!(
        load(&future(NOW + CLOCK_SKEW_SECS + 1)),
        Err(CrlError::NotYetValid { .. })
    ));
    assert!(load(&future(NOW + CLOCK_SKEW_SECS)).is_ok());

    let ending = |next_update_unix| {
        g3_crl(CrlOptions {
            this_update_unix: next_update_unix - 86_400,
            next_update_unix: Some(next_update_unix),
            ..CrlOptions::default()
        })
    };
    assert!(matches!(
        load(&ending(NOW - GRACE - 1)),
        Err(CrlError::Expired { .. })
    ));
    assert!(load(&ending(NOW - GRACE)).is_ok());

    let open_ended = g3_crl(CrlOptions {
        next_update_unix: None,
        ..CrlOptions::default()
    });
    assert_eq!(
        load(&open_ended),
        Err(CrlError::NoNextUpdate(MOICA_ISSUER.to_owned()))
    );
}

#[test]
fn an_older_crl_never_replaces_a_newer_one() {
    let crl = |this_update_unix, crl_number, serials: Vec<u64>| {
        g3_crl(CrlOptions {
            this_update_unix,
            crl_number: Some(crl_number),
            revoked_serials: serials,
            ..CrlOptions::default()
        })
    };
    let key = PKI.key_id(Generation::G3);
    let mut lists = RevocationLists::new();
    lists
        .load_der(&crl(CRL_THIS_UPDATE_UNIX, 300, vec![1, 2]), &TRUST, AT)
        .unwrap();

    // Earlier thisUpdate, higher number; later thisUpdate, lower number (256 < 300).
    for older in [
        crl(CRL_THIS_UPDATE_UNIX - 1, 301, vec![]),
        crl(CRL_THIS_UPDATE_UNIX + 1, 256, vec![]),
    ] {
        assert!(matches!(
            lists.load_der(&older, &TRUST, AT),
            Err(CrlError::Rollback { .. })
        ));
        // Also into a clone, as the gateway's refresh loads into a copy of the lists in force.
        assert!(matches!(
            lists.clone().load_der(&older, &TRUST, AT),
            Err(CrlError::Rollback { .. })
        ));
    }
    assert!(lists.is_revoked(&key, &serial_bytes(1)));

    // The same list again is fine; a newer one replaces the entries (no union).
    lists
        .load_der(&crl(CRL_THIS_UPDATE_UNIX, 300, vec![1, 2]), &TRUST, AT)
        .unwrap();
    let info = lists
        .load_der(
            &crl(CRL_THIS_UPDATE_UNIX + 3600, 301, vec![2, 3]),
            &TRUST,
            AT,
        )
        .unwrap();
    assert_eq!(info.crl_number_hex.as_deref(), Some("012d"));
    assert!(!lists.is_revoked(&key, &serial_bytes(1)));
    assert!(lists.is_revoked(&key, &serial_bytes(2)));
    assert!(lists.is_revoked(&key, &serial_bytes(3)));
    assert_eq!(lists.len(), 2);
    assert_eq!(lists.crls().len(), 1);
    // G2's lists are independent of G3's.
    lists
        .load_der(&ca_crl(Generation::G2, []), &TRUST, AT)
        .unwrap();
    assert_eq!(lists.crls().len(), 2);
}

#[test]
fn serials_with_leading_zeros_in_the_crl_still_match() {
    let serial = 0x0102_0304;
    let padded = g3_crl(CrlOptions {
        revoked_serials: vec![serial],
        serial_padding: 2,
        ..CrlOptions::default()
    });
    let mut lists = full_lists();
    lists.load_der(&padded, &TRUST, AT).unwrap();
    let card = leaf(LeafOptions {
        serial,
        ..LeafOptions::default()
    });
    assert_eq!(
        pkcs1(&card, CHALLENGE, &lists, &policy()),
        Err(Rejection::Revoked)
    );
    let key = PKI.key_id(Generation::G3);
    assert!(lists.is_revoked(&key, &[0x00, 0x01, 0x02, 0x03, 0x04]));
    assert!(lists.is_revoked(&key, &[0x01, 0x02, 0x03, 0x04]));
}

#[test]
fn the_size_limit_is_64_mib() {
    assert_eq!(MAX_CRL_BYTES, 64 * 1024 * 1024);
    let mut oversized = ca_crl(Generation::G3, []);
    oversized.resize(MAX_CRL_BYTES + 1, 0);
    assert_eq!(
        RevocationLists::new().load(&oversized, &TRUST, AT),
        Err(CrlError::TooLarge(MAX_CRL_BYTES + 1))
    );
}

// ---- holder certificate and path ------------------------------------------------------

#[test]
fn a_ca_certificate_is_not_a_card() {
    let opts = LeafOptions {
        ca: true,
        ..LeafOptions::default()
    };
    assert_eq!(
        both(opts, &policy()),
        [Err(Rejection::NotEndEntity), Err(Rejection::NotEndEntity)]
    );
}

#[test]
fn a_card_with_an_unknown_critical_extension_is_refused() {
    let opts = LeafOptions {
        critical_extension_oid: Some("1.3.6.1.4.1.55555.8.1".to_owned()),
        ..LeafOptions::default()
    };
    let expected = Err(Rejection::UnsupportedCriticalExtension(
        "1.3.6.1.4.1.55555.8.1".to_owned(),
    ));
    assert_eq!(both(opts, &policy()), [expected.clone(), expected]);
}

#[test]
fn a_revoked_issuing_ca_revokes_its_cards() {
    let mut lists = RevocationLists::new();
    for crl in [
        root_crl([CA_G3_SERIAL]),
        ca_crl(Generation::G2, []),
        ca_crl(Generation::G3, []),
    ] {
        lists.load(&crl, &TRUST, AT).unwrap();
    }
    let g3 = leaf(LeafOptions::default());
    assert_eq!(
        pkcs7(&g3, CHALLENGE, &lists, &policy()),
        Err(Rejection::Revoked)
    );
    let g2 = leaf(LeafOptions {
        generation: Generation::G2,
        ..LeafOptions::default()
    });
    let verified = pkcs1(&g2, CHALLENGE, &lists, &policy()).unwrap();
    assert_eq!(verified.revocation, RevocationStatus::Good);
    assert_ne!(CA_G2_SERIAL, CA_G3_SERIAL);
}

#[test]
fn coverage_names_the_first_ca_without_a_current_crl() {
    let card = leaf(LeafOptions::default());
    let g3_hex = hex(&PKI.key_id(Generation::G3));

    // Nothing loaded: the card's issuer has no list.
    let verified = pkcs1(&card, CHALLENGE, &RevocationLists::new(), &policy()).unwrap();
    assert_eq!(
        verified.revocation,
        RevocationStatus::NoCurrentCrl {
            issuer: MOICA_ISSUER.to_owned(),
            issuer_key_id_hex: g3_hex.clone(),
            leaf: true,
        }
    );
    assert_eq!(verified.crl_checks.len(), 2);
    assert!(verified.crl_checks.iter().all(|c| c.crl.is_none()));

    // Only the CA's list: the root's list (about the CA certificate) is missing.
    let mut lists = RevocationLists::new();
    lists.load(&ca_crl(Generation::G3, []), &TRUST, AT).unwrap();
    let verified = pkcs1(&card, CHALLENGE, &lists, &policy()).unwrap();
    assert!(matches!(
        &verified.revocation,
        RevocationStatus::NoCurrentCrl { issuer, leaf: false, .. } if issuer == ROOT_NAME
    ));
    assert!(verified.crl_checks[0].leaf);
    assert!(verified.crl_checks[0].crl.is_some());
    assert!(!verified.crl_checks[1].leaf);
    assert!(verified.crl_checks[1].crl.is_none());

    // Both: good.
    let lists = full_lists();
    let verified = pkcs1(&card, CHALLENGE, &lists, &policy()).unwrap();
    assert_eq!(verified.revocation, RevocationStatus::Good);
    assert!(verified.crl_checks.iter().all(|c| c.crl.is_some()));

    // The same lists later, past nextUpdate plus the grace: no longer current.
    let late = Policy {
        now_unix: CRL_NEXT_UPDATE_UNIX + GRACE + 1,
        ..policy()
    };
    let verified = pkcs1(&card, CHALLENGE, &lists, &late).unwrap();
    assert!(matches!(
        verified.revocation,
        RevocationStatus::NoCurrentCrl { leaf: true, .. }
    ));
    let within_grace = Policy {
        now_unix: CRL_NEXT_UPDATE_UNIX + GRACE,
        ..policy()
    };
    let verified = pkcs1(&card, CHALLENGE, &lists, &within_grace).unwrap();
    assert_eq!(verified.revocation, RevocationStatus::Good);
    assert!(
        lists
            .current_crl(&PKI.key_id(Generation::G3), false, AT)
            .is_some()
    );
}

#[test]
fn a_listed_card_is_revoked_even_when_its_crl_is_no_longer_current() {
    let serial = 0x0bad;
    let mut lists = full_lists();
    lists
        .load(&ca_crl(Generation::G3, [serial]), &TRUST, AT)
        .unwrap();
    let late = Policy {
        now_unix: CRL_NEXT_UPDATE_UNIX + GRACE + 1,
        ..policy()
    };
    let card = leaf(LeafOptions {
        serial,
        ..LeafOptions::default()
    });
    assert_eq!(
        pkcs1(&card, CHALLENGE, &lists, &late),
        Err(Rejection::Revoked)
    );
}

#[test]
fn the_cas_without_a_current_crl_are_listed() {
    let names = |lists: &RevocationLists| {
        let mut uncovered: Vec<(String, bool)> = lists
            .uncovered(&TRUST, AT)
            .into_iter()
            .map(|ca| (ca.key_id_hex, ca.about_ca_certificates))
            .collect();
        uncovered.sort();
        uncovered
    };
    let g2 = hex(&PKI.key_id(Generation::G2));
    let g3 = hex(&PKI.key_id(Generation::G3));
    assert_eq!(TRUST.crl_issuers().len(), 3);
    let mut lists = RevocationLists::new();
    assert_eq!(names(&lists).len(), 3);
    lists.load(&root_crl([]), &TRUST, AT).unwrap();
    let mut expected = vec![(g2, false), (g3.clone(), false)];
    expected.sort();
    assert_eq!(names(&lists), expected);
    lists.load(&ca_crl(Generation::G2, []), &TRUST, AT).unwrap();
    assert_eq!(names(&lists), vec![(g3, false)]);
    lists.load(&ca_crl(Generation::G3, []), &TRUST, AT).unwrap();
    assert!(names(&lists).is_empty());
    let root = TRUST
        .crl_issuers()
        .into_iter()
        .find(|ca| ca.about_ca_certificates)
        .unwrap();
    assert_eq!(root.name, ROOT_NAME);
}

#[test]
fn wall_clock_crls_load_now() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = Freshness {
        now_unix: now,
        grace_secs: 0,
    };
    let mut lists = RevocationLists::new();
    lists
        .load(&PKI.root_crl([CA_G2_SERIAL].into_iter()), &TRUST, at)
        .unwrap();
    lists
        .load(&PKI.crl(Generation::G3, [5].into_iter()), &TRUST, at)
        .unwrap();
    assert!(lists.is_revoked(&PKI.key_id(Generation::G3), &serial_bytes(5)));
    assert_eq!(lists.uncovered(&TRUST, at).len(), 1);
}
