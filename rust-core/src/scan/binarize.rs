//! The local ("hybrid") binariser that the first pass and most retry steps read through: the
//! same arithmetic as zxing's and rxing's `HybridBinarizer`, bit for bit (a test compares the
//! two on random frames and on every sample image), written to be fast.
//!
//! rxing's version sets one bit at a time through a bounds-checked call and copies a strided
//! frame before starting; it was about 70 % of our first pass (docs/scanning.md). This one
//! reads the frame in place through its stride, works a band of eight rows at a time, turns
//! each block's threshold into a per-column threshold row once, and packs 64 comparisons into
//! one word of the bit matrix.
//!
//! The algorithm (zxing): the frame is cut into 8×8 blocks. Each block gets a black point: the
//! mean of its pixels, or, when the block is nearly flat (range ≤ 24), half its minimum, raised
//! to its neighbours' black point when its minimum is below theirs. A pixel is black when it is
//! at most the mean of the 5×5 blocks' black points around its block. When a side is not a
//! multiple of 8 the last block overlaps the one before it; a pixel there is black when either
//! block says so.

use rxing::common::{BitArray, BitMatrix};

const BLOCK: usize = 8;
const MIN_DYNAMIC_RANGE: u8 = 24;
/// Smaller than this on a side, zxing falls back to its global-histogram binariser.
const MIN_SIDE: usize = BLOCK * 5;

/// Pixel `x` of row `y` is `px[y * stride + x]`. Frames smaller than 40 pixels on a side give
/// `None` (the caller falls back to the global histogram, as zxing does).
pub fn hybrid(px: &[u8], w: usize, h: usize, stride: usize, invert: bool) -> Option<BitMatrix> {
    if w < MIN_SIDE || h < MIN_SIDE || stride < w || px.len() < stride * (h - 1) + w {
        return None;
    }
    let (w32, h32) = (u32::try_from(w).ok()?, u32::try_from(h).ok()?);
    let sw = w.div_ceil(BLOCK);
    let sh = h.div_ceil(BLOCK);
    let x_off = |bx: usize| (bx * BLOCK).min(w - BLOCK);
    let y_off = |by: usize| (by * BLOCK).min(h - BLOCK);
    let row = |y: usize| &px[y * stride..y * stride + w];

    // Black point per block. Each band of eight rows is first reduced down its columns (sum,
    // min, max: straight runs the compiler vectorises), then eight columns at a time.
    let mut bp = vec![0u32; sw * sh];
    let mut col_sum = vec![0u16; w];
    let mut col_min = vec![0u8; w];
    let mut col_max = vec![0u8; w];
    for by in 0..sh {
        let yo = y_off(by);
        let first = row(yo);
        for (((s, lo), hi), p) in col_sum
            .iter_mut()
            .zip(&mut col_min)
            .zip(&mut col_max)
            .zip(first)
        {
            (*s, *lo, *hi) = (u16::from(*p), *p, *p);
        }
        for y in yo + 1..yo + BLOCK {
            for (((s, lo), hi), p) in col_sum
                .iter_mut()
                .zip(&mut col_min)
                .zip(&mut col_max)
                .zip(row(y))
            {
                *s += u16::from(*p);
                *lo = (*lo).min(*p);
                *hi = (*hi).max(*p);
            }
        }
        for bx in 0..sw {
            let xo = x_off(bx);
            let mut sum: u32 = col_sum[xo..xo + BLOCK].iter().map(|v| u32::from(*v)).sum();
            let mut min = col_min[xo..xo + BLOCK]
                .iter()
                .fold(u8::MAX, |a, b| a.min(*b));
            let mut max = col_max[xo..xo + BLOCK]
                .iter()
                .fold(u8::MIN, |a, b| a.max(*b));
            if invert {
                // The inverted frame: every pixel p read as 255 − p.
                sum = 64 * 255 - sum;
                (min, max) = (255 - max, 255 - min);
            }
            let mut average = sum >> 6;
            if max - min <= MIN_DYNAMIC_RANGE {
                average = u32::from(min) / 2;
                if by > 0 && bx > 0 {
                    let neighbours = (bp[(by - 1) * sw + bx]
                        + 2 * bp[by * sw + bx - 1]
                        + bp[(by - 1) * sw + bx - 1])
                        / 4;
                    if u32::from(min) < neighbours {
                        average = neighbours;
                    }
                }
            }
            bp[by * sw + bx] = average;
        }
    }

    // Threshold per block: the mean of the 5×5 black points around it (clamped to the grid),
    // spread into one threshold per column for each band of eight rows. Inverted, a pixel p is
    // black when 255 − p ≤ t, that is when 255 − t ≤ p: the same comparison, operands swapped.
    let row_words = w.div_ceil(WORD);
    let mut words = vec![0usize; row_words * h];
    let mut thr = vec![0u8; w];
    // Running sums of the five block rows around a band, across the grid: each 5×5 sum is
    // then the difference of two of them.
    let mut across = vec![0u32; sw + 1];
    for by in 0..sh {
        let top = by.clamp(2, sh - 3);
        thr.fill(if invert { u8::MAX } else { 0 });
        for x in 0..sw {
            let down: u32 = (top - 2..=top + 2).map(|z| bp[z * sw + x]).sum();
            across[x + 1] = across[x] + down;
        }
        for bx in 0..sw {
            let left = bx.clamp(2, sw - 3);
            let sum = across[left + 3] - across[left - 2];
            // At most 255, as every black point is.
            let t = (sum / 25) as u8;
            let xo = x_off(bx);
            for v in &mut thr[xo..xo + BLOCK] {
                // Overlapping blocks: black when either says so.
                *v = if invert {
                    (*v).min(255 - t)
                } else {
                    (*v).max(t)
                };
            }
        }
        let yo = y_off(by);
        for y in yo..yo + BLOCK {
            let out = &mut words[y * row_words..(y + 1) * row_words];
            for ((word, l), t) in out
                .iter_mut()
                .zip(row(y).chunks(WORD))
                .zip(thr.chunks(WORD))
            {
                *word |= if invert { pack(t, l) } else { pack(l, t) };
            }
        }
    }

    let mut m = BitMatrix::new(w32, h32).ok()?;
    let mut bits = BitArray::with_size(w);
    for (y, ws) in words.chunks(row_words).enumerate() {
        for (k, word) in ws.iter().enumerate() {
            bits.setBulk(k * WORD, *word);
        }
        m.setRow(u32::try_from(y).ok()?, &bits);
    }
    Some(m)
}

