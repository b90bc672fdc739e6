//! The camera-stream benchmark (scripts/bench-stream.sh): sequences of 720p and 1080p Y-plane
//! frames (row padding included) showing our EV1 voucher and OpenG2P's 924-character JWT
//! voucher under motion blur, defocus, perspective, low light with sensor noise, glare, a
//! screen (moiré) and JPEG artefacts, made by the deterministic generator in `gen.rs`.
//!
//! - `scan_stream run [--per-frame N] [--label L]`: feed every sequence through a
//!   `ScanSession` as the app does (one session per sequence) and print one JSON line per
//!   frame: {"decoder", "seq", "frame", "ms", "read", "wrong"}.
//! - `scan_stream emit`: write every frame to standard output for a peer: a JSON header line
//!   {"seq", "frame", "width", "height", "stride", "expected_b64"} and then `stride * height`
//!   bytes.
//! - `scan_stream score A.jsonl B.jsonl ...`: per scene and resolution, frames until the first
//!   correct read, share of frames read, wrong reads, median and p95 ms per frame.
//! - `scan_stream png DIR`: one frame per scene (the first, hardest) as PNG, for looking at.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gen;
#[path = "../../benches/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::Instant;

use base64::Engine;
use evoucher_core::keys::IssuerKey;
use evoucher_core::scan::{Frame, Rotation, ScanOptions, ScanSession};

struct Payload {
    name: &'static str,
    text: String,
    modules: Vec<bool>,
    n: usize,
}

fn payloads() -> Vec<Payload> {
    let key = IssuerKey::from_seed([7; 32]);
    let ev1 = support::scan_voucher_text(&key);
    let shared = std::env::var_os("EVOUCHER_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared")
        });
    let jwt = std::fs::read_to_string(shared.join("openg2p/entitlement-voucher-qr-code.txt"))
        .expect("../shared/openg2p/entitlement-voucher-qr-code.txt")
        .trim()
        .to_owned();
    [("ev1", ev1), ("jwt", jwt)]
        .into_iter()
        .map(|(name, text)| {
            let s = evoucher_core::qr::symbol(&text).unwrap();
            Payload {
                name,
                n: s.width,
                modules: s.modules,
                text,
            }
        })
        .collect()
}

/// One sequence: a scene at one resolution with one payload.
struct Sequence {
    /// "scene/resolution/payload".
    name: String,
    scene: &'static str,
    /// (width, height, row stride).
    res: (usize, usize, usize),
    payload: usize,
    seed: u64,
}

impl Sequence {
    /// Frame `i` of the sequence.
    fn frame(&self, pays: &[Payload], i: usize) -> gen::Frame {
        let p = &pays[self.payload];
        gen::frame(self.scene, self.res, &p.modules, p.n, i, self.seed)
    }
}

/// Every sequence.
fn sequences() -> Vec<Sequence> {
    let mut out = Vec::new();
    for (si, scene) in gen::SCENES.iter().enumerate() {
        for (ri, (rname, w, h, stride)) in gen::RESOLUTIONS.iter().enumerate() {
            for (pi, p) in ["ev1", "jwt"].iter().enumerate() {
                out.push(Sequence {
                    name: format!("{scene}/{rname}/{p}"),
                    scene,
                    res: (*w, *h, *stride),
                    payload: pi,
                    seed: 0xE5_0C4E_u64 ^ ((si as u64) << 16) ^ ((ri as u64) << 8) ^ pi as u64,
                });
            }
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("emit") => emit(),
        Some("score") => score(&args[1..]),
        Some("png") => png(&args[1..]),
        _ => {
            eprintln!("usage: scan_stream run [--per-frame N] [--label L] | emit | score FILES... | png DIR");
            std::process::exit(2);
        }
    }
}

fn run(args: &[String]) {
    let mut per_frame = None;
    let mut label = "ours".to_owned();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--per-frame" => per_frame = Some(it.next().unwrap().parse::<usize>().unwrap()),
            "--label" => label = it.next().unwrap().clone(),
            _ => panic!("unknown argument {a}"),
        }
    }
    let pays = payloads();
    let out = std::io::stdout();
    let mut out = out.lock();
    for seq in sequences() {
        let p = &pays[seq.payload];
        let mut session = ScanSession::new(ScanOptions::default(), 15);
        if let Some(k) = per_frame {
            session = session.ladder_per_frame(k);
        }
        for i in 0..gen::FRAMES {
            let f = seq.frame(&pays, i);
            let frame = Frame::new(f.width, f.height, f.stride, &f.y, Rotation::R90);
            let t = Instant::now();
            session.feed(&frame).unwrap();
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let seen = session.in_view();
            let read = seen.iter().any(|b| b == p.text.as_bytes());
            let wrong = seen.iter().any(|b| b != p.text.as_bytes());
            writeln!(
                out,
                "{}",
                serde_json::json!({"decoder": label, "seq": seq.name, "frame": i, "ms": ms, "read": read, "wrong": wrong})
            )
            .unwrap();
        }
    }
}

