//! The readers (rxing, rqrr) behind `catch_unwind`, and the retry ladder.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rxing::common::{BitMatrix, DetectorRXingResult};
use rxing::BarcodeFormat;

use super::{binarize, finder, Code, Frame};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Hybrid,
    Inverted,
    GlobalHistogram,
}

/// One retry: a reader on a transformed copy of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// rxing on the frame reduced by this factor (box filter).
    Down(usize, Variant),
    /// rxing on the full frame.
    Full(Variant),
    /// rxing on the mirrored frame.
    Mirrored,
    /// rqrr on the frame, reduced so that it has at most ~1.5 megapixels.
    Rqrr,
    /// rxing on the frame enlarged ×2 (bilinear), hybrid then global histogram; frames of at
    /// most [`UP_MAX_PIXELS`] only.
    Up2,
}

impl Step {
    /// Whether the step can run on a frame of this size (a camera session does not spend a
    /// turn on a step that cannot).
    pub fn applies(self, w: usize, h: usize) -> bool {
        match self {
            Step::Up2 => w.saturating_mul(h) <= UP_MAX_PIXELS,
            _ => true,
        }
    }

    /// The finder patterns the first pass must have seen for the step to run. Steps that read
    /// the frame at its own scale with the same kind of detector need some: rqrr and the
    /// full-frame global histogram [`RQRR_MIN_FINDERS`] and [`GLOBAL_MIN_FINDERS`], the
    /// mirrored read [`MIRRORED_MIN_FINDERS`], the enlargement [`UP_MIN_FINDERS`]. The others
    /// read copies in which the first pass's count says little (a blurred code shows no finder
    /// pattern at full size; a white-on-black one shows none until inverted): none.
    pub fn min_finders(self) -> usize {
        match self {
            Step::Rqrr => RQRR_MIN_FINDERS,
            Step::Full(Variant::GlobalHistogram) => GLOBAL_MIN_FINDERS,
            Step::Mirrored => MIRRORED_MIN_FINDERS,
            Step::Up2 => UP_MIN_FINDERS,
            Step::Full(_) | Step::Down(..) => 0,
        }
    }
}

/// The retry ladder, in order. Chosen by measurement on ../shared/qr-samples beside zxing-cpp
/// and on the camera-stream benchmark (docs/scanning.md): on small frames (half a megapixel or
/// less) that show finder patterns, the frame enlarged ×2 first (codes of about two pixels a
/// module, whose patterns the first pass finds but cannot sample; it ends the search before a
/// later step reads one code of two); then a global-histogram binariser (most reads per
/// millisecond on large photos), the ×3 and ×6 reductions (×6: photos of a
/// screen, whose moiré only fades that small; cheap), then rqrr (the slowest step, but it reads
/// codes held at an angle that the others miss; a camera session reaches it on the second
/// frame), mirrored, ×4, inverted. No ×2 reduction: left out one step at a time, it was the
/// only step whose codes the others all read too.
pub const LADDER: [Step; 8] = [
    Step::Up2,
    Step::Full(Variant::GlobalHistogram),
    Step::Down(3, Variant::Hybrid),
    Step::Down(6, Variant::Hybrid),
    Step::Rqrr,
    Step::Mirrored,
    Step::Down(4, Variant::Hybrid),
    Step::Full(Variant::Inverted),
];

/// The ladder in use: [`LADDER`], or `EVOUCHER_SCAN_LADDER` when set, read once per process
/// (not on every frame).
pub fn ladder() -> &'static [Step] {
    static LADDER_IN_USE: std::sync::OnceLock<Vec<Step>> = std::sync::OnceLock::new();
    LADDER_IN_USE.get_or_init(|| ladder_from_env().unwrap_or_else(|| LADDER.to_vec()))
}