/// Bits in one word of rxing's bit matrix (`usize`).
const WORD: usize = usize::BITS as usize;

/// Bit i set when `a[i] <= b[i]` (at most one word of pixels). The comparisons are made into
/// a byte array (vectorised), then eight 0/1 bytes become eight bits with one multiply.
#[inline]
fn pack(a: &[u8], b: &[u8]) -> usize {
    let mut m = [0u8; WORD];
    for ((m, a), b) in m.iter_mut().zip(a).zip(b) {
        *m = u8::from(*a <= *b);
    }
    let mut word = 0usize;
    for (k, bytes) in m.chunks_exact(8).enumerate() {
        let mut x = [0u8; 8];
        x.copy_from_slice(bytes);
        let bits = u64::from_le_bytes(x).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        word |= (bits as usize) << (8 * k);
    }
    word
}

/// zxing's global-histogram binariser, bit for bit: one black point for the whole frame from
/// a histogram of four rows (their middle three fifths), a pixel black when below it. `None`
/// when the histogram shows too little contrast (rxing's binariser fails there too: not read).
pub fn global(px: &[u8], w: usize, h: usize, stride: usize) -> Option<BitMatrix> {
    if w == 0 || h == 0 || stride < w || px.len() < stride * (h - 1) + w {
        return None;
    }
    let row = |y: usize| &px[y * stride..y * stride + w];
    let mut buckets = [0u32; 32];
    for k in 1..5 {
        for p in &row(h * k / 5)[w / 5..w * 4 / 5] {
            buckets[usize::from(p >> 3)] += 1;
        }
    }
    let black_point = estimate_black_point(&buckets)?;
    let (w32, h32) = (u32::try_from(w).ok()?, u32::try_from(h).ok()?);
    let mut m = BitMatrix::new(w32, h32).ok()?;
    if black_point == 0 {
        return Some(m);
    }
    // p < black point ⟺ p ≤ black point − 1.
    let t = [(black_point - 1) as u8; WORD];
    let mut bits = BitArray::with_size(w);
    for y in 0..h {
        for (k, l) in row(y).chunks(WORD).enumerate() {
            bits.setBulk(k * WORD, pack(l, &t[..l.len()]));
        }
        m.setRow(u32::try_from(y).ok()?, &bits);
    }
    Some(m)
}

