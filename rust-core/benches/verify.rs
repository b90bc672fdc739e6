//! End-to-end verification of a typical voucher (text → claims) beside a bare strict Ed25519
//! verification of the same signature over the same Sig_structure. `scripts/bench-verify.sh`
//! prints the ratio (goal ≤ 1.3×).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use evoucher_core::encode::encode;
use evoucher_core::keys::{ed25519_verify_strict, IssuerKey};
use evoucher_core::voucher::{VoucherBuilder, VoucherId};
use evoucher_core::{verify, TrustStore};

fn bench(c: &mut Criterion) {
    let key = IssuerKey::from_seed([5; 32]);
    let now = 1_780_000_000;
    // A typical voucher: cash, a name, a cycle, a provider restriction, a category.
    let v = VoucherBuilder::new("https://food.example.org", "food-2026", "BEN-0001234")
        .name("Amina Kamau")
        .value(250_000, "KES")
        .cycle("2026-06")
        .audience("SP-0042")
        .category("grocery")
        .validity(now - 86_400, now + 90 * 86_400)
        .id(VoucherId([7; 16]))
        .build()
        .unwrap();
    let text = encode(&v, &key).unwrap().text;
    let trust = TrustStore::from_keys([key.trusted()]).unwrap();
    assert!(verify(&text, &trust, now).is_ok());

    let d = evoucher_core::verify::decode(&text).unwrap();
    let tbs = evoucher_core::cose::sig_structure(&d.sign1, b"");
    let sig = d.sign1.signature.clone();
    let vk = key.verifying_key();

    let mut g = c.benchmark_group("verify");
    g.bench_function("voucher_end_to_end", |b| {
        b.iter(|| verify(black_box(&text), &trust, now).unwrap())
    });
    g.bench_function("ed25519_strict_only", |b| {
        b.iter(|| assert!(ed25519_verify_strict(&vk, black_box(&tbs), black_box(&sig))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
