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
use rxing::qrcode::cpp_port::detector::FinderPatternSet;
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

/// rxing's `FastEdgeToEdgeCounter` in two dimensions: from a pixel, in steps of (dx, dy), the
/// number of steps to the next pixel of the other colour, within a range and the image. Its
/// numbers, bit for bit, with a direct bit read per step (rxing's turns a flat index back into
/// x and y through a division and a float point on every step).
struct EdgeCounter<'a> {
    image: &'a BitMatrix,
    x: i32,
    y: i32,
    dx: i32,
    dy: i32,
    to_border: i32,
}

impl<'a> EdgeCounter<'a> {
    fn new(image: &'a BitMatrix, x: i32, y: i32, dx: i32, dy: i32) -> Self {
        let (w, h) = (image.width() as i32, image.height() as i32);
        let sx = match dx.signum() {
            1 => w - 1 - x,
            -1 => x,
            _ => i32::MAX,
        };
        let sy = match dy.signum() {
            1 => h - 1 - y,
            -1 => y,
            _ => i32::MAX,
        };
        EdgeCounter {
            image,
            x,
            y,
            dx,
            dy,
            to_border: sx.min(sy),
        }
    }

    fn get(&self, steps: i32) -> bool {
        let (x, y) = (self.x + steps * self.dx, self.y + steps * self.dy);
        x >= 0 && y >= 0 && self.image.get(x as u32, y as u32)
    }

    /// Steps to the next edge; 0 when it is beyond `range` (but not beyond the border: at the
    /// border, like rxing's, it steps one past it).
    fn step_to_next_edge(&mut self, range: i32) -> i32 {
        let max = self.to_border.min(range);
        let mut steps = 0;
        loop {
            steps += 1;
            if steps > max {
                if max == self.to_border {
                    break;
                }
                return 0;
            }
            if self.get(steps) != self.get(0) {
                break;
            }
        }
        self.x += steps * self.dx;
        self.y += steps * self.dy;
        self.to_border -= steps;
        steps
    }
}

/// rxing's `CheckSymmetricPattern` for the 1:1:3:1:1 pattern along (dx, dy) through (x, y):
/// the pattern's total width and the shift along (dx, dy) to its centre, or `None`.
fn symmetric(image: &BitMatrix, x: i32, y: i32, d: (i32, i32), range: i32) -> Option<(i32, i32)> {
    let mut range = range;
    let mut fwd = EdgeCounter::new(image, x, y, d.0, d.1);
    let mut bwd = EdgeCounter::new(image, x, y, -d.0, -d.1);
    let centre_fwd = fwd.step_to_next_edge(range);
    if centre_fwd == 0 {
        return None;
    }
    let centre_bwd = bwd.step_to_next_edge(range);
    if centre_bwd == 0 {
        return None;
    }
    let mut res: [PatternType; LEN] = [0; LEN];
    res[2] = (centre_fwd + centre_bwd - 1) as PatternType;
    range -= i32::from(res[2]);
    for i in 1..=2 {
        for (c, at) in [(&mut fwd, 2 + i), (&mut bwd, 2 - i)] {
            let v = c.step_to_next_edge(range);
            res[at] = v as PatternType;
            range -= v;
            if v == 0 {
                return None;
            }
        }
    }
    if IsPattern::<E2E, LEN, SUM, false>(
        &PatternView::from_slice(&res),
        &PATTERN,
        None,
        0.0,
        0.0,
        0.0,
    ) == 0.0
    {
        return None;
    }
    let spread = res.iter().sum::<PatternType>() as i32;
    Some((spread, i32::from(res[2]) / 2 - (centre_bwd - 1)))
}

/// Whether rxing's `LocateConcentricPattern` can find a pattern at (x, y): its four symmetry
/// checks (vertical and horizontal, each moving to the centre it finds, then both diagonals
/// over twice the range) and its spread test, exactly, without its final centre fit. Most
/// candidates in a frame's texture fail here, at a fraction of rxing's cost; those that pass
/// go to rxing's function, so the patterns are its own.
fn concentric(image: &BitMatrix, x: i32, y: i32, range: i32) -> bool {
    let (mut x, mut y) = (x, y);
    let (mut lo, mut hi) = (image.width() as i32, 0);
    for (d, r, update) in [
        ((0, 1), range, true),
        ((1, 0), range, true),
        ((1, 1), range * 2, false),
        ((1, -1), range * 2, false),
    ] {
        let Some((spread, shift)) = symmetric(image, x, y, d, r) else {
            return false;
        };
        (lo, hi) = (lo.min(spread), hi.max(spread));
        if update {
            (x, y) = (x + d.0 * shift, y + d.1 * shift);
        }
    }
    hi <= 5 * lo
}