/// `EVOUCHER_SCAN_LADDER=up2,d2,inv,rqrr,gh,d3,d4,d6,mir` overrides the ladder (for measuring what
/// each step is worth; see docs/scanning.md). Unknown names are ignored.
fn ladder_from_env() -> Option<Vec<Step>> {
    let v = std::env::var("EVOUCHER_SCAN_LADDER").ok()?;
    Some(
        v.split(',')
            .filter_map(|s| match s.trim() {
                "d2" => Some(Step::Down(2, Variant::Hybrid)),
                "d3" => Some(Step::Down(3, Variant::Hybrid)),
                "d4" => Some(Step::Down(4, Variant::Hybrid)),
                "d6" => Some(Step::Down(6, Variant::Hybrid)),
                "d2gh" => Some(Step::Down(2, Variant::GlobalHistogram)),
                "d2inv" => Some(Step::Down(2, Variant::Inverted)),
                "inv" => Some(Step::Full(Variant::Inverted)),
                "gh" => Some(Step::Full(Variant::GlobalHistogram)),
                "rqrr" => Some(Step::Rqrr),
                "mir" => Some(Step::Mirrored),
                "up2" => Some(Step::Up2),
                _ => None,
            })
            .collect(),
    )
}

/// Run one retry step, unless it cannot apply to the frame's size or the first pass saw fewer
/// finder patterns than it needs (`finders`: `usize::MAX` when the first pass did not run; see
/// [`Step::min_finders`]). Returns the sets of three finder patterns that rxing found but could
/// not decode (for `crops::Crops`).
pub fn run_step(frame: &Frame<'_>, step: Step, finders: usize, out: &mut Vec<Code>) -> Vec<Triple> {
    let (w, h, s) = (frame.width, frame.height, frame.stride);
    if !step.applies(w, h) || finders < step.min_finders() {
        return Vec::new();
    }
    match step {
        Step::Full(v) => rxing(frame.rows(), w, h, s, 1.0, v, out).1,
        Step::Down(f, v) => rxing_copy(&reduced(frame, f), f as f32, &[v], out),
        Step::Mirrored => {
            let mut px = vec![0u8; w * h];
            for (y, dst) in px.chunks_exact_mut(w).enumerate() {
                let row = &frame.rows()[y * s..y * s + w];
                for (d, p) in dst.iter_mut().zip(row.iter().rev()) {
                    *d = *p;
                }
            }
            let mut found = Vec::new();
            rxing(&px, w, h, w, 1.0, Variant::Hybrid, &mut found);
            for mut c in found {
                for p in c.corners.iter_mut() {
                    p.0 = (w as f32 - 1.0) - p.0;
                }
                out.push(c);
            }
            Vec::new()
        }
        Step::Up2 => {
            let both = [Variant::Hybrid, Variant::GlobalHistogram];
            rxing_copy(&Some(upscale2(frame)), 0.5, &both, out)
        }
        Step::Rqrr => {
            let mut f = 1;
            while (w / f) * (h / f) > 1_500_000 {
                f += 1;
            }
            if f == 1 {
                rqrr(frame.rows(), w, h, s, 1.0, out);
            } else {
                let (dw, dh, px) = downscale(frame, f);
                rqrr(&px, dw, dh, dw, 1.0 / f as f32, out);
            }
            Vec::new()
        }
    }
}

/// The second look at a frame that holds codes (see `scan_order`): the copy reduced ×2, read
/// with the hybrid and then the global-histogram binarisation. Returns the sets that failed.
pub fn second_look(frame: &Frame<'_>, out: &mut Vec<Code>) -> Vec<Triple> {
    let both = [Variant::Hybrid, Variant::GlobalHistogram];
    rxing_copy(&reduced(frame, 2), 2.0, &both, out)
}

/// The frame reduced by `f`, or `None` when that would be under 21 pixels on a side (the
/// smallest QR code).
pub(super) fn reduced(frame: &Frame<'_>, f: usize) -> Option<(usize, usize, Vec<u8>)> {
    (frame.width / f >= 21 && frame.height / f >= 21).then(|| downscale(frame, f))
}

