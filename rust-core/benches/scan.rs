//! One 1280×720 frame holding a voucher (version 12 at level M) scanned by our pipeline, beside
//! rqrr alone on the same frame (the peer measured in the same run). Goal: under 10 ms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use evoucher_core::keys::IssuerKey;
use evoucher_core::scan::{scan, Frame, Rotation, ScanOptions};

fn bench(c: &mut Criterion) {
    let key = IssuerKey::from_seed([1; 32]);
    let text = support::scan_voucher_text(&key);
    let sym = evoucher_core::qr::symbol(&text).unwrap();
    assert!(sym.version >= 10, "version {}", sym.version);
    let (side, qr) = sym.luma(5);
    let (w, h) = (1280usize, 720usize);
    let mut px = vec![180u8; w * h];
    let (x0, y0) = ((w - side) / 2, (h - side) / 2);
    for y in 0..side {
        px[(y0 + y) * w + x0..(y0 + y) * w + x0 + side]
            .copy_from_slice(&qr[y * side..(y + 1) * side]);
    }
    let frame = Frame::new(w, h, w, &px, Rotation::R0);
    let o = ScanOptions::default();
    assert_eq!(
        scan(&frame, &o).unwrap()[0].text.as_deref(),
        Some(text.as_str())
    );
    println!(
        "voucher: {} characters, QR version {}",
        text.len(),
        sym.version
    );
    let mut g = c.benchmark_group("scan_720p");
    g.sample_size(30);
    g.bench_function("evoucher_scan", |b| {
        b.iter(|| scan(black_box(&frame), &o).unwrap())
    });
    g.bench_function("peer_rqrr_only", |b| {
        b.iter(|| {
            let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| px[y * w + x]);
            img.detect_grids()
                .iter()
                .filter_map(|g| g.decode().ok())
                .count()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
