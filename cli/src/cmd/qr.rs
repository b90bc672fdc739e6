use std::path::PathBuf;

use evoucher_core::qr;

use crate::util::{self, io_err, CliError, Outcome};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write a PNG.
    #[arg(long)]
    png: Option<PathBuf>,
    /// Write an SVG.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Pixels per module in the PNG.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u16).range(1..=40))]
    scale: u16,
    /// Print one JSON object (what was written, the QR version and size).
    #[arg(long)]
    json: bool,
    /// The voucher text (or any text), or - for standard input.
    text: String,
}

/// Render a text as a QR code (level M, quiet zone 4), e.g. a voucher issued by the server.
pub fn run(a: Args) -> Result<Outcome, CliError> {
    let text = util::read_text(&a.text)?;
    let sym = qr::symbol(&text)?;
    if let Some(p) = &a.png {
        std::fs::write(p, sym.png(usize::from(a.scale))?)
            .map_err(io_err(format!("writing {}", p.display())))?;
    }
    if let Some(p) = &a.svg {
        std::fs::write(p, sym.svg()).map_err(io_err(format!("writing {}", p.display())))?;
    }
    if a.json {
        util::print_json(
            &serde_json::json!({"version": sym.version, "modules": sym.width, "characters": text.len()}),
        );
    } else if a.png.is_none() && a.svg.is_none() {
        // Terminal rendering: two modules per character row.
        let w = sym.width + 8;
        let at = |x: usize, y: usize| {
            x >= 4 && y >= 4 && x < w - 4 && y < w - 4 && sym.modules[(y - 4) * sym.width + (x - 4)]
        };
        for y in (0..w).step_by(2) {
            let line: String = (0..w)
                .map(|x| match (at(x, y), y + 1 < w && at(x, y + 1)) {
                    (true, true) => ' ',
                    (true, false) => '▄',
                    (false, true) => '▀',
                    (false, false) => '█',
                })
                .collect();
            println!("{line}");
        }
    } else {
        println!(
            "QR version {} ({}×{} modules)",
            sym.version, sym.width, sym.width
        );
    }
    Ok(Outcome::Ok)
}