/// rxing on a resized copy of the frame (`w`, `h`, pixels; reduced by `factor`, or enlarged
/// when it is below 1), once per binarisation: one copy for all.
pub(super) fn rxing_copy(
    copy: &Option<(usize, usize, Vec<u8>)>,
    factor: f32,
    variants: &[Variant],
    out: &mut Vec<Code>,
) -> Vec<Triple> {
    let Some((w, h, px)) = copy else {
        return Vec::new();
    };
    let mut failed = Vec::new();
    for v in variants {
        failed.extend(rxing(px, *w, *h, *w, 1.0 / factor, *v, out).1);
    }
    failed
}

/// Frames up to this size may be enlarged (`Step::Up2`).
pub const UP_MAX_PIXELS: usize = 500_000;

/// The enlargement runs only when the first pass saw at least this many finder patterns: a
/// small code that the first pass saw but could not sample. Most frames without a code show
/// none (33 of the 46 false-positive images) or one or two (12 more).
pub const UP_MIN_FINDERS: usize = 3;

/// rqrr runs only when the first pass saw at least one finder pattern (rqrr needs three of its
/// own; frames without any pattern cost its whole grid search for nothing).
pub const RQRR_MIN_FINDERS: usize = 1;

/// The global-histogram read of the full frame runs only when the first pass saw at least one
/// finder pattern: where the local binarisation shows none, one threshold for the whole frame
/// did not show any either on the samples (no code lost; docs/scanning.md).
pub const GLOBAL_MIN_FINDERS: usize = 1;

/// The mirrored read runs only when the first pass saw at least two finder patterns (a
/// mirrored symbol's patterns are found as well as an upright one's; it is the sampling that
/// fails).
pub const MIRRORED_MIN_FINDERS: usize = 2;

/// Bilinear enlargement ×2: pixel (2x+i, 2y+j) samples the source at (x + i/2, y + j/2).
pub(super) fn upscale2(frame: &Frame<'_>) -> (usize, usize, Vec<u8>) {
    let (w, h, s) = (frame.width, frame.height, frame.stride);
    let px = frame.rows();
    let (uw, uh) = (2 * w, 2 * h);
    let mut out = vec![0u8; uw * uh];
    for y in 0..h {
        let r0 = &px[y * s..y * s + w];
        let r1 = &px[(y + 1).min(h - 1) * s..(y + 1).min(h - 1) * s + w];
        let (top, rest) = out[2 * y * uw..(2 * y + 2) * uw].split_at_mut(uw);
        for x in 0..w {
            let x1 = (x + 1).min(w - 1);
            let (a, b, c, d) = (
                u16::from(r0[x]),
                u16::from(r0[x1]),
                u16::from(r1[x]),
                u16::from(r1[x1]),
            );
            top[2 * x] = a as u8;
            top[2 * x + 1] = (a + b).div_ceil(2) as u8;
            rest[2 * x] = (a + c).div_ceil(2) as u8;
            rest[2 * x + 1] = ((a + b + c + d + 2) / 4) as u8;
        }
    }
    (uw, uh, out)
}

/// Box-filter reduction by an integer factor (the mean of each f×f block, rounded down). Each
/// band of f rows is summed down its columns first (a straight run the compiler vectorises),
/// then f columns at a time; the usual factors divide by a constant.
fn downscale(frame: &Frame<'_>, f: usize) -> (usize, usize, Vec<u8>) {
    match f {
        2 => downscale_with(frame, 2, |s| s / 4),
        3 => downscale_with(frame, 3, |s| s / 9),
        4 => downscale_with(frame, 4, |s| s / 16),
        _ => {
            let area = (f * f) as u32;
            downscale_with(frame, f, move |s| s / area)
        }
    }
}

