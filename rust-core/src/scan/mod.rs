//! Scanning: every QR code in a camera frame or an image, in pure Rust.
//!
//! The pipeline (see `docs/scanning.md` for the numbers behind each choice):
//! 1. rxing's port of zxing-cpp's QR reader (finder patterns found in any orientation, local
//!    "hybrid" binarisation, alignment-pattern sampling for high versions), try-harder, all
//!    symbols in the frame. The binarisations and the finder-pattern search are ours
//!    (`binarize`, `finder`: the same bits and patterns as rxing's, several times faster);
//! 2. when that finds nothing, a retry ladder within the time budget: on small frames, the
//!    frame enlarged ×2 (codes of about two pixels a module); a global-histogram binariser, the
//!    frame reduced ×3 and ×6 (blurred and noisy photos and photos of screens read better
//!    smaller), rqrr (a different detector that wins on some perspective and rotation cases),
//!    the mirrored image, reduced ×4, the inverted image. The first pass's count of finder
//!    patterns gates four of them: rqrr and the global histogram need one, the mirrored read
//!    two, the enlargement three; a frame with nothing finder-shaped in it skips them (most
//!    frames without a code);
//! 3. a second look at the copy reduced ×2, hybrid and global histogram (one binarisation
//!    rarely suits every code): after a retry step read two codes or more (one or more on a
//!    photo of a megapixel or more), or after the first pass when it left finder patterns
//!    that no code read explains;
//! 4. after the first pass, a retry step that reads nothing, and the second look: each symbol
//!    whose three finder patterns were found but that did not decode, read again in a crop of
//!    the frame around it (`crops`; `scan` only).
//!
//! A [`ScanSession`] (camera streams) spreads the ladder over frames, two steps a frame, and
//! tries first the step that read last; it reads no crops.
//!
//! Every decoder call runs under `catch_unwind`: a panic inside a decoder is "not read", never a
//! crash. The budget is checked between steps.

mod binarize;
mod crops;
mod finder;
mod frame;
mod readers;
mod session;

use std::time::{Duration, Instant};

pub use frame::{Frame, Rotation};
pub use session::{Fed, ScanSession};

/// One decoded QR code.
#[derive(Debug, Clone, PartialEq)]
pub struct Code {
    /// The payload bytes.
    pub bytes: Vec<u8>,
    /// The payload as text, when it is UTF-8 (or declared otherwise by an ECI and decoded).
    pub text: Option<String>,
    /// The four corners in frame coordinates (pixels of the buffer as given, before rotation):
    /// top-left, top-right, bottom-right, bottom-left of the symbol as read.
    pub corners: [(f32, f32); 4],
}

impl Code {
    /// The centre of the corners.
    pub fn centre(&self) -> (f32, f32) {
        let (sx, sy) = self
            .corners
            .iter()
            .fold((0.0, 0.0), |(x, y), c| (x + c.0, y + c.1));
        (sx / 4.0, sy / 4.0)
    }

    /// The corners in the upright image the user sees, for a frame that the camera reports as
    /// rotated by `rotation` clockwise.
    pub fn upright_corners(
        &self,
        frame_w: usize,
        frame_h: usize,
        rotation: Rotation,
    ) -> [(f32, f32); 4] {
        self.corners
            .map(|(x, y)| rotation.to_upright(x, y, frame_w as f32, frame_h as f32))
    }
}

/// Largest frame accepted: 50 megapixels.
pub const MAX_PIXELS: usize = 50_000_000;

/// Why a frame or image could not be scanned (a frame with no code is `Ok(vec![])`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("frame has zero width or height")]
    Empty,
    #[error("row stride {stride} is smaller than the width {width}")]
    Stride { stride: usize, width: usize },
    #[error("pixel buffer holds {len} bytes, the frame needs {need}")]
    Truncated { len: usize, need: usize },
    #[error("frame of {pixels} pixels is over the {MAX_PIXELS}-pixel limit")]
    TooLarge { pixels: usize },
    #[error("image cannot be decoded: {0}")]
    Image(String),
    #[error("I/O error: {0}")]
    Io(String),
}

