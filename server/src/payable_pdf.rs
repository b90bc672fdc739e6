//! Checking an account-payable PDF, as a payment switch does before it pays
//! (`evoucher payable verify`): find the signed payable in the page's QR code, verify it
//! against the program's payables keys, and compare every field printed on the page with what
//! was signed.
//!
//! The QR code is found by drawing the page: filled rectangles (how evoucher draws it, as
//! vectors) and images (how a document that was printed or scanned again carries it) are
//! painted into a grey bitmap under their transformation matrices and read by the scanner.
//! The text is read with `pdf-extract` (standard fonts, and embedded fonts through their
//! ToUnicode maps).

use evoucher_core::payable::{self, Mismatch, Payable, PayableError, PayableTrust};
use lopdf::content::Content;
use lopdf::{Document, Object};

/// Pixels per point of the bitmap the page is drawn into.
const SCALE: f64 = 3.0;

/// Why a document could not be checked at all (not the same as "it was edited").
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("not a PDF that can be read ({0})")]
    Unreadable(String),
    #[error("the PDF has no page")]
    NoPage,
}

/// What checking a document found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    /// The signed payable, when one was found and its signature holds.
    pub payable: Option<Payable>,
    /// The payables key that signed it.
    pub kid: Option<String>,
    /// Why the QR code does not hold a valid payable (none found, or refused at a stage).
    pub refused: Option<String>,
    /// Fields printed otherwise than signed, or not printed.
    pub mismatches: Vec<Mismatch>,
}

impl Verdict {
    /// Pay only on this.
    pub fn agrees(&self) -> bool {
        self.payable.is_some() && self.refused.is_none() && self.mismatches.is_empty()
    }
}

/// Check a document against the payables keys a switch trusts.
pub fn verify(pdf: &[u8], trust: &PayableTrust) -> Result<Verdict, PdfError> {
    let doc = Document::load_mem(pdf).map_err(|e| PdfError::Unreadable(e.to_string()))?;
    let pages = doc.get_pages();
    let (_, &page) = pages.iter().next().ok_or(PdfError::NoPage)?;
    let texts = qr_texts(&doc, page);
    let mut verdict = Verdict {
        payable: None,
        kid: None,
        refused: None,
        mismatches: Vec::new(),
    };
    let candidates: Vec<&String> = texts
        .iter()
        .filter(|t| {
            t.get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case(payable::PREFIX))
        })
        .collect();
    let Some(text) = candidates.first() else {
        verdict.refused = Some(if texts.is_empty() {
            "no QR code found on the page".into()
        } else {
            "the QR code on the page is not a signed payable (EP1:)".into()
        });
        return Ok(verdict);
    };
    match payable::verify(text, trust) {
        Ok((p, kid)) => {
            let lines = page_lines(pdf);
            verdict.mismatches = payable::compare(&p, &lines);
            verdict.kid = Some(kid.to_b64());
            verdict.payable = Some(p);
        }
        Err(e) => verdict.refused = Some(describe(&e)),
    }
    if candidates.len() > 1 {
        verdict.refused = Some("more than one signed payable on the page".into());
    }
    Ok(verdict)
}

fn describe(e: &PayableError) -> String {
    format!("the signed payable is refused at stage {}: {e}", e.stage())
}

/// The text of the first page, line by line.
fn page_lines(pdf: &[u8]) -> Vec<String> {
    let text = pdf_extract::extract_text_from_mem_by_pages(pdf)
        .ok()
        .and_then(|p| p.into_iter().next())
        .unwrap_or_default();
    text.lines().map(str::to_owned).collect()
}

type Matrix = [f64; 6];

fn mul(a: &Matrix, b: &Matrix) -> Matrix {
    [
        a[0] * b[0] + a[1] * b[2],
        a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2],
        a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4],
        a[4] * b[1] + a[5] * b[3] + b[5],
    ]
}

fn apply(m: &Matrix, x: f64, y: f64) -> (f64, f64) {
    (m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5])
}

fn num(o: &Object) -> Option<f64> {
    match o {
        Object::Integer(i) => Some(*i as f64),
        Object::Real(r) => Some(f64::from(*r)),
        _ => None,
    }
}

/// A grey bitmap of the page, white to start with.
struct Canvas {
    w: usize,
    h: usize,
    height_pt: f64,
    px: Vec<u8>,
}

impl Canvas {
    fn new(width_pt: f64, height_pt: f64) -> Canvas {
        let w = (width_pt * SCALE).ceil().clamp(1.0, 8000.0) as usize;
        let h = (height_pt * SCALE).ceil().clamp(1.0, 8000.0) as usize;
        Canvas {
            w,
            h,
            height_pt,
            px: vec![255; w * h],
        }
    }