/// zxing's `estimateBlackPoint` (32 buckets): the valley between the two peaks, nearer the
/// white one; `None` when the peaks are too close.
fn estimate_black_point(buckets: &[u32; 32]) -> Option<u32> {
    let mut max_count = 0;
    let mut first_peak = 0usize;
    let mut first_peak_size = 0;
    for (x, &b) in buckets.iter().enumerate() {
        if b > first_peak_size {
            first_peak = x;
            first_peak_size = b;
        }
        max_count = max_count.max(b);
    }
    let mut second_peak = 0usize;
    let mut second_peak_score = 0u64;
    for (x, &b) in buckets.iter().enumerate() {
        let d = x.abs_diff(first_peak) as u64;
        let score = u64::from(b) * d * d;
        if score > second_peak_score {
            second_peak = x;
            second_peak_score = score;
        }
    }
    if first_peak > second_peak {
        std::mem::swap(&mut first_peak, &mut second_peak);
    }
    if second_peak - first_peak <= 32 / 16 {
        return None;
    }
    let mut best_valley = second_peak as i64 - 1;
    let mut best_valley_score = -1i64;
    for x in (first_peak + 1..=second_peak).rev() {
        let from_first = (x - first_peak) as i64;
        let score =
            from_first * from_first * (second_peak - x) as i64 * i64::from(max_count - buckets[x]);
        // rxing compares the score truncated to 32 bits; kept, so that the bits are the same.
        if score as i32 as i64 > best_valley_score {
            best_valley = x as i64;
            best_valley_score = score as i32 as i64;
        }
    }
    u32::try_from(best_valley).ok().map(|v| v << 3)
}