fn emit() {
    let pays = payloads();
    let out = std::io::stdout();
    let mut out = out.lock();
    for seq in sequences() {
        let p = &pays[seq.payload];
        for i in 0..gen::FRAMES {
            let f = seq.frame(&pays, i);
            let head = serde_json::json!({"seq": seq.name, "frame": i, "width": f.width, "height": f.height, "stride": f.stride,
                "expected_b64": base64::engine::general_purpose::STANDARD.encode(p.text.as_bytes())});
            writeln!(out, "{head}").unwrap();
            out.write_all(&f.y).unwrap();
        }
    }
}

fn png(args: &[String]) {
    let dir = std::path::PathBuf::from(args.first().expect("png DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let pays = payloads();
    for seq in sequences().iter().filter(|s| s.name.contains("720p")) {
        for i in [0, gen::FRAMES - 1] {
            let f = seq.frame(&pays, i);
            let mut px = Vec::with_capacity(f.width * f.height);
            for y in 0..f.height {
                px.extend_from_slice(&f.y[y * f.stride..y * f.stride + f.width]);
            }
            let img = image::GrayImage::from_raw(f.width as u32, f.height as u32, px).unwrap();
            img.save(dir.join(format!("{}-{i:02}.png", seq.name.replace('/', "-"))))
                .unwrap();
        }
    }
    eprintln!(
        "payload sizes: {}",
        pays.iter()
            .map(|p| format!("{} {} chars, {}×{} modules", p.name, p.text.len(), p.n, p.n))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

#[derive(Default)]
struct Seq {
    first: Option<usize>,
    read: usize,
    wrong: usize,
    frames: usize,
    ms: Vec<f64>,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn score(files: &[String]) {
    // decoder -> group -> sequences
    let mut labels: Vec<String> = Vec::new();
    let mut data: BTreeMap<String, BTreeMap<String, Seq>> = BTreeMap::new();
    for f in files {
        for line in std::io::BufReader::new(std::fs::File::open(f).unwrap()).lines() {
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            let d = v["decoder"].as_str().unwrap().to_owned();
            if !labels.contains(&d) {
                labels.push(d.clone());
            }
            let s = data
                .entry(d)
                .or_default()
                .entry(v["seq"].as_str().unwrap().to_owned())
                .or_default();
            let i = v["frame"].as_u64().unwrap() as usize;
            s.frames += 1;
            s.ms.push(v["ms"].as_f64().unwrap());
            if v["read"].as_bool().unwrap() {
                s.read += 1;
                s.first = Some(s.first.map_or(i, |f| f.min(i)));
            }
            if v["wrong"].as_bool().unwrap() {
                s.wrong += 1;
            }
        }
    }
    // Groups: each scene/res (both payloads), each resolution, and the total.
    let seqs: Vec<String> = data[&labels[0]].keys().cloned().collect();
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for scene in gen::SCENES {
        for (r, ..) in gen::RESOLUTIONS {
            let key = format!("{scene}/{r}");
            let members: Vec<String> = seqs
                .iter()
                .filter(|s| s.starts_with(&format!("{key}/")))
                .cloned()
                .collect();
            groups.push((key, members));
        }
    }
    // The totals leave out the empty scene (nothing to read there; its time is its own line).
    let coded = |s: &&String| !s.starts_with("empty/");
    for (r, ..) in gen::RESOLUTIONS {
        groups.push((
            format!("= all {r}"),
            seqs.iter()
                .filter(coded)
                .filter(|s| s.contains(&format!("/{r}/")))
                .cloned()
                .collect(),
        ));
    }
    groups.push((
        "== total".into(),
        seqs.iter().filter(coded).cloned().collect(),
    ));

    println!(
        "Frames until the first correct read (per payload: ev1 jwt; - = never), share of frames read, wrong reads, ms per frame (median / p95)."
    );
    print!("{:<20}", "scene/resolution");
    for l in &labels {
        print!(" | {:<40}", format!("{l}: first  read  wrong  med/p95 ms"));
    }
    println!();
    for (g, members) in groups {
        print!("{g:<20}");
        for l in &labels {
            let d = &data[l];
            let mut ms = Vec::new();
            let (mut read, mut frames, mut wrong) = (0, 0, 0);
            let mut firsts = Vec::new();
            for m in &members {
                let s = &d[m];
                ms.extend_from_slice(&s.ms);
                read += s.read;
                frames += s.frames;
                wrong += s.wrong;
                firsts.push(s.first.map_or("-".to_owned(), |f| (f + 1).to_string()));
            }
            let first = if members.len() <= 2 {
                firsts.join(" ")
            } else {
                let got: Vec<usize> = members.iter().filter_map(|m| d[m].first).collect();
                format!("{}/{} seq", got.len(), members.len())
            };
            let med = pct(&mut ms, 0.5);
            let p95 = pct(&mut ms, 0.95);
            print!(
                " | {:<11} {:>4.0}% {:>5}  {:>6.1}/{:<6.1}",
                first,
                100.0 * read as f64 / frames.max(1) as f64,
                wrong,
                med,
                p95
            );
        }
        println!();
    }
}
