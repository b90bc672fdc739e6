//! Symbols seen but not read, read again each in a crop of the frame around it (see
//! [`Crops`] and docs/scanning.md, "Symbols seen but not read").

use std::time::Instant;

use super::readers::{reduced, rqrr, rxing, rxing_copy, upscale2, Triple, Variant, UP_MAX_PIXELS};
use super::{Code, Frame};

/// Crops read at most per `scan` (a camera session reads none: see `LookAgain`).
pub const CROPS_MAX: usize = 8;

/// The crops of one scan: symbols whose three finder patterns a read found but could not
/// decode (a set that shares no pattern with a symbol read), read again each in a crop of the
/// frame around it. The crop gets its own binarisation, whose blocks and neighbourhoods then
/// fit that symbol alone (two identical codes side by side in `boofcv-nominal`: the right one
/// reads only cropped). A box already read in this scan is not read again (several steps see
/// the same symbol), at most [`CROPS_MAX`] are read in `scan`, and none after the deadline.
pub struct Crops {
    tried: Vec<[usize; 4]>,
    max: usize,
    deadline: Instant,
}

impl Crops {
    /// At most `max` crops (0: none), none after `deadline`.
    pub fn new(max: usize, deadline: Instant) -> Self {
        Crops {
            tried: Vec::new(),
            max,
            deadline,
        }
    }

    /// Read the crop of each set (frame coordinates). The crop is the set's box with the
    /// fourth corner, widened by 0.6 of its longest side on each side (a finder centre is 3.5
    /// modules in from the edge, and the quiet zone 4 more); no copy, a window into the frame.
    /// Read with the hybrid and then the global-histogram binarisation, then enlarged ×2
    /// (crops of at most half a megapixel), reduced ×2, and by rqrr (small crops).
    pub fn read(&mut self, frame: &Frame<'_>, failed: &[Triple], out: &mut Vec<Code>) {
        for set in failed {
            if self.tried.len() >= self.max || Instant::now() >= self.deadline {
                return;
            }
            let Some(b) = crop_box(frame.width, frame.height, set) else {
                continue;
            };
            if self.tried.iter().any(|t| overlap(t, &b)) {
                continue;
            }
            self.tried.push(b);
            read_crop(frame, b, out);
        }
    }
}

/// The box `[x0, y0, x1, y1]` around a set, clamped to the frame; `None` when under 21 pixels
/// on a side or over half the frame (the read of the frame itself covers it).
fn crop_box(w: usize, h: usize, set: &Triple) -> Option<[usize; 4]> {
    let [tl, tr, bl] = *set;
    let br = (tr.0 + bl.0 - tl.0, tr.1 + bl.1 - tl.1);
    let pts = [tl, tr, bl, br];
    let side = |a: (f32, f32), b: (f32, f32)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
    let margin = 0.6 * side(tl, tr).max(side(tl, bl));
    let lo = |f: fn(&(f32, f32)) -> f32| pts.iter().map(f).fold(f32::MAX, f32::min) - margin;
    let hi = |f: fn(&(f32, f32)) -> f32| pts.iter().map(f).fold(f32::MIN, f32::max) + margin;
    let x0 = lo(|p| p.0).max(0.0) as usize;
    let y0 = lo(|p| p.1).max(0.0) as usize;
    let x1 = (hi(|p| p.0).max(0.0) as usize).min(w);
    let y1 = (hi(|p| p.1).max(0.0) as usize).min(h);
    (x1 > x0 + 21 && y1 > y0 + 21 && (x1 - x0) * (y1 - y0) * 2 <= w * h).then_some([x0, y0, x1, y1])
}