/// The sets rxing's `GenerateFinderPatternSets` leaves out when a frame holds only a few finder
/// patterns (3 to 5): zxing-cpp (since 3.0) drops its size-ratio, leg-ratio and angle filters
/// there, and so reads symbols held at a steep angle, whose near finder pattern is over twice
/// the size of the far ones. Each remaining triple is ordered as rxing orders a set (the
/// longest side opposite the top-left, bottom-left and top-right by the cross product), kept if
/// its module count can be a QR symbol's, and the sets come in rxing's order of plausibility.
/// `patterns` are sorted by decreasing size (as rxing leaves them); `taken` are the sets rxing
/// made already.
pub fn few_pattern_sets(
    patterns: &[ConcentricPattern],
    taken: &[FinderPatternSet],
) -> Vec<FinderPatternSet> {
    let n = patterns.len();
    if !(3..=5).contains(&n) {
        return Vec::new();
    }
    // rxing's distance: scaled by the size ratio, a coarse correction for perspective.
    let sd = |a: &ConcentricPattern, b: &ConcentricPattern| {
        f64::from(ConcentricPattern::dot(*a - *b, *a - *b)) * f64::from(b.size)
            / f64::from(a.size.max(1))
    };
    let mut sets: Vec<(f64, FinderPatternSet)> = Vec::new();
    for i in 0..n - 2 {
        for j in i + 1..n - 1 {
            for k in j + 1..n {
                let (mut a, mut b, mut c) = (&patterns[k], &patterns[j], &patterns[i]);
                let (mut ab, mut bc, mut ac) = (sd(a, b), sd(b, c), sd(a, c));
                if bc >= ab && bc >= ac {
                    std::mem::swap(&mut a, &mut b);
                    std::mem::swap(&mut bc, &mut ac);
                } else if ab >= ac && ab >= bc {
                    std::mem::swap(&mut b, &mut c);
                    std::mem::swap(&mut ab, &mut ac);
                }
                let (ab, bc) = (ab.sqrt(), bc.sqrt());
                let modules = (ab + bc) / (2.0 * f64::from(a.size + b.size + c.size) / 21.0) + 7.0;
                if !(21.0 * 0.9..=177.0 * 1.5).contains(&modules) {
                    continue;
                }
                if ConcentricPattern::cross(*c - *b, *a - *b) < 0.0 {
                    std::mem::swap(&mut a, &mut c);
                }
                let set = FinderPatternSet {
                    bl: *a,
                    tl: *b,
                    tr: *c,
                };
                if !taken.iter().any(|t| {
                    corners([t.tl.p, t.tr.p, t.bl.p]) == corners([set.tl.p, set.tr.p, set.bl.p])
                }) {
                    sets.push((ab + bc + (ab - bc).abs(), set));
                }
            }
        }
    }
    sets.sort_by(|x, y| x.0.total_cmp(&y.0));
    sets.into_iter().map(|(_, s)| s).collect()
}