#[inline(always)]
fn downscale_with(
    frame: &Frame<'_>,
    f: usize,
    div: impl Fn(u32) -> u32,
) -> (usize, usize, Vec<u8>) {
    let (dw, dh) = (frame.width / f, frame.height / f);
    let mut out = vec![0u8; dw * dh];
    let mut cols = vec![0u16; dw * f];
    for (y, dst) in out.chunks_exact_mut(dw.max(1)).enumerate().take(dh) {
        sum_rows(frame, y * f, f, &mut cols);
        for (d, c) in dst.iter_mut().zip(cols.chunks_exact(f)) {
            let sum: u32 = c.iter().map(|v| u32::from(*v)).sum();
            // The mean of at most 255s: fits.
            *d = div(sum) as u8;
        }
    }
    (dw, dh, out)
}

/// `cols[x]` = the sum of rows `y0..y0 + n` at column x, for the first `cols.len()` columns
/// (n ≤ 257, so that it fits in 16 bits).
fn sum_rows(frame: &Frame<'_>, y0: usize, n: usize, cols: &mut [u16]) {
    let px = frame.rows();
    let k = cols.len();
    let first = &px[y0 * frame.stride..y0 * frame.stride + k];
    for (c, p) in cols.iter_mut().zip(first) {
        *c = u16::from(*p);
    }
    for yy in 1..n {
        let row = &px[(y0 + yy) * frame.stride..(y0 + yy) * frame.stride + k];
        for (c, p) in cols.iter_mut().zip(row) {
            *c += u16::from(*p);
        }
    }
}

/// The black matrix a variant reads: ours (`binarize`), bit for bit rxing's. Frames under 40
/// pixels on a side take the global histogram, as zxing's hybrid binariser does there.
fn black_matrix(px: &[u8], w: usize, h: usize, stride: usize, v: Variant) -> Option<BitMatrix> {
    match v {
        Variant::Hybrid => {
            binarize::hybrid(px, w, h, stride, false).or_else(|| binarize::global(px, w, h, stride))
        }
        Variant::Inverted => binarize::hybrid(px, w, h, stride, true).or_else(|| {
            let mut inv = Vec::with_capacity(w * h);
            for y in 0..h {
                inv.extend(px.get(y * stride..y * stride + w)?.iter().map(|p| 255 - p));
            }
            binarize::global(&inv, w, h, w)
        }),
        Variant::GlobalHistogram => binarize::global(px, w, h, stride),
    }
}

/// rxing's zxing-cpp-port QR reader on a black matrix, every symbol: its finder-pattern search,
/// then each set of three patterns sampled and decoded, a pattern used by a decoded symbol not
/// tried again (the loop of rxing's `QrReader::decode_multiple`, QR symbols only). Also returns
/// how many finder patterns the search found, which tells the retry ladder whether anything
/// finder-shaped is in view.
fn decode_qr(matrix: &BitMatrix) -> (Vec<rxing::RXingResult>, Finders, Vec<Triple>) {
    use rxing::qrcode::cpp_port::{decoder::Decode, detector};
    let mut fps = finder::find_finder_patterns(matrix);
    let found = fps.len();
    let mut used = Vec::new();
    let mut results = Vec::new();
    let mut failed = Vec::new();
    let sets = detector::GenerateFinderPatternSets(&mut fps);
    // With few patterns, also the sets rxing's filters leave out (as zxing-cpp does). Those that
    // fail are not handed to the crops: the crops stay for symbols that passed the filters.
    let extra = finder::few_pattern_sets(&fps, &sets);
    let plausible = sets.len();
    for (n, set) in sets.into_iter().chain(extra).enumerate() {
        if used.contains(&set.bl) || used.contains(&set.tl) || used.contains(&set.tr) {
            continue;
        }
        let read = detector::SampleQR(matrix, &set)
            .ok()
            .and_then(|det| Decode(det.getBits()).ok().map(|dec| (det, dec)))
            .filter(|(_, dec)| dec.isValid());
        let Some((det, dec)) = read else {
            if n < plausible {
                failed.push(set);
            }
            continue;
        };
        used.extend([set.bl, set.tl, set.tr]);
        results.push(rxing::RXingResult::with_decoder_result(
            dec,
            det.getPoints(),
            BarcodeFormat::QR_CODE,
        ));
    }
    let seen = Finders {
        seen: found,
        unused: found.saturating_sub(used.len()),
    };
    // Sets that failed and share no pattern with a symbol read: a symbol seen but not read.
    let failed = failed
        .into_iter()
        .filter(|set| {
            ![&set.bl, &set.tl, &set.tr]
                .iter()
                .any(|p| used.contains(*p))
        })
        .map(|set| [set.tl.p, set.tr.p, set.bl.p].map(|p| (p.x, p.y)))
        .collect();
    (results, seen, failed)
}

