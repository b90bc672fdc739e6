use std::path::PathBuf;

use base64::Engine;
use evoucher_core::scan::{scan_file, Code, ScanOptions};

use crate::util::{self, CliError, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object per line per file (the default output for scripts).
    #[arg(long)]
    json: bool,
    /// Time budget per image, in milliseconds.
    #[arg(long, default_value_t = 200)]
    budget_ms: u64,
    /// Read a webcam instead of files (build with `--features camera`); optional device index.
    #[arg(long, num_args = 0..=1, default_missing_value = "0", value_name = "INDEX")]
    camera: Option<u32>,
    /// Image files (PNG, JPEG, WebP).
    #[arg(required_unless_present = "camera")]
    files: Vec<PathBuf>,
}

pub fn code_json(c: &Code) -> serde_json::Value {
    serde_json::json!({
        "text": c.text,
        "bytes_b64": base64::engine::general_purpose::STANDARD.encode(&c.bytes),
        "corners": c.corners.iter().map(|(x, y)| [*x, *y]).collect::<Vec<_>>(),
    })
}

/// Exit 0 when every file held at least one code, 1 when a file held none, 2 when a file could
/// not be read or decoded (that file's line carries `error`; the others are still scanned).
pub fn run(a: Args) -> Result<Outcome, CliError> {
    let opts = ScanOptions {
        budget: std::time::Duration::from_millis(a.budget_ms),
        retry: true,
    };
    if let Some(index) = a.camera {
        return camera(index, opts, a.json);
    }
    let mut outcome = Outcome::Ok;
    for f in &a.files {
        let name = f.display().to_string();
        match scan_file(f, &opts) {
            Ok(codes) => {
                if codes.is_empty() && outcome == Outcome::Ok {
                    outcome = Outcome::Refused;
                }
                if a.json {
                    util::print_json(&serde_json::json!({
                        "file": name, "codes": codes.iter().map(code_json).collect::<Vec<_>>(),
                    }));
                } else {
                    println!(
                        "{name}: {} code{}",
                        codes.len(),
                        if codes.len() == 1 { "" } else { "s" }
                    );
                    for c in &codes {
                        match &c.text {
                            Some(t) => println!("  {t}"),
                            None => println!("  ({} bytes, not text)", c.bytes.len()),
                        }
                    }
                }
            }
            Err(e) => {
                outcome = Outcome::Error;
                if a.json {
                    util::print_json(&serde_json::json!({"file": name, "error": e.to_string()}));
                } else {
                    println!("{name}: error: {e}");
                }
            }
        }
    }
    Ok(outcome)
}

#[cfg(not(feature = "camera"))]
fn camera(_index: u32, _opts: ScanOptions, _json: bool) -> Result<Outcome, CliError> {
    Err(util::usage(
        "this build has no camera support: rebuild with `cargo build -p evoucher --features camera`",
    ))
}

#[cfg(feature = "camera")]
fn camera(index: u32, opts: ScanOptions, json: bool) -> Result<Outcome, CliError> {
    use evoucher_core::scan::{Fed, Frame, Rotation, ScanSession};
    use nokhwa::pixel_format::LumaFormat;
    use nokhwa::utils::{CameraIndex, RequestedFormat, RequestedFormatType};

    let fmt = RequestedFormat::new::<LumaFormat>(RequestedFormatType::AbsoluteHighestFrameRate);
    let mut cam = nokhwa::Camera::new(CameraIndex::Index(index), fmt)
        .map_err(|e| util::usage(format!("camera {index}: {e}")))?;
    cam.open_stream()
        .map_err(|e| util::usage(format!("camera {index}: {e}")))?;
    eprintln!("scanning camera {index}; Ctrl-C to stop");
    let session = ScanSession::new(opts, 15);
    loop {
        let buf = cam
            .frame()
            .map_err(|e| util::usage(format!("camera: {e}")))?;
        let img = buf
            .decode_image::<LumaFormat>()
            .map_err(|e| util::usage(format!("camera frame: {e}")))?;
        let (w, h) = (img.width() as usize, img.height() as usize);
        let frame = Frame::new(w, h, w, img.as_raw(), Rotation::R0);
        if let Ok(Fed::New(codes)) = session.feed(&frame) {
            for c in &codes {
                if json {
                    util::print_json(&code_json(c));
                } else {
                    println!("{}", c.text.as_deref().unwrap_or("(binary)"));
                }
            }
        }
    }
}
