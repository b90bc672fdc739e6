//! Scan every sample in ../shared/qr-samples with our scanner and print one JSON line per
//! image (`{"file", "codes": [{"text", "bytes_b64", "centre"}], "ms"}`), or, with `--score
//! FILE.jsonl [LABEL]`, score such lines (ours or another decoder's) against the ground truth
//! and print a table per set. Used by scripts/bench-scan.sh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/samples.rs"]
mod samples;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::Instant;

use base64::Engine;
use evoucher_core::scan::{decode_image, scan, Frame, Rotation, ScanOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        for s in samples::load() {
            println!("{}", s.path.display());
        }
        return;
    }
    if args.first().map(String::as_str) == Some("--score") {
        return score(&args[1..]);
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    for s in samples::load() {
        // Time the scan only, not reading and decoding the image file (as for zxing-cpp).
        let img = std::fs::read(&s.path)
            .ok()
            .and_then(|b| decode_image(&b).ok());
        let t = Instant::now();
        let r = img
            .as_ref()
            .map(|g| {
                let (w, h) = (g.width() as usize, g.height() as usize);
                scan(
                    &Frame::new(w, h, w, g.as_raw(), Rotation::R0),
                    &ScanOptions::default(),
                )
            })
            .unwrap_or(Ok(Vec::new()));
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let codes: Vec<serde_json::Value> = r
            .unwrap_or_default()
            .iter()
            .map(|c| {
                serde_json::json!({"text": c.text, "bytes_b64": base64::engine::general_purpose::STANDARD.encode(&c.bytes), "centre": [c.centre().0, c.centre().1]})
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({"file": s.path.display().to_string(), "codes": codes, "ms": ms})
        )
        .unwrap();
    }
}

#[derive(Default, Clone)]
pub struct Tally {
    pub passed: usize,
    pub total: usize,
    pub false_pos: usize,
    pub ms: Vec<f64>,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Score JSONL result files: `--score ours.jsonl [theirs.jsonl]`.
fn score(files: &[String]) {
    let samples: BTreeMap<String, samples::Sample> = samples::load()
        .into_iter()
        .map(|s| (s.path.display().to_string(), s))
        .collect();
    let mut tables: Vec<BTreeMap<String, Tally>> = Vec::new();
    for f in files {
        let mut t: BTreeMap<String, Tally> = BTreeMap::new();
        for line in std::io::BufReader::new(std::fs::File::open(f).unwrap()).lines() {
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            let Some(s) = samples.get(v["file"].as_str().unwrap()) else {
                continue;
            };
            let found: Vec<samples::Found> = v["codes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| samples::Found {
                    bytes: base64::engine::general_purpose::STANDARD
                        .decode(c["bytes_b64"].as_str().unwrap_or(""))
                        .unwrap_or_default(),
                    text: c["text"].as_str().map(str::to_owned),
                    centre: (
                        c["centre"][0].as_f64().unwrap_or(-1.0) as f32,
                        c["centre"][1].as_f64().unwrap_or(-1.0) as f32,
                    ),
                })
                .collect();
            let (p, n, fp) = samples::score(s, &found);
            let ms = v["ms"].as_f64().unwrap_or(0.0);
            for key in [
                s.set.clone(),
                format!("= {}", samples::family(&s.set)),
                "== total".into(),
            ] {
                let e = t.entry(key).or_default();
                e.passed += p;
                e.total += n;
                e.false_pos += fp;
                e.ms.push(ms);
            }
        }
        tables.push(t);
    }
    let labels = ["ours", "zxing-cpp"];
    print!("{:<28}", "set");
    for l in labels.iter().take(tables.len()) {
        print!(
            " | {:>22} {:>7} {:>7}",
            format!("{l} read"),
            "med ms",
            "mean ms"
        );
    }
    if tables.len() == 2 {
        print!(" | {:>6} {:>6}", "read×", "time×");
    }
    println!();
    let mut keys: Vec<String> = tables[0].keys().cloned().collect();
    keys.sort_by_key(|k| (k.starts_with("=="), k.starts_with('='), k.clone()));
    for k in keys {
        print!("{k:<28}");
        let mut meds = Vec::new();
        let mut reads = Vec::new();
        for t in &tables {
            let mut e = t.get(&k).cloned().unwrap_or_default();
            let read = if e.total > 0 {
                format!(
                    "{}/{} ({:.0}%)",
                    e.passed,
                    e.total,
                    100.0 * e.passed as f64 / e.total as f64
                )
            } else {
                format!("{} false pos.", e.false_pos)
            };
            let mean = e.ms.iter().sum::<f64>() / e.ms.len().max(1) as f64;
            let med = median(&mut e.ms);
            print!(" | {read:>22} {med:>7.2} {mean:>7.2}");
            meds.push(med);
            reads.push(e.passed as f64);
        }
        if tables.len() == 2 {
            print!(
                " | {:>6.2} {:>6.2}",
                reads[0] / reads[1].max(1.0),
                meds[0] / meds[1].max(1e-9)
            );
        }
        println!();
    }
}
