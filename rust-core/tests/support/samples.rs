//! The public QR samples in `../shared/qr-samples` and their ground truth, and one scorer for
//! every decoder (ours in the tests; ours and zxing-cpp in `scripts/bench-scan.sh`).
//!
//! - zxing / zxing-cpp sets: `NAME.txt` (expected text) or `NAME.bin` (expected bytes); a pass is
//!   a decoded code equal to it. zxing-cpp `qrcode-7` is structured append: each image holds
//!   part of `01.txt`, so a pass is a decoded text that is a non-empty part of it.
//! - `zxing-multi-qrcode-1/expected.json`: four texts in one image, one pass each.
//! - BoofCV: `imageNNN.txt` holds each code's outline; a code is read when a decoded code's
//!   centre lies inside it.
//! - false-positive sets: every reported code is a false positive.
//! - Micro QR and rMQR sets are other symbologies: listed, not scored.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub enum Truth {
    Exact(Vec<u8>),
    Multi(Vec<String>),
    Part(String),
    Outlines(Vec<[(f32, f32); 4]>),
    NoCode,
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub set: String,
    pub path: PathBuf,
    pub truth: Truth,
}

/// What a decoder reported for one code.
#[derive(Debug, Clone)]
pub struct Found {
    pub bytes: Vec<u8>,
    pub text: Option<String>,
    pub centre: (f32, f32),
}

pub fn root() -> PathBuf {
    std::env::var_os("EVOUCHER_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("qr-samples")
}

fn is_image(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("png" | "jpg" | "jpeg" | "webp" | "gif")
    )
}

fn outlines(txt: &str) -> Vec<[(f32, f32); 4]> {
    // Two layouts: after a `SETS` line, one code per line (8 numbers); without it, one corner
    // per line (2 numbers), four lines per code.
    let nums: Vec<f32> = txt
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && *l != "SETS")
        .flat_map(|l| {
            l.split_whitespace()
                .filter_map(|x| x.parse::<f32>().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    nums.chunks_exact(8)
        .map(|v| [(v[0], v[1]), (v[2], v[3]), (v[4], v[5]), (v[6], v[7])])
        .collect()
}

/// Every scored sample, sorted by set and file.
pub fn load() -> Vec<Sample> {
    let root = root();
    let mut sets: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    sets.sort();
    let mut out = Vec::new();
    for dir in sets {
        let set = dir.file_name().unwrap().to_string_lossy().into_owned();
        if set.contains("microqr") || set.contains("rmqr") {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| is_image(p))
            .collect();
        files.sort();
        let multi: Option<serde_json::Value> = std::fs::read_to_string(dir.join("expected.json"))
            .ok()
            .map(|s| serde_json::from_str(&s).unwrap());
        for path in files {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let truth = if set.contains("falsepositives") {
                Truth::NoCode
            } else if let Some(m) = &multi {
                Truth::Multi(
                    m[&name]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_owned())
                        .collect(),
                )
            } else if set.starts_with("boofcv") {
                Truth::Outlines(outlines(
                    &std::fs::read_to_string(dir.join(format!("{stem}.txt"))).unwrap(),
                ))
            } else if set == "zxingcpp-qrcode-7" {
                let group = stem.split('-').next().unwrap();
                Truth::Part(std::fs::read_to_string(dir.join(format!("{group}.txt"))).unwrap())
            } else if let Ok(b) = std::fs::read(dir.join(format!("{stem}.bin"))) {
                Truth::Exact(b)
            } else if let Ok(b) = std::fs::read(dir.join(format!("{stem}.txt"))) {
                Truth::Exact(b)
            } else {
                continue;
            };
            out.push(Sample {
                set: set.clone(),
                path,
                truth,
            });
        }
    }
    out
}

fn inside(p: (f32, f32), poly: &[(f32, f32); 4]) -> bool {
    // Ray casting; works for any simple quadrilateral in either winding.
    let mut c = false;
    let mut j = 3;
    for i in 0..4 {
        let (xi, yi) = poly[i];
        let (xj, yj) = poly[j];
        if ((yi > p.1) != (yj > p.1)) && (p.0 < (xj - xi) * (p.1 - yi) / (yj - yi) + xi) {
            c = !c;
        }
        j = i;
    }
    c
}

/// (passed, total, false positives) for one image.
pub fn score(s: &Sample, found: &[Found]) -> (usize, usize, usize) {
    let (hits, fp) = hits(s, found);
    (hits.iter().filter(|h| **h).count(), hits.len(), fp)
}

/// Which of the image's expected codes were read (one flag per code), and the false
/// positives. Per code, so that two decoders' reads can be united.
pub fn hits(s: &Sample, found: &[Found]) -> (Vec<bool>, usize) {
    let text_eq =
        |f: &Found, t: &[u8]| f.bytes == t || f.text.as_deref().map(str::as_bytes) == Some(t);
    match &s.truth {
        Truth::NoCode => (Vec::new(), found.len()),
        Truth::Exact(t) => (vec![found.iter().any(|f| text_eq(f, t))], 0),
        Truth::Multi(ts) => (
            ts.iter()
                .map(|t| found.iter().any(|f| text_eq(f, t.as_bytes())))
                .collect(),
            0,
        ),
        Truth::Part(whole) => (
            vec![found.iter().any(|f| {
                f.text
                    .as_deref()
                    .is_some_and(|t| !t.is_empty() && whole.contains(t))
            })],
            0,
        ),
        Truth::Outlines(polys) => (
            polys
                .iter()
                .map(|p| found.iter().any(|f| inside(f.centre, p)))
                .collect(),
            0,
        ),
    }
}

/// The report groups of a set: itself, and its family.
pub fn family(set: &str) -> &'static str {
    if set.starts_with("boofcv") {
        "BoofCV"
    } else if set.starts_with("zxingcpp-falsepositives") {
        "false positives"
    } else if set.starts_with("zxingcpp") {
        "zxing-cpp sets"
    } else {
        "zxing sets"
    }
}