    /// Device point to pixel (PDF's y grows upwards).
    fn to_px(&self, x: f64, y: f64) -> (f64, f64) {
        (x * SCALE, (self.height_pt - y) * SCALE)
    }

    fn fill_rect(&mut self, corners: [(f64, f64); 4], grey: u8) {
        let pts: Vec<(f64, f64)> = corners.iter().map(|(x, y)| self.to_px(*x, *y)).collect();
        let x0 = pts
            .iter()
            .map(|p| p.0)
            .fold(f64::MAX, f64::min)
            .round()
            .max(0.0) as usize;
        let x1 = pts
            .iter()
            .map(|p| p.0)
            .fold(f64::MIN, f64::max)
            .round()
            .min(self.w as f64) as usize;
        let y0 = pts
            .iter()
            .map(|p| p.1)
            .fold(f64::MAX, f64::min)
            .round()
            .max(0.0) as usize;
        let y1 = pts
            .iter()
            .map(|p| p.1)
            .fold(f64::MIN, f64::max)
            .round()
            .min(self.h as f64) as usize;
        for y in y0..y1 {
            let row = &mut self.px[y * self.w..(y + 1) * self.w];
            for v in &mut row[x0.min(x1)..x1] {
                *v = grey;
            }
        }
    }

    /// Paint a grey image into the unit square under `m` (axis-aligned placements only).
    fn image(&mut self, m: &Matrix, img: &image::GrayImage) {
        if m[1].abs() > 1e-6 || m[2].abs() > 1e-6 || img.width() == 0 || img.height() == 0 {
            return;
        }
        let (ax, ay) = self.to_px(m[4], m[5] + m[3]);
        let (bx, by) = self.to_px(m[4] + m[0], m[5]);
        let (x0, x1) = (ax.min(bx), ax.max(bx));
        let (y0, y1) = (ay.min(by), ay.max(by));
        let (iw, ih) = (img.width() as f64, img.height() as f64);
        let (px0, px1) = (x0.max(0.0) as usize, x1.min(self.w as f64) as usize);
        let (py0, py1) = (y0.max(0.0) as usize, y1.min(self.h as f64) as usize);
        for y in py0..py1 {
            let sy = (((y as f64 + 0.5 - y0) / (y1 - y0)) * ih).clamp(0.0, ih - 1.0) as u32;
            for x in px0..px1 {
                let sx = (((x as f64 + 0.5 - x0) / (x1 - x0)) * iw).clamp(0.0, iw - 1.0) as u32;
                self.px[y * self.w + x] = img.get_pixel(sx, sy).0[0];
            }
        }
    }
}

/// An image XObject as grey pixels: JPEG, or 8-bit grey or RGB samples (Flate or raw).
fn decode_image(doc: &Document, stream: &lopdf::Stream) -> Option<image::GrayImage> {
    let dict = &stream.dict;
    let filters: Vec<Vec<u8>> = match dict.get(b"Filter").ok()? {
        Object::Name(n) => vec![n.clone()],
        Object::Array(a) => a
            .iter()
            .filter_map(|f| f.as_name().ok().map(|n| n.to_vec()))
            .collect(),
        _ => Vec::new(),
    };
    if filters.iter().any(|f| f == b"DCTDecode") {
        return image::load_from_memory(&stream.content)
            .ok()
            .map(|i| i.to_luma8());
    }
    let w = dict.get(b"Width").ok().and_then(num)? as u32;
    let h = dict.get(b"Height").ok().and_then(num)? as u32;
    if dict.get(b"BitsPerComponent").ok().and_then(num) != Some(8.0) {
        return None;
    }
    let data = if filters.is_empty() {
        stream.content.clone()
    } else {
        stream.decompressed_content().ok()?
    };
    let space = dict
        .get(b"ColorSpace")
        .ok()
        .and_then(|c| match c {
            Object::Reference(r) => doc.get_object(*r).ok(),
            o => Some(o),
        })
        .and_then(|c| c.as_name().ok().map(|n| n.to_vec()))
        .unwrap_or_default();
    let channels = match space.as_slice() {
        b"DeviceGray" => 1,
        b"DeviceRGB" => 3,
        _ => return None,
    };
    let need = (w as usize) * (h as usize) * channels;
    if data.len() < need {
        return None;
    }
    let grey: Vec<u8> = if channels == 1 {
        data[..need].to_vec()
    } else {
        data[..need]
            .chunks(3)
            .map(|p| {
                ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000)
                    as u8
            })
            .collect()
    };
    image::GrayImage::from_raw(w, h, grey)
}