/// Whether two boxes are nearly the same: their intersection is over 70 % of their union.
fn overlap(a: &[usize; 4], b: &[usize; 4]) -> bool {
    let iw = a[2].min(b[2]).saturating_sub(a[0].max(b[0]));
    let ih = a[3].min(b[3]).saturating_sub(a[1].max(b[1]));
    let area = |r: &[usize; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    let inter = iw * ih;
    10 * inter > 7 * (area(a) + area(b) - inter)
}

fn read_crop(frame: &Frame<'_>, [x0, y0, x1, y1]: [usize; 4], out: &mut Vec<Code>) {
    let s = frame.stride;
    let Some(px) = frame.rows().get(y0 * s + x0..) else {
        return;
    };
    let (cw, ch) = (x1 - x0, y1 - y0);
    let small = cw * ch <= UP_MAX_PIXELS;
    let mut found = Vec::new();
    for v in [Variant::Hybrid, Variant::GlobalHistogram] {
        if found.is_empty() {
            rxing(px, cw, ch, s, 1.0, v, &mut found);
        }
    }
    let crop = Frame::new(cw, ch, s, px, super::Rotation::R0);
    let both = [Variant::Hybrid, Variant::GlobalHistogram];
    if found.is_empty() && small {
        // A version 1 code at six pixels a module, at an angle, reads only so.
        rxing_copy(&Some(upscale2(&crop)), 0.5, &both, &mut found);
    }
    if found.is_empty() {
        rxing_copy(&reduced(&crop, 2), 2.0, &both, &mut found);
    }
    if found.is_empty() && small {
        rqrr(px, cw, ch, s, 1.0, &mut found);
    }
    for mut c in found {
        for p in c.corners.iter_mut() {
            (p.0, p.1) = (p.0 + x0 as f32, p.1 + y0 as f32);
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::scan::Rotation;
    use proptest::prelude::*;

    fn far() -> Instant {
        Instant::now() + std::time::Duration::from_secs(60)
    }

    /// A code in a larger frame, and the centres of its three finder patterns.
    fn code_in_frame(
        text: &str,
        scale: usize,
        x0: usize,
        y0: usize,
        pad: usize,
    ) -> (usize, usize, Vec<u8>, Triple) {
        let symbol = crate::qr::symbol(text).unwrap();
        let (side, qr) = symbol.luma(scale);
        let (w, h) = (side + x0 + pad, side + y0 + pad);
        let mut px = vec![190u8; w * h];
        for y in 0..side {
            px[(y0 + y) * w + x0..(y0 + y) * w + x0 + side]
                .copy_from_slice(&qr[y * side..(y + 1) * side]);
        }
        let quiet = (side / scale - symbol.width) / 2;
        let at = |m: f32| (quiet as f32 + m) * scale as f32;
        let (near, far) = (at(3.5), at(symbol.width as f32 - 3.5));
        let (fx, fy) = (x0 as f32, y0 as f32);
        (
            w,
            h,
            px,
            [
                (fx + near, fy + near),
                (fx + far, fy + near),
                (fx + near, fy + far),
            ],
        )
    }

    /// "EV1 CROP TEST" at three pixels a module in a frame, and what the crops of its finder
    /// patterns' set read.
    fn crop_of_code(x0: usize, y0: usize, pad: usize) -> (Triple, Vec<Code>) {
        let (w, h, px, set) = code_in_frame("EV1 CROP TEST", 3, x0, y0, pad);
        let frame = Frame::new(w, h, w, &px, Rotation::R0);
        let mut out = Vec::new();
        Crops::new(CROPS_MAX, far()).read(&frame, &[set], &mut out);
        (set, out)
    }

    #[test]
    fn a_crop_reads_the_symbol_of_a_failed_set_in_frame_coordinates() {
        let (set, out) = crop_of_code(170, 60, 80);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text.as_deref(), Some("EV1 CROP TEST"));
        let (cx, cy) = out[0].centre();
        let (ex, ey) = ((set[1].0 + set[2].0) / 2.0, (set[1].1 + set[2].1) / 2.0);
        assert!(
            (cx - ex).abs() < 3.0 && (cy - ey).abs() < 3.0,
            "{cx},{cy} vs {ex},{ey}"
        );
    }

    #[test]
    fn a_crop_as_large_as_the_frame_is_not_read_again() {
        let (_, out) = crop_of_code(5, 5, 5);
        assert!(out.is_empty(), "the first pass read this frame already");
    }

    proptest! {
        #[test]
        fn crops_of_any_set_stay_in_the_frame(w in 1usize..200, h in 1usize..200, pad in 0usize..9,
                                              pts in proptest::collection::vec(-300f32..500.0, 6),
                                              px in proptest::collection::vec(any::<u8>(), 208 * 200)) {
            let stride = w + pad;
            let frame = Frame::new(w, h, stride, &px[..stride * h], Rotation::R0);
            let set = [(pts[0], pts[1]), (pts[2], pts[3]), (pts[4], pts[5])];
            let mut out = Vec::new();
            Crops::new(CROPS_MAX, far()).read(&frame, &[set, set, set, set, set], &mut out);
            for c in &out {
                for p in c.corners {
                    prop_assert!(p.0 > -50.0 && p.1 > -50.0 && p.0 < w as f32 + 50.0 && p.1 < h as f32 + 50.0);
                }
            }
        }
    }
}