/// Scan options.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    /// No new step starts after this much time (default 200 ms).
    pub budget: Duration,
    /// Run the retry ladder when the first pass finds nothing.
    pub retry: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            budget: Duration::from_millis(200),
            retry: true,
        }
    }
}

/// Decode every QR code in a frame.
pub fn scan(frame: &Frame<'_>, opts: &ScanOptions) -> Result<Vec<Code>, ScanError> {
    scan_steps(frame, opts, 0, usize::MAX)
}

/// Steps in the retry ladder (what [`ScanSession::ladder_per_frame`] counts in).
pub fn ladder_len() -> usize {
    readers::ladder().len()
}

/// The first pass, then at most `count` retry steps starting at step `from` (wrapping), each
/// within the budget. `scan` runs the whole ladder; a camera session may spread it over frames.
pub(crate) fn scan_steps(
    frame: &Frame<'_>,
    opts: &ScanOptions,
    from: usize,
    count: usize,
) -> Result<Vec<Code>, ScanError> {
    let n = ladder_len();
    let order: Vec<usize> = (0..count.min(n)).map(|k| (from + k) % n).collect();
    let codes = if frame.width.saturating_mul(frame.height) >= PHOTO_PIXELS {
        1
    } else {
        MULTI_MIN
    };
    let look = LookAgain {
        codes,
        first_pass_codes: usize::MAX,
        unexplained: UNEXPLAINED_MIN,
        crops: crops::CROPS_MAX,
    };
    Ok(scan_order(frame, opts, &order, look)?.0)
}

/// When the second look runs (see `scan_order`): after at least `codes` codes read by a retry
/// step, or `first_pass_codes` codes read by the first pass, or after one code or more when the
/// first pass saw at least `unexplained` finder patterns that no code read accounts for
/// (another symbol it found but could not decode).
///
/// `scan` never looks again by count after a first-pass read (`first_pass_codes` =
/// `usize::MAX`): when the full-size pass read codes and every finder pattern it found belongs
/// to one of them, the look found nothing more on any sample (58 images, 3 ms each on a photo;
/// docs/scanning.md). A first pass that read nothing says little: the codes a retry step reads
/// are the blurred, small or badly lit ones, and so are their neighbours.
///
/// `crops`: how many symbols seen but not read are read again in a crop of their own
/// (`crops::Crops`); `scan` up to [`crops::CROPS_MAX`], a camera session none (on the
/// camera-stream benchmark they read no frame more, and printed text shows sets of three
/// finder-like patterns: the empty 1080p frames' p95 went 6.6 → 29.6 ms).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LookAgain {
    pub codes: usize,
    pub first_pass_codes: usize,
    pub unexplained: usize,
    pub crops: usize,
}

/// Unexplained finder patterns that make `scan` look again after one code (+2 codes on the
/// samples: docs/scanning.md). Camera sessions do not: they see the scene again next frame.
const UNEXPLAINED_MIN: usize = 2;

