//! Scan every sample in ../shared/qr-samples with our scanner and print one JSON line per
//! image (`{"file", "codes": [{"text", "bytes_b64", "centre"}], "ms"}`), or, with `--score
//! ours.jsonl[:LABEL] peer.jsonl[:LABEL]...`, score such lines (ours and other decoders')
//! against the ground truth and print a table per set; `--list` prints the sample paths and
//! `--grey DIR` writes them as the grey PGMs we scan. Used by scripts/bench-scan.sh.
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
    if args.first().map(String::as_str) == Some("--grey") {
        // Every sample as the 8-bit grey pixels we scan, written as binary PGM into DIR, one
        // "PGM<TAB>ORIGINAL" line each: the same pixels for a peer that cannot read every
        // format (BoofCV through ImageIO has no WebP).
        let dir = std::path::PathBuf::from(args.get(1).expect("--grey DIR"));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in samples::load().into_iter().enumerate() {
            let Some(g) = std::fs::read(&s.path)
                .ok()
                .and_then(|b| decode_image(&b).ok())
            else {
                continue;
            };
            let pgm = dir.join(format!("{i:04}.pgm"));
            let mut data = format!("P5\n{} {}\n255\n", g.width(), g.height()).into_bytes();
            data.extend_from_slice(g.as_raw());
            std::fs::write(&pgm, data).unwrap();
            println!("{}\t{}", pgm.display(), s.path.display());
        }
        return;
    }
    if args.first().map(String::as_str) == Some("--score") {
        return score(&args[1..]);
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    // EVOUCHER_SCAN_BUDGET_MS: another budget (to count what a pipeline reads apart from the
    // machine's load; the benchmark uses the default).
    let mut opts = ScanOptions::default();
    if let Some(ms) = std::env::var("EVOUCHER_SCAN_BUDGET_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.budget = std::time::Duration::from_millis(ms);
    }
    let repeat: usize = std::env::var("EVOUCHER_BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    for s in samples::load() {
        // Time the scan only, not reading and decoding the image file (as for zxing-cpp).
        let img = std::fs::read(&s.path)
            .ok()
            .and_then(|b| decode_image(&b).ok());
        // EVOUCHER_BENCH_REPEAT=N scans N times and reports the fastest, with the codes of the
        // first scan (the budget could end a later one at another step).
        let mut r = None;
        let mut ms = f64::INFINITY;
        for _ in 0..repeat {
            let t = Instant::now();
            let this = img
                .as_ref()
                .map(|g| {
                    let (w, h) = (g.width() as usize, g.height() as usize);
                    scan(&Frame::new(w, h, w, g.as_raw(), Rotation::R0), &opts)
                })
                .unwrap_or(Ok(Vec::new()));
            ms = ms.min(t.elapsed().as_secs_f64() * 1000.0);
            r.get_or_insert(this);
        }
        let r = r.unwrap_or(Ok(Vec::new()));
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

/// One decoder's results: per image file, (hits per expected code, false positives, ms).
type Results = BTreeMap<String, (Vec<bool>, usize, f64)>;

fn read_results(path: &str, samples: &BTreeMap<String, samples::Sample>) -> Results {
    let mut r = Results::new();
    for line in std::io::BufReader::new(std::fs::File::open(path).unwrap()).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let file = v["file"].as_str().unwrap();
        let Some(s) = samples.get(file) else {
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
        let (hits, fp) = samples::hits(s, &found);
        r.insert(file.to_owned(), (hits, fp, v["ms"].as_f64().unwrap_or(0.0)));
    }
    r
}

/// Score JSONL result files: `--score ours.jsonl[:LABEL] [peer.jsonl[:LABEL] ...]`. The first
/// is ours; with peers, the table adds ours/first peer (read× and median time×) and, with two
/// or more peers, the codes read by either peer and by any decoder.
fn score(args: &[String]) {
    let samples: BTreeMap<String, samples::Sample> = samples::load()
        .into_iter()
        .map(|s| (s.path.display().to_string(), s))
        .collect();
    let default_labels = ["ours", "zxing-cpp", "BoofCV"];
    let mut labels = Vec::new();
    let mut results = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let (file, label) = match a.rsplit_once(':') {
            Some((f, l)) if !l.contains('/') => (f.to_owned(), l.to_owned()),
            _ => (
                a.clone(),
                default_labels.get(i).unwrap_or(&"peer").to_string(),
            ),
        };
        results.push(read_results(&file, &samples));
        labels.push(label);
    }
    // Per report group: per decoder (hits, total, false positives, times), then union counts.
    #[derive(Default, Clone)]
    struct Group {
        per: Vec<Tally>,
        either_peer: usize,
        any: usize,
    }
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (file, s) in &samples {
        let keys = [
            s.set.clone(),
            format!("= {}", samples::family(&s.set)),
            "== total".to_owned(),
        ];
        let n = match &s.truth {
            samples::Truth::NoCode => 0,
            samples::Truth::Exact(_) | samples::Truth::Part(_) => 1,
            samples::Truth::Multi(v) => v.len(),
            samples::Truth::Outlines(v) => v.len(),
        };
        let empty = (vec![false; n], 0usize, 0.0f64);
        let per: Vec<&(Vec<bool>, usize, f64)> = results
            .iter()
            .map(|r| r.get(file).unwrap_or(&empty))
            .collect();
        let (mut either_peer, mut any) = (0, 0);
        for i in 0..n {
            let peer = per.iter().skip(1).any(|p| p.0.get(i) == Some(&true));
            // Codes a peer read and ours did not, for looking at (stderr).
            if peer && per[0].0.get(i) != Some(&true) {
                let who: Vec<&str> = per
                    .iter()
                    .enumerate()
                    .skip(1)
                    .filter(|(_, p)| p.0.get(i) == Some(&true))
                    .map(|(j, _)| labels.get(j).map(|s| s.as_str()).unwrap_or("?"))
                    .collect();
                eprintln!("MISSED {file} #{i} {who:?}");
            }
            either_peer += usize::from(peer);
            any += usize::from(peer || per[0].0.get(i) == Some(&true));
        }
        for k in &keys {
            let g = groups.entry(k.clone()).or_default();
            g.per.resize(per.len(), Tally::default());
            for (t, p) in g.per.iter_mut().zip(&per) {
                t.passed += p.0.iter().filter(|h| **h).count();
                t.total += n;
                t.false_pos += p.1;
                t.ms.push(p.2);
            }
            g.either_peer += either_peer;
            g.any += any;
        }
    }
    print!("{:<28}", "set");
    for l in &labels {
        print!(
            " | {:>20} {:>7} {:>7}",
            format!("{l} read"),
            "med ms",
            "mean ms"
        );
    }
    if labels.len() >= 2 {
        print!(" | {:>6} {:>6}", "read×", "time×");
    }
    if labels.len() >= 3 {
        print!(" | {:>11} {:>9}", "either peer", "any");
    }
    println!();
    let mut keys: Vec<String> = groups.keys().cloned().collect();
    keys.sort_by_key(|k| (k.starts_with("=="), k.starts_with('='), k.clone()));
    for k in keys {
        let g = &groups[&k];
        print!("{k:<28}");
        let mut meds = Vec::new();
        for t in &g.per {
            let mut e = t.clone();
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
            print!(" | {read:>20} {med:>7.2} {mean:>7.2}");
            meds.push(med);
        }
        if g.per.len() >= 2 {
            print!(
                " | {:>6.2} {:>6.2}",
                g.per[0].passed as f64 / (g.per[1].passed as f64).max(1.0),
                meds[0] / meds[1].max(1e-9)
            );
        }
        if g.per.len() >= 3 && g.per[0].total > 0 {
            print!(" | {:>11} {:>9}", g.either_peer, g.any);
        }
        println!();
    }
}