/// Every QR code text on a page, by drawing it.
fn qr_texts(doc: &Document, page: lopdf::ObjectId) -> Vec<String> {
    let (width_pt, height_pt) = media_box(doc, page).unwrap_or((595.28, 841.89));
    let mut canvas = Canvas::new(width_pt, height_pt);
    let Ok(bytes) = doc.get_page_content(page) else {
        return Vec::new();
    };
    let Ok(content) = Content::decode(&bytes) else {
        return Vec::new();
    };
    let xobjects = page_xobjects(doc, page);
    let mut ctm: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
    let mut stack: Vec<(Matrix, u8)> = Vec::new();
    let mut fill: u8 = 0;
    let mut rects: Vec<[(f64, f64); 4]> = Vec::new();
    for op in &content.operations {
        let o = &op.operands;
        let n = |i: usize| o.get(i).and_then(num).unwrap_or(0.0);
        match op.operator.as_str() {
            "q" => stack.push((ctm, fill)),
            "Q" => {
                if let Some((m, f)) = stack.pop() {
                    ctm = m;
                    fill = f;
                }
            }
            "cm" => ctm = mul(&[n(0), n(1), n(2), n(3), n(4), n(5)], &ctm),
            "g" => fill = (n(0).clamp(0.0, 1.0) * 255.0) as u8,
            "rg" => {
                fill = ((n(0) * 0.299 + n(1) * 0.587 + n(2) * 0.114).clamp(0.0, 1.0) * 255.0) as u8
            }
            "k" => {
                let k = n(3);
                let grey = 1.0 - (n(0) * 0.299 + n(1) * 0.587 + n(2) * 0.114 + k).min(1.0);
                fill = (grey.clamp(0.0, 1.0) * 255.0) as u8;
            }
            "re" => {
                let (x, y, w, h) = (n(0), n(1), n(2), n(3));
                rects.push([
                    apply(&ctm, x, y),
                    apply(&ctm, x + w, y),
                    apply(&ctm, x + w, y + h),
                    apply(&ctm, x, y + h),
                ]);
            }
            "f" | "F" | "f*" | "B" | "B*" | "b" | "b*" => {
                for r in rects.drain(..) {
                    canvas.fill_rect(r, fill);
                }
            }
            "n" | "S" | "s" => rects.clear(),
            "Do" => {
                let Some(name) = o.first().and_then(|x| x.as_name().ok()) else {
                    continue;
                };
                let Some(stream) = xobjects
                    .iter()
                    .find(|(k, _)| k.as_slice() == name)
                    .and_then(|(_, id)| doc.get_object(*id).ok())
                    .and_then(|x| x.as_stream().ok())
                else {
                    continue;
                };
                if stream
                    .dict
                    .get(b"Subtype")
                    .ok()
                    .and_then(|s| s.as_name().ok())
                    == Some(b"Image".as_slice())
                {
                    if let Some(img) = decode_image(doc, stream) {
                        canvas.image(&ctm, &img);
                    }
                }
            }
            _ => {}
        }
    }
    let frame = evoucher_core::scan::Frame {
        width: canvas.w,
        height: canvas.h,
        stride: canvas.w,
        pixels: &canvas.px,
        rotation: evoucher_core::scan::Rotation::R0,
    };
    let opts = evoucher_core::scan::ScanOptions {
        budget: std::time::Duration::from_secs(5),
        retry: true,
    };
    evoucher_core::scan::scan(&frame, &opts)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.text)
        .collect()
}

fn media_box(doc: &Document, page: lopdf::ObjectId) -> Option<(f64, f64)> {
    let dict = doc.get_dictionary(page).ok()?;
    let mb = dict.get(b"MediaBox").ok()?.as_array().ok()?;
    let v: Vec<f64> = mb.iter().filter_map(num).collect();
    (v.len() == 4).then(|| (v[2] - v[0], v[3] - v[1]))
}

/// The page's XObjects by name (its own resources, or inherited from the page tree).
fn page_xobjects(doc: &Document, page: lopdf::ObjectId) -> Vec<(Vec<u8>, lopdf::ObjectId)> {
    let (res, ids) = match doc.get_page_resources(page) {
        Ok(x) => x,
        Err(_) => return Vec::new(),
    };
    let mut dicts: Vec<&lopdf::Dictionary> = res.into_iter().collect();
    for id in ids {
        if let Ok(d) = doc.get_dictionary(id) {
            dicts.push(d);
        }
    }
    let mut out = Vec::new();
    for d in dicts {
        let Ok(x) = d.get(b"XObject") else { continue };
        let x = match x {
            Object::Reference(r) => doc.get_dictionary(*r).ok(),
            Object::Dictionary(d) => Some(d),
            _ => None,
        };
        if let Some(x) = x {
            for (k, v) in x.iter() {
                if let Object::Reference(id) = v {
                    out.push((k.clone(), *id));
                }
            }
        }
    }
    out
}