/// The first pass, then the retry steps at the given ladder positions in that order, until one
/// reads or the budget is spent; then, when `look` says so, the copy reduced ×2 too
/// (`readers::second_look`). Returns the codes and the position of the step
/// that read them (`None` when the first pass did, or nothing did).
pub(crate) fn scan_order(
    frame: &Frame<'_>,
    opts: &ScanOptions,
    order: &[usize],
    look: LookAgain,
) -> Result<(Vec<Code>, Option<usize>), ScanError> {
    frame.validate()?;
    let start = Instant::now();
    let deadline = start + opts.budget;
    let (w, h) = (frame.width, frame.height);
    let mut found: Vec<Code> = Vec::new();
    let mut by = None;

    // Very large frames first read at half size: a full-size pass alone can exceed the budget.
    let big = w * h > 6_000_000;
    let mut first = readers::Finders::UNKNOWN;
    let mut crops = crops::Crops::new(look.crops, deadline);
    if !big {
        let failed;
        (first, failed) = readers::rxing(
            frame.rows(),
            w,
            h,
            frame.stride,
            1.0,
            readers::Variant::Hybrid,
            &mut found,
        );
        // Symbols whose three patterns were found but that did not read: again, each in a crop
        // of its own (`crops`).
        if opts.retry {
            crops.read(frame, &failed, &mut found);
        }
    }
    let codes_needed = if found.is_empty() {
        look.codes
    } else {
        look.first_pass_codes
    };
    if found.is_empty() && opts.retry {
        let ladder = readers::ladder();
        for &k in order {
            if !found.is_empty() || Instant::now() >= deadline {
                break;
            }
            let Some(step) = ladder.get(k) else { continue };
            let failed = readers::run_step(frame, *step, first.seen, &mut found);
            if found.is_empty() {
                crops.read(frame, &failed, &mut found);
            }
            if !found.is_empty() {
                by = Some(k);
            }
        }
    }
    // Several codes in view (a sheet of vouchers, a shelf of labels): one binarisation rarely
    // suits them all, so the copy reduced ×2 looks again, with two binarisations, and the
    // reads are merged (lots: 228 → 236 of 240 codes). A photo (`scan` on a megapixel or more)
    // looks again after one code too: a second code there is often blurred or small (+9 codes
    // in all; docs/scanning.md); so does any still image whose first pass left finder patterns
    // that no code read accounts for. A still image whose first pass read codes and explained
    // every pattern it found does not look again (`LookAgain`).
    let unexplained = !found.is_empty() && first.unused >= look.unexplained;
    if look.codes > 0
        && (found.len() >= codes_needed || unexplained)
        && opts.retry
        && Instant::now() < deadline
    {
        let failed = readers::second_look(frame, &mut found);
        crops.read(frame, &failed, &mut found);
    }
    Ok((dedup(found), by))
}

/// Codes read that make a frame "several codes" (see `scan_order`).
pub(crate) const MULTI_MIN: usize = 2;

/// From this size, `scan` takes a frame for a photo and looks again after a single code. A
/// camera session does not: it sees the scene again on the next frame, and the look would be
/// paid on every frame that holds a code.
const PHOTO_PIXELS: usize = 1_000_000;

/// Drop repeats: the same bytes with centres closer than a quarter of the symbol's size.
fn dedup(mut codes: Vec<Code>) -> Vec<Code> {
    let mut out: Vec<Code> = Vec::new();
    for c in codes.drain(..) {
        let (cx, cy) = c.centre();
        let size = ((c.corners[0].0 - c.corners[2].0).powi(2)
            + (c.corners[0].1 - c.corners[2].1).powi(2))
        .sqrt();
        let dup = out.iter().any(|o| {
            let (ox, oy) = o.centre();
            o.bytes == c.bytes
                && ((ox - cx).powi(2) + (oy - cy).powi(2)).sqrt() < size.max(8.0) / 2.0
        });
        if !dup {
            out.push(c);
        }
    }
    out
}

/// Decode an image file's bytes (PNG, JPEG, WebP) and scan it.
pub fn scan_image_bytes(bytes: &[u8], opts: &ScanOptions) -> Result<Vec<Code>, ScanError> {
    let img = decode_image(bytes)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    scan(&Frame::new(w, h, w, img.as_raw(), Rotation::R0), opts)
}

/// Decode an image file into 8-bit luma, refusing more than [`MAX_PIXELS`] before decoding.
pub fn decode_image(bytes: &[u8]) -> Result<image::GrayImage, ScanError> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ScanError::Io(e.to_string()))?;
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| ScanError::Image(e.to_string()))?;
    let pixels = (w as usize).saturating_mul(h as usize);
    if pixels == 0 {
        return Err(ScanError::Empty);
    }
    if pixels > MAX_PIXELS {
        return Err(ScanError::TooLarge { pixels });
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ScanError::Io(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let img = std::panic::catch_unwind(move || reader.decode())
        .map_err(|_| ScanError::Image("decoder panicked".into()))?
        .map_err(|e| ScanError::Image(e.to_string()))?;
    Ok(img.into_luma8())
}

/// Read and scan an image file.
pub fn scan_file(path: &std::path::Path, opts: &ScanOptions) -> Result<Vec<Code>, ScanError> {
    let bytes = std::fs::read(path).map_err(|e| ScanError::Io(e.to_string()))?;
    scan_image_bytes(&bytes, opts)
}
