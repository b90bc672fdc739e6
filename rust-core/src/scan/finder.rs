//! The finder-pattern search of the first pass and of every rxing step: zxing-cpp's
//! `FindFinderPatterns` (try-harder: every third row), giving exactly rxing's patterns (a test
//! compares the two on random matrices and on sample photos), with a faster row scan.
//!
//! rxing turns each scanned row into run lengths one bit at a time through a bounds-checked
//! call; it was the largest single cost left in a read (docs/scanning.md). Here a row's runs
//! come from word-wide searches for the next set and unset bit (`trailing_zeros`), and the run
//! buffer is reused from row to row. The 1:1:3:1:1 test and the concentric check that follow
//! are rxing's own functions, unchanged.

use rxing::common::cpp_essentials::{
    ConcentricPattern, FindLeftGuardBy, FixedPattern, IsPattern, LocateConcentricPattern,
    PatternRow, PatternType, PatternView,
};
use rxing::common::{BitArray, BitMatrix};
use rxing::{point, Point};

const LEN: usize = 5;
const SUM: usize = 7;
const PATTERN: FixedPattern<LEN, SUM, false> = FixedPattern::new([1, 1, 3, 1, 1]);
const E2E: bool = true;
/// Every third row (one module of the smallest finder centre at one pixel a module).
const SKIP: u32 = 3;

/// The run lengths of a row in rxing's convention: white first (0 when the row starts black),
/// alternating, and a final 0 when the row ends black.
fn row_runs(row: &BitArray, runs: &mut Vec<PatternType>) {
    runs.clear();
    let size = row.get_size();
    let (mut pos, mut black) = (0, false);
    while pos < size {
        let next = if black {
            row.getNextUnset(pos)
        } else {
            row.getNextSet(pos)
        };
        // Wrapping, as rxing's counter does past 65 535 pixels.
        runs.push((next - pos) as PatternType);
        pos = next;
        black = !black;
    }
    // `black` now names the colour a next run would have: the last run was black when it is
    // false.
    if size > 0 && !black {
        runs.push(0);
    }
}

/// zxing-cpp's quick 1:1:3:1:1 test on a run view (rxing's `FindPattern`, minimum module 0).
fn find_pattern(view: PatternView<'_>) -> Option<PatternView<'_>> {
    FindLeftGuardBy::<LEN, _>(view, LEN, |v: &PatternView, space: Option<f32>| {
        let r: [PatternType; LEN] = [v[0usize], v[1usize], v[2usize], v[3usize], v[4usize]];
        if r[2] < 3 || r[2] < 2 * r[0].max(r[4]) || r[2] < r[1].max(r[3]) {
            return false;
        }
        IsPattern::<E2E, LEN, SUM, false>(v, &PATTERN, space, 0.1, 0.0, 0.0) != 0.0
    })
    .ok()
}

/// Every finder pattern in the matrix, in rxing's order.
pub fn find_finder_patterns(image: &BitMatrix) -> Vec<ConcentricPattern> {
    let height = image.height();
    let mut res: Vec<ConcentricPattern> = Vec::new();
    let mut runs: Vec<PatternType> = Vec::new();
    let mut y = SKIP - 1;
    while y < height {
        row_runs(&image.getRow(y), &mut runs);
        let row = PatternRow::new(std::mem::take(&mut runs));
        let mut view = PatternView::new(&row);
        while let Some(next) = find_pattern(view) {
            view = next;
            if !view.isValid() {
                break;
            }
            let p = point(
                view.pixelsInFront() as f32
                    + view[0usize] as f32
                    + view[1usize] as f32
                    + view[2usize] as f32 / 2.0,
                y as f32 + 0.5,
            );
            if !res
                .iter()
                .any(|old| Point::distance(p, old.p) < (old.size as f32) / 2.0)
            {
                let range = view.iter().sum::<u16>() as i32 * 3;
                if let Some(found) =
                    LocateConcentricPattern::<E2E, LEN, SUM>(image, &PATTERN.into(), p, range)
                {
                    res.push(found);
                }
            }
            view.skipPair();
            view.skipPair();
            view.extend();
        }
        runs = row.into_iter().collect();
        y += SKIP;
    }
    res
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use rxing::common::cpp_essentials::GetPatternRowTP;
    use rxing::qrcode::cpp_port::detector::FindFinderPatterns;

    fn matrix(w: usize, h: usize, black: impl Fn(usize, usize) -> bool) -> BitMatrix {
        let mut m = BitMatrix::new(w as u32, h as u32).unwrap();
        for y in 0..h {
            for x in 0..w {
                if black(x, y) {
                    m.set(x as u32, y as u32);
                }
            }
        }
        m
    }

    proptest! {
        #[test]
        fn runs_match_rxing(w in 1usize..200, bits in proptest::collection::vec(any::<bool>(), 200),
                            run in 1usize..9) {
            // Runs of `run` equal bits, so that long runs and word edges both occur.
            let m = matrix(w, 1, |x, _| bits[x / run % bits.len()]);
            let mut ours = Vec::new();
            row_runs(&m.getRow(0), &mut ours);
            let mut theirs = PatternRow::default();
            GetPatternRowTP(&m, 0, &mut theirs, false);
            prop_assert_eq!(ours.len(), theirs.len());
            for (i, r) in ours.iter().enumerate() {
                prop_assert_eq!(*r, theirs[i]);
            }
        }

        #[test]
        fn patterns_match_rxing_on_codes(text in "[A-Z0-9]{1,60}", scale in 1usize..5,
                                         x0 in 0usize..40, y0 in 0usize..40,
                                         noise in proptest::collection::vec(any::<u8>(), 64)) {
            let (side, qr) = crate::qr::symbol(&text).unwrap().luma(scale);
            let (w, h) = (side + 80, side + 60);
            let m = matrix(w, h, |x, y| {
                let inside = x >= x0 && y >= y0 && x < x0 + side && y < y0 + side;
                let v = if inside { qr[(y - y0) * side + x - x0] } else { 200 };
                // A sprinkle of flipped pixels.
                let flip = noise[(x * 7 + y * 13) % noise.len()] < 6 && (x + y) % 5 == 0;
                (v < 128) != flip
            });
            prop_assert!(find_finder_patterns(&m) == FindFinderPatterns(&m, true, 0));
        }
    }

    #[test]
    fn patterns_match_rxing_on_sample_photos() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/qr-samples");
        let mut files = Vec::new();
        for set in std::fs::read_dir(&root).unwrap().flatten() {
            for f in std::fs::read_dir(set.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let p = f.path();
                if matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("png" | "jpg" | "jpeg" | "webp")
                ) {
                    files.push(p);
                }
            }
        }
        files.sort();
        assert!(files.len() > 100, "no samples under {}", root.display());
        let mut patterns = 0;
        for f in files.iter().step_by(files.len() / 40) {
            let Ok(img) = crate::scan::decode_image(&std::fs::read(f).unwrap()) else {
                continue;
            };
            let (w, h) = (img.width() as usize, img.height() as usize);
            let Some(m) = crate::scan::binarize::hybrid(img.as_raw(), w, h, w, false) else {
                continue;
            };
            let ours = find_finder_patterns(&m);
            assert!(ours == FindFinderPatterns(&m, true, 0), "{}", f.display());
            patterns += ours.len();
        }
        assert!(patterns > 40, "the photos show finder patterns: {patterns}");
    }
}
