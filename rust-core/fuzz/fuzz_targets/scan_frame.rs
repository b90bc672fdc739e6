//! Fuzz the scanner with random frames: random sizes, strides and pixels, and random bytes as an
//! image file. Nothing may panic; errors are typed.
#![no_main]

use evoucher_core::scan::{scan, scan_image_bytes, Frame, Rotation, ScanOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let o = ScanOptions {
        budget: std::time::Duration::from_millis(50),
        retry: true,
    };
    if data.len() >= 4 {
        let w = usize::from(data[0]) + 1;
        let h = usize::from(data[1]) + 1;
        let stride = w + usize::from(data[2] % 16);
        let px = &data[4..];
        let _ = scan(&Frame::new(w, h, stride, px, Rotation::R0), &o);
    }
    let _ = scan_image_bytes(data, &o);
});
