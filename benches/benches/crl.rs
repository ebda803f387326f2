//! CRL loading and lookup with a MOICA-sized revocation list (400,000 entries, ~10 MB):
//! the gateway reloads such CRLs periodically and looks one serial up per certificate login.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use menshen_pki::testpki::{Generation, TestPki, serial_bytes};
use menshen_pki::{Freshness, RevocationLists};

const ENTRIES: u64 = 400_000;

/// Spread-out 63-bit serials with bit 62 set, so any serial with bit 62 clear is absent.
fn serial(i: u64) -> u64 {
    0x4000_0000_0000_0000 | (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 2)
}

fn crl(c: &mut Criterion) {
    let pki = TestPki::generate();
    let trust = pki.trust_store();
    let der = pki.crl(Generation::G3, (0..ENTRIES).map(serial));
    let key_id = pki.key_id(Generation::G3);
    // `TestPki::crl` makes a list current at the wall clock.
    let at = Freshness {
        now_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        grace_secs: 0,
    };

    let mut group = c.benchmark_group("crl");
    group.sample_size(10);
    group.bench_function("load_400k", |b| {
        b.iter(|| {
            let mut lists = RevocationLists::new();
            lists
                .load_der(black_box(&der), &trust, at)
                .map(|info| info.entries)
        });
    });
    group.finish();

    let mut lists = RevocationLists::new();
    if let Err(e) = lists.load_der(&der, &trust, at) {
        panic!("CRL does not load: {e}");
    }
    let present = serial_bytes(serial(123_456));
    let absent = serial_bytes(serial(123_456) & !0x4000_0000_0000_0000);
    c.bench_function("crl/lookup_present", |b| {
        b.iter(|| lists.is_revoked(black_box(&key_id), black_box(&present)));
    });
    c.bench_function("crl/lookup_absent", |b| {
        b.iter(|| lists.is_revoked(black_box(&key_id), black_box(&absent)));
    });
}

criterion_group!(benches, crl);
criterion_main!(benches);