/// The centres of a set of three finder patterns (top-left, top-right, bottom-left) in the
/// pixels read.
pub type Triple = [(f32, f32); 3];

/// What a read's finder-pattern search saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Finders {
    /// Patterns found.
    pub seen: usize,
    /// Patterns that are not part of a symbol read.
    pub unused: usize,
}

impl Finders {
    /// No search ran (a frame too large for the full-size first pass): nothing is gated.
    pub const UNKNOWN: Finders = Finders {
        seen: usize::MAX,
        unused: 0,
    };
}

/// rxing's QR reader (see [`decode_qr`]) on the frame binarised as `v`. Corners are divided by
/// `scale` (the size of the pixels read relative to the frame's: 1/3 for a copy reduced ×3)
/// to give frame coordinates. Returns what the finder-pattern search saw (nothing when the
/// reader failed), and the sets of three finder patterns that failed and share no pattern
/// with a symbol read (in frame coordinates; see `crops::Crops`).
pub fn rxing(
    px: &[u8],
    w: usize,
    h: usize,
    stride: usize,
    scale: f32,
    v: Variant,
    out: &mut Vec<Code>,
) -> (Finders, Vec<Triple>) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        black_matrix(px, w, h, stride, v).map(|m| decode_qr(&m))
    }));
    let Ok(Some((results, finders, failed))) = r else {
        return (Finders::default(), Vec::new());
    };
    let failed = failed
        .into_iter()
        .map(|t| t.map(|(x, y)| (x / scale, y / scale)))
        .collect();
    for res in results {
        let pts = res.getPoints();
        if pts.len() < 4 {
            continue;
        }
        let corners = [0, 1, 2, 3].map(|i| (pts[i].x / scale, pts[i].y / scale));
        let text = res.getText().to_owned();
        let bytes = payload_bytes(&res, &text);
        let text = String::from_utf8(bytes.clone()).ok().or_else(|| {
            res.getRXingResultMetadata()
                .contains_key(&rxing::RXingResultMetadataType::SYMBOLOGY_IDENTIFIER)
                .then_some(text)
                .filter(|_| has_eci(&res))
        });
        out.push(Code {
            bytes,
            text,
            corners,
        });
    }
    (finders, failed)
}

fn has_eci(res: &rxing::RXingResult) -> bool {
    // zxing symbology identifiers: "]Q2" means ECI protocol in use, "]Q1" plain.
    matches!(
        res.getRXingResultMetadata().get(&rxing::RXingResultMetadataType::SYMBOLOGY_IDENTIFIER),
        Some(rxing::RXingResultMetadataValue::SymbologyIdentifier(s)) if s.ends_with('2') || s.ends_with('4') || s.ends_with('6')
    )
}

/// The payload bytes. rxing gives decoded text (charset applied) and, for byte-mode segments,
/// the raw segment bytes. A single byte segment that is the whole content is taken as is
/// (binary payloads); otherwise the text's UTF-8.
fn payload_bytes(res: &rxing::RXingResult, text: &str) -> Vec<u8> {
    if let Some(rxing::RXingResultMetadataValue::ByteSegments(segs)) = res
        .getRXingResultMetadata()
        .get(&rxing::RXingResultMetadataType::BYTE_SEGMENTS)
    {
        if segs.len() == 1 && (segs[0] == text.as_bytes() || segs[0].len() == text.chars().count())
        {
            return segs[0].clone();
        }
    }
    text.as_bytes().to_vec()
}