/// rqrr's threshold, bit for bit (`PreparedImage::prepare`): per row, two running averages
/// over w/8 pixels, one from each end (their state carried from row to row, the direction
/// alternating), and a pixel black when below 95 % of their mean. One entry per pixel, 1 for
/// black, for `PreparedImage::prepare_from_bitmap`.
///
/// rqrr divides twice per pixel in a chain that cannot overlap; here the division by the
/// window is a multiply by its reciprocal (exact: the dividend stays below 2^64 / window) and
/// the final test needs no division.
pub fn rqrr_threshold(px: &[u8], w: usize, h: usize, stride: usize) -> Option<Vec<u8>> {
    if w == 0 || h == 0 || stride < w || px.len() < stride * (h - 1) + w {
        return None;
    }
    let s = (w / 8).max(1) as u64;
    // floor(n / s) = (n · m) >> 64 for every n below 2^64 / s; running averages stay below
    // 256 · s, so n = avg · (s − 1) < 256 · s² (s ≤ 2^20 here: frames are at most 50 MP).
    // With s = 1, n is always 0 and any m will do.
    let m: u64 = if s == 1 {
        u64::MAX
    } else {
        ((1u128 << 64) / u128::from(s)) as u64 + 1
    };
    let step = |avg: u64, p: u8| -> u64 {
        ((u128::from(avg * (s - 1)) * u128::from(m)) >> 64) as u64 + u64::from(p)
    };
    let d = 200 * s;
    let mut out = vec![0u8; w * h];
    let mut row_avg = vec![0u64; w];
    let (mut avg_v, mut avg_u) = (0u64, 0u64);
    for (y, dst) in out.chunks_exact_mut(w).enumerate() {
        let row = &px[y * stride..y * stride + w];
        row_avg.fill(0);
        for x in 0..w {
            let (v, u) = if y % 2 == 0 {
                (w - 1 - x, x)
            } else {
                (x, w - 1 - x)
            };
            avg_v = step(avg_v, row[v]);
            avg_u = step(avg_u, row[u]);
            row_avg[v] += avg_v;
            row_avg[u] += avg_u;
        }
        // p < ⌊a · 95 / d⌋  ⟺  (p + 1) · d ≤ a · 95.
        for ((o, p), a) in dst.iter_mut().zip(row).zip(&row_avg) {
            *o = u8::from((u64::from(*p) + 1) * d <= *a * 95);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use rxing::common::{GlobalHistogramBinarizer, HybridBinarizer};
    use rxing::Luma8Source;
    use rxing::{Binarizer, LuminanceSource};

    /// rxing's `HybridBinarizer` on the same pixels: the reference.
    fn reference(px: &[u8], w: usize, h: usize, stride: usize, invert: bool) -> BitMatrix {
        let mut compact = Vec::with_capacity(w * h);
        for y in 0..h {
            compact.extend_from_slice(&px[y * stride..y * stride + w]);
        }
        let mut src = Luma8Source::new(compact, w as u32, h as u32).unwrap();
        if invert {
            src.invert();
        }
        HybridBinarizer::new(src)
            .get_black_matrix()
            .unwrap()
            .clone()
    }

    /// A frame with what exercises every branch: flat areas (the "nearly flat block" rule and
    /// its neighbour correction), dark and light blocks, gradients and noise.
    fn frame(w: usize, h: usize, pad: usize, seed: u64) -> Vec<u8> {
        let stride = w + pad;
        let mut s = seed | 1;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let (cx, cy) = ((rnd() % w as u64) as usize, (rnd() % h as u64) as usize);
        let noise = (rnd() % 40) as u8;
        let mut px = vec![0u8; stride * h];
        for y in 0..h {
            for x in 0..stride {
                let v = match ((x / 11 + y / 7) % 4, x < cx, y < cy) {
                    (_, true, true) => 200,
                    (0, false, _) => 30,
                    (1, _, false) => (x * 255 / stride) as u8,
                    _ => ((x ^ y) & 0xff) as u8,
                };
                px[y * stride + x] = v.saturating_add((rnd() % (u64::from(noise) + 1)) as u8);
            }
        }
        px
    }

    proptest! {
        #[test]
        fn same_bits_as_rxing(w in 40usize..300, h in 40usize..300, pad in 0usize..70,
                              seed in any::<u64>(), invert in any::<bool>()) {
            let px = frame(w, h, pad, seed);
            let ours = hybrid(&px, w, h, w + pad, invert).unwrap();
            prop_assert!(ours == reference(&px, w, h, w + pad, invert));
        }
    }

    /// rxing's `GlobalHistogramBinarizer`; `None` where it fails (too little contrast).
    fn reference_global(px: &[u8], w: usize, h: usize, stride: usize) -> Option<BitMatrix> {
        let mut compact = Vec::with_capacity(w * h);
        for y in 0..h {
            compact.extend_from_slice(&px[y * stride..y * stride + w]);
        }
        let src = Luma8Source::new(compact, w as u32, h as u32).unwrap();
        GlobalHistogramBinarizer::new(src)
            .get_black_matrix()
            .ok()
            .cloned()
    }

    proptest! {
        #[test]
        fn same_bits_as_rxing_global(w in 1usize..300, h in 1usize..300, pad in 0usize..70,
                                     seed in any::<u64>(), flat in 0u8..3) {
            let mut px = frame(w, h, pad, seed);
            if flat == 0 {
                // Low contrast: both must refuse.
                for p in &mut px {
                    *p = 100 + *p / 32;
                }
            }
            let ours = global(&px, w, h, w + pad);
            let theirs = reference_global(&px, w, h, w + pad);
            prop_assert_eq!(ours.is_some(), theirs.is_some());
            prop_assert!(ours == theirs);
        }
    }

    proptest! {
        #[test]
        fn same_pixels_as_rqrr(w in 1usize..200, h in 1usize..120, pad in 0usize..40,
                               seed in any::<u64>()) {
            let px = frame(w, h, pad, seed);
            let stride = w + pad;
            prop_assert!(rqrr_agrees(&px, w, h, stride));
        }
    }

    /// `rqrr_threshold` against rqrr's own `prepare`, pixel by pixel.
    fn rqrr_agrees(px: &[u8], w: usize, h: usize, stride: usize) -> bool {
        let ours = rqrr_threshold(px, w, h, stride).unwrap();
        let theirs = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| px[y * stride + x]);
        // rqrr's pixel colour type is not exported: take "black" from a one-pixel bitmap.
        let black = rqrr::PreparedImage::prepare_from_bitmap(1, 1, |_, _| true).get_pixel_at(0, 0);
        (0..h)
            .all(|y| (0..w).all(|x| (ours[y * w + x] == 1) == (theirs.get_pixel_at(x, y) == black)))
    }

    #[test]
    fn small_or_short_frames_are_left_to_rxing() {
        let px = vec![0u8; 100 * 100];
        assert!(hybrid(&px, 39, 100, 100, false).is_none());
        assert!(hybrid(&px, 100, 39, 100, false).is_none());
        assert!(
            hybrid(&px, 100, 100, 99, false).is_none(),
            "stride below width"
        );
        assert!(
            hybrid(&px[..100 * 99], 100, 100, 100, false).is_none(),
            "buffer too short"
        );
        // The last row needs only `w` bytes, not a whole stride.
        assert!(hybrid(&px[..100 * 99 + 60], 60, 100, 100, false).is_some());
    }

    #[test]
    fn same_bits_as_rxing_on_sample_photos() {
        // Real photos from ../shared/qr-samples (a handful per set; the benchmark reads them all).
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/qr-samples");
        let mut files: Vec<_> = walk(&root);
        files.sort();
        assert!(files.len() > 100, "no samples under {}", root.display());
        for f in files.iter().step_by(files.len() / 40) {
            let Ok(img) = crate::scan::decode_image(&std::fs::read(f).unwrap()) else {
                continue;
            };
            let (w, h) = (img.width() as usize, img.height() as usize);
            if w < MIN_SIDE || h < MIN_SIDE {
                continue;
            }
            for invert in [false, true] {
                let ours = hybrid(img.as_raw(), w, h, w, invert).unwrap();
                assert!(
                    ours == reference(img.as_raw(), w, h, w, invert),
                    "{}",
                    f.display()
                );
            }
            let ours = global(img.as_raw(), w, h, w);
            assert!(
                ours == reference_global(img.as_raw(), w, h, w),
                "{}",
                f.display()
            );
            assert!(rqrr_agrees(img.as_raw(), w, h, w), "rqrr: {}", f.display());
        }
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("png" | "jpg" | "jpeg" | "webp")
            ) {
                out.push(p);
            }
        }
        out
    }
}