/// Three points in a fixed order whatever their roles: whether two sets hold the same patterns.
fn corners(points: [Point; 3]) -> [(u32, u32); 3] {
    let mut c = points.map(|p| (p.x.to_bits(), p.y.to_bits()));
    c.sort_unstable();
    c
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
                if concentric(image, p.x.floor() as i32, p.y.floor() as i32, range) {
                    if let Some(found) =
                        LocateConcentricPattern::<E2E, LEN, SUM>(image, &PATTERN.into(), p, range)
                    {
                        res.push(found);
                    }
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
        fn symmetry_checks_match_rxing(w in 1usize..60, h in 1usize..60, run in 1usize..6,
                                       bits in proptest::collection::vec(any::<bool>(), 97),
                                       x in 0usize..60, y in 0usize..60, d in 0usize..4,
                                       range in 1i32..200) {
            use rxing::common::cpp_essentials::{BitMatrixCursorTrait, CheckSymmetricPattern, EdgeTracer};
            // Blocks of `run` pixels, so that whole patterns occur as well as noise.
            let m = matrix(w, h, |x, y| bits[(x / run * 7 + y / run * 11) % bits.len()]);
            let (x, y) = (x.min(w - 1) as i32, y.min(h - 1) as i32);
            let dir = [(0, 1), (1, 0), (1, 1), (1, -1)][d];
            let mut cur = EdgeTracer::new(&m, point(x as f32, y as f32), point(dir.0 as f32, dir.1 as f32));
            let theirs = CheckSymmetricPattern::<E2E, LEN, SUM, _>(&mut cur, &PATTERN.into(), range, true);
            match symmetric(&m, x, y, dir, range) {
                None => prop_assert_eq!(theirs, 0),
                Some((spread, shift)) => {
                    prop_assert_eq!(theirs, spread);
                    prop_assert_eq!(cur.p(), point((x + dir.0 * shift) as f32, (y + dir.1 * shift) as f32));
                }
            }
        }

        #[test]
        fn few_pattern_sets_find_any_symbol_rxing_leaves_out(
            cx in 100f32..900.0, cy in 100f32..900.0, side in 60f32..600.0, turn in 0f32..360.0,
            base in 7i32..30, ratios in proptest::collection::vec(1f32..2.6, 3), noise in proptest::collection::vec((0f32..1000.0, 0f32..1000.0, 7i32..60), 0..3),
        ) {
            use rxing::qrcode::cpp_port::detector::GenerateFinderPatternSets;
            // The three finder patterns of a symbol, turned in the image plane, their sizes up to
            // 2.6 times apart (a steep perspective makes the near one over twice the far ones; far
            // beyond that rxing's size-scaled distances no longer tell the corners apart), among
            // a few others.
            let sizes: Vec<i32> = ratios.iter().map(|r| (base as f32 * r) as i32).collect();
            let (s, c) = turn.to_radians().sin_cos();
            let at = |u: f32, v: f32| point(cx + c * u - s * v, cy + s * u + c * v);
            let (tl, tr, bl) = (at(0.0, 0.0), at(side, 0.0), at(0.0, side));
            let mut fps: Vec<ConcentricPattern> = [tl, tr, bl].iter().zip(&sizes)
                .map(|(p, size)| ConcentricPattern { p: *p, size: *size }).collect();
            fps.extend(noise.iter().map(|(x, y, size)| ConcentricPattern { p: point(*x, *y), size: *size }));
            let sets = GenerateFinderPatternSets(&mut fps);
            let extra = few_pattern_sets(&fps, &sets);
            // Never a set rxing made already, and only the patterns given.
            for e in &extra {
                prop_assert!(!sets.contains(e));
                prop_assert!([e.tl, e.tr, e.bl].iter().all(|p| fps.contains(p)));
            }
            // The symbol's three patterns make a set, rxing's or ours, as long as its module count
            // can be a QR symbol's. (Which corner is which follows rxing's size-scaled distances,
            // which can misplace them when the sizes differ much; SampleQR then fails.)
            let modules = 2.0 * side / ((sizes.iter().sum::<i32>() as f32) * 2.0 / 21.0) + 7.0;
            if modules > 21.0 && modules < 170.0 {
                let want = corners([tl, tr, bl]);
                prop_assert!(sets.iter().chain(&extra).any(|f| corners([f.tl.p, f.tr.p, f.bl.p]) == want), "{:?}", (sets.len(), extra.len()));
            }
        }

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
    fn a_steep_symbol_rxing_leaves_out_gets_a_set() {
        use rxing::qrcode::cpp_port::detector::GenerateFinderPatternSets;
        // The finder patterns of a generated camera frame (perspective/720p, frame 1): the near
        // bottom-left pattern is almost twice the far ones, the far side half the near one.
        let fp = |x: f32, y: f32, size: i32| ConcentricPattern {
            p: point(x, y),
            size,
        };
        let mut fps = vec![
            fp(650.0, 150.0, 22),
            fp(815.0, 237.0, 23),
            fp(431.0, 418.0, 42),
        ];
        let sets = GenerateFinderPatternSets(&mut fps);
        assert!(sets.is_empty());
        let extra = few_pattern_sets(&fps, &sets);
        assert_eq!(extra.len(), 1);
        assert_eq!(
            (extra[0].tl.p, extra[0].tr.p, extra[0].bl.p),
            (
                point(650.0, 150.0),
                point(815.0, 237.0),
                point(431.0, 418.0)
            )
        );
        // Six patterns: rxing's filters stay, as in zxing-cpp.
        fps.extend([fp(10.0, 10.0, 9), fp(30.0, 10.0, 9), fp(10.0, 30.0, 9)]);
        assert!(few_pattern_sets(&fps, &[]).is_empty());
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