/// rqrr: its own detector and sampler. Panics (it has some) are caught.
pub fn rqrr(px: &[u8], w: usize, h: usize, stride: usize, scale: f32, out: &mut Vec<Code>) {
    let r = catch_unwind(AssertUnwindSafe(|| -> Option<Vec<Code>> {
        let black = binarize::rqrr_threshold(px, w, h, stride)?;
        let mut img = rqrr::PreparedImage::prepare_from_bitmap(w, h, |x, y| black[y * w + x] == 1);
        let mut codes = Vec::new();
        for g in img.detect_grids() {
            let mut bytes = Vec::new();
            if g.decode_to(&mut bytes).is_ok() {
                let b = g.bounds;
                let corners = [0, 1, 2, 3].map(|i| (b[i].x as f32 / scale, b[i].y as f32 / scale));
                codes.push(Code {
                    text: String::from_utf8(bytes.clone()).ok(),
                    bytes,
                    corners,
                });
            }
        }
        Some(codes)
    }));
    if let Ok(Some(codes)) = r {
        out.extend(codes);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::scan::Rotation;
    use proptest::prelude::*;

    #[test]
    fn the_enlargement_is_for_small_frames_only() {
        assert!(LADDER.contains(&Step::Up2));
        assert!(Step::Up2.applies(640, 480));
        assert!(!Step::Up2.applies(1280, 720));
        assert!(!Step::Up2.applies(usize::MAX, 2));
        assert!(LADDER
            .iter()
            .filter(|s| **s != Step::Up2)
            .all(|s| s.applies(4000, 3000)));
    }

    proptest! {
        #[test]
        fn downscale_is_the_mean_of_each_block(w in 1usize..120, h in 1usize..120,
                                               pad in 0usize..9, f in 2usize..8,
                                               px in proptest::collection::vec(any::<u8>(), 128 * 128)) {
            let stride = w + pad;
            let px = &px[..stride * h];
            let frame = Frame::new(w, h, stride, px, Rotation::R0);
            let (dw, dh, out) = downscale(&frame, f);
            prop_assert_eq!((dw, dh, out.len()), (w / f, h / f, (w / f) * (h / f)));
            for y in 0..dh {
                for x in 0..dw {
                    let mut sum = 0u32;
                    for yy in 0..f {
                        for xx in 0..f {
                            sum += u32::from(px[(y * f + yy) * stride + x * f + xx]);
                        }
                    }
                    prop_assert_eq!(out[y * dw + x], (sum / (f * f) as u32) as u8);
                }
            }
        }

        #[test]
        fn upscale_keeps_each_pixel_and_interpolates_between(w in 1usize..60, h in 1usize..60,
                                                            pad in 0usize..9,
                                                            px in proptest::collection::vec(any::<u8>(), 68 * 60)) {
            let stride = w + pad;
            let px = &px[..stride * h];
            let frame = Frame::new(w, h, stride, px, Rotation::R0);
            let (uw, uh, out) = upscale2(&frame);
            prop_assert_eq!((uw, uh, out.len()), (2 * w, 2 * h, 4 * w * h));
            let at = |x: usize, y: usize| i32::from(px[y.min(h - 1) * stride + x.min(w - 1)]);
            for y in 0..h {
                for x in 0..w {
                    let (a, b, c) = (at(x, y), at(x + 1, y), at(x, y + 1));
                    prop_assert_eq!(i32::from(out[2 * y * uw + 2 * x]), a);
                    prop_assert_eq!(i32::from(out[2 * y * uw + 2 * x + 1]), (a + b + 1) / 2);
                    prop_assert_eq!(i32::from(out[(2 * y + 1) * uw + 2 * x]), (a + c + 1) / 2);
                    let d = i32::from(out[(2 * y + 1) * uw + 2 * x + 1]);
                    let (lo, hi) = (a.min(b).min(c).min(at(x + 1, y + 1)), a.max(b).max(c).max(at(x + 1, y + 1)));
                    prop_assert!(lo <= d && d <= hi);
                }
            }
        }
    }
}
