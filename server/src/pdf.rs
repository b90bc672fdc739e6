//! Printable voucher letters: a small PDF 1.4 writer (no dependency) and the page layout.
//!
//! One A4 page per voucher, like OpenG2P's voucher letter: program, beneficiary, value or items,
//! validity, redemption rule, and the QR code drawn as vector squares (sharp at any print or
//! render resolution; our scanner reads it from a 150-dpi render). Text uses the standard
//! Helvetica fonts with WinAnsiEncoding (nothing embedded) when Windows-1252 can show it.
//! Other text (a name in Cyrillic, Arabic, Amharic, …) is laid out with the configured
//! [`LetterFonts`] and drawn glyph by glyph from a subset of the font embedded as a CID font
//! (Type0, Identity-H, with a ToUnicode map so the text can be searched and copied); without
//! configured fonts it prints as `?`. The QR code always carries the exact data. Page content
//! is Flate-compressed.

use std::io::Write;

use std::collections::{BTreeMap, BTreeSet};

use crate::fonts::LetterFonts;
use evoucher_core::qr::{Symbol, QUIET_ZONE};
use evoucher_core::voucher::{format_amount, RedemptionRule, Voucher};

/// A4 in points.
const W: f64 = 595.28;
const H: f64 = 841.89;

/// A PDF under construction: objects 1 (catalog), 2 (pages), 3 and 4 (fonts) are fixed; pages
/// and their content streams follow.
pub struct Pdf {
    objects: Vec<Vec<u8>>,
    pages: Vec<usize>,
    fonts: LetterFonts,
    /// Per configured font, once used: its Type0 font object and the glyphs used so far.
    embedded: BTreeMap<usize, Embedded>,
}

/// A configured font used in this document.
struct Embedded {
    /// Object number of its Type0 font (written by `finish`).
    object: usize,
    /// Original glyph id → CID (the glyph's id in the subset).
    glyphs: subsetter::GlyphRemapper,
    /// CID → the text it shows, for the ToUnicode map.
    text: BTreeMap<u16, String>,
}

impl Default for Pdf {
    fn default() -> Self {
        Self::new()
    }
}

impl Pdf {
    pub fn new() -> Self {
        let mut objects = vec![Vec::new(), Vec::new()];
        objects.push(
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                .to_vec(),
        );
        objects.push(
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>"
                .to_vec(),
        );
        Pdf {
            objects,
            pages: Vec::new(),
            fonts: LetterFonts::default(),
            embedded: BTreeMap::new(),
        }
    }

    /// A PDF whose text beyond Windows-1252 is drawn with these fonts.
    pub fn with_fonts(fonts: LetterFonts) -> Self {
        Pdf {
            fonts,
            ..Pdf::new()
        }
    }

    /// Add an object; its number.
    fn add(&mut self, object: Vec<u8>) -> usize {
        self.objects.push(object);
        self.objects.len()
    }

    /// Add a Flate-compressed stream with extra dictionary entries; its object number.
    fn add_stream(&mut self, extra: &str, data: &[u8]) -> usize {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        // Writing to a Vec cannot fail.
        let _ = z.write_all(data);
        let data = z.finish().unwrap_or_default();
        let mut stream = format!(
            "<< /Length {} /Filter /FlateDecode{extra} >>\nstream\n",
            data.len()
        )
        .into_bytes();
        stream.extend_from_slice(&data);
        stream.extend_from_slice(b"\nendstream");
        self.add(stream)
    }

    /// The CID of glyph `gid` of configured font `font` (embedding the font on first use),
    /// recording the text it shows.
    fn cid(&mut self, font: usize, gid: u16, text: &str) -> u16 {
        if !self.embedded.contains_key(&font) {
            // Replaced by the Type0 font when the document is finished; a valid font meanwhile,
            // so the file stays well formed should the font be unusable by then.
            let object = self.add(
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
                    .to_vec(),
            );
            self.embedded.insert(
                font,
                Embedded {
                    object,
                    glyphs: subsetter::GlyphRemapper::new(),
                    text: BTreeMap::new(),
                },
            );
        }
        let Some(e) = self.embedded.get_mut(&font) else {
            return 0;
        };
        let cid = e.glyphs.remap(gid);
        if !text.is_empty() {
            e.text.entry(cid).or_insert_with(|| text.to_owned());
        }
        cid
    }

    /// Add an A4 page with this content stream (PDF operators) using the standard fonts.
    pub fn page(&mut self, content: &[u8]) {
        self.page_with(content, &BTreeSet::new());
    }

    /// Add an A4 page whose content also uses these configured fonts (as `/E{index}`).
    fn page_with(&mut self, content: &[u8], fonts: &BTreeSet<usize>) {
        let content_id = self.add_stream("", content);
        let mut resources = String::from("/F1 3 0 R /F2 4 0 R");
        for f in fonts {
            if let Some(e) = self.embedded.get(f) {
                resources.push_str(&format!(" /E{f} {} 0 R", e.object));
            }
        }
        let page = self.add(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {W} {H}] /Resources << /Font << {resources} >> >> /Contents {content_id} 0 R >>"
            )
            .into_bytes(),
        );
        self.pages.push(page);
    }

    /// Write the configured fonts this document used: each a subset with just its glyphs.
    fn write_fonts(&mut self) {
        let embedded = std::mem::take(&mut self.embedded);
        let fonts = self.fonts.clone();
        for (index, e) in &embedded {
            let Some(file) = fonts.files().get(*index) else {
                continue;
            };
            let Some(face) = file.face() else { continue };
            let scale = 1000.0 / f64::from(face.units_per_em().max(1));
            let olds: Vec<u16> = e.glyphs.remapped_gids().collect();
            // The subset's glyph ids are the CIDs. Should subsetting fail, the whole font is
            // embedded and a CIDToGIDMap maps each CID back to its original glyph.
            let (program, cid_to_gid) = match subsetter::subset(&file.data, file.index, &e.glyphs) {
                Ok(sub) => (sub, "/Identity".to_owned()),
                Err(_) => {
                    let map: Vec<u8> = olds.iter().flat_map(|g| g.to_be_bytes()).collect();
                    let id = self.add_stream("", &map);
                    (file.data.clone(), format!("{id} 0 R"))
                }
            };
            let program_id = self.add_stream(&format!(" /Length1 {}", program.len()), &program);
            let tag: String = (0..6)
                .map(|i| char::from(b'A' + ((index / 26usize.pow(i)) % 26) as u8))
                .collect();
            let name = format!("{tag}+{}", file.name);
            let bbox = face.global_bounding_box();
            let descriptor = self.add(
                format!(
                    "<< /Type /FontDescriptor /FontName /{name} /Flags 4 /FontBBox [{:.0} {:.0} {:.0} {:.0}] /ItalicAngle 0 /Ascent {:.0} /Descent {:.0} /CapHeight {:.0} /StemV 80 /FontFile2 {program_id} 0 R >>",
                    f64::from(bbox.x_min) * scale,
                    f64::from(bbox.y_min) * scale,
                    f64::from(bbox.x_max) * scale,
                    f64::from(bbox.y_max) * scale,
                    f64::from(face.ascender()) * scale,
                    f64::from(face.descender()) * scale,
                    f64::from(face.capital_height().unwrap_or(face.ascender())) * scale,
                )
                .into_bytes(),
            );
            let widths: Vec<String> = olds
                .iter()
                .map(|&g| {
                    let w = face
                        .glyph_hor_advance(rustybuzz::ttf_parser::GlyphId(g))
                        .unwrap_or(0);
                    format!("{:.0}", f64::from(w) * scale)
                })
                .collect();
            let cid_font = self.add(
                format!(
                    "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> /FontDescriptor {descriptor} 0 R /W [0 [{}]] /CIDToGIDMap {cid_to_gid} >>",
                    widths.join(" ")
                )
                .into_bytes(),
            );
            let to_unicode = self.add_stream("", &to_unicode_cmap(&e.text));
            if let Some(slot) = self.objects.get_mut(e.object - 1) {
                *slot = format!(
                    "<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H /DescendantFonts [{cid_font} 0 R] /ToUnicode {to_unicode} 0 R >>"
                )
                .into_bytes();
            }
        }
    }

    /// The finished file.
    pub fn finish(mut self) -> Vec<u8> {
        self.write_fonts();
        self.objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>".to_vec();
        let kids: Vec<String> = self.pages.iter().map(|p| format!("{p} 0 R")).collect();
        self.objects[1] = format!(
            "<< /Type /Pages /Kids [{}] /Count {} >>",
            kids.join(" "),
            self.pages.len()
        )
        .into_bytes();
        let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
        let mut offsets = Vec::with_capacity(self.objects.len());
        for (i, o) in self.objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
            out.extend_from_slice(o);
            out.extend_from_slice(b"\nendobj\n");
        }
        let xref = out.len();
        out.extend_from_slice(
            format!("xref\n0 {}\n0000000000 65535 f \n", self.objects.len() + 1).as_bytes(),
        );
        for off in offsets {
            out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
                self.objects.len() + 1
            )
            .as_bytes(),
        );
        out
    }
}

/// A PDF string literal in WinAnsiEncoding: `(`, `)` and `\` escaped, control characters
/// dropped, characters Windows-1252 cannot show replaced by `?`.
fn pdf_string(s: &str) -> Vec<u8> {
    let mut out = vec![b'('];
    for c in s.chars() {
        if c.is_control() {
            continue;
        }
        let b = win_ansi(c).unwrap_or(b'?');
        if matches!(b, b'(' | b')' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b')');
    out
}

/// A CMap from CIDs to the text they show (UTF-16BE), so viewers can search and copy it.
fn to_unicode_cmap(text: &BTreeMap<u16, String>) -> Vec<u8> {
    let mut out = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    let entries: Vec<_> = text.iter().collect();
    for block in entries.chunks(100) {
        out.push_str(&format!("{} beginbfchar\n", block.len()));
        for (cid, t) in block {
            let utf16: String = t.encode_utf16().map(|u| format!("{u:04X}")).collect();
            out.push_str(&format!("<{cid:04X}> <{utf16}>\n"));
        }
        out.push_str("endbfchar\n");
    }
    out.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    out.into_bytes()
}

/// The Windows-1252 byte of `c`, if it has one (control characters have none).
fn win_ansi(c: char) -> Option<u8> {
    Some(match c {
        c if (c as u32) < 0x20 || c as u32 == 0x7f => return None,
        c if (c as u32) < 0x80 => c as u8,
        '€' => 0x80,
        '‚' => 0x82,
        '„' => 0x84,
        '…' => 0x85,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '–' => 0x96,
        '—' => 0x97,
        'Š' => 0x8a,
        'š' => 0x9a,
        'Œ' => 0x8c,
        'œ' => 0x9c,
        'Ž' => 0x8e,
        'ž' => 0x9e,
        'Ÿ' => 0x9f,
        c if (0xa0..=0xff).contains(&(c as u32)) => c as u32 as u8,
        _ => return None,
    })
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
pub fn date(t: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM` (UTC) of a Unix time.
pub fn date_time(t: i64) -> String {
    let s = t.rem_euclid(86_400);
    format!("{} {:02}:{:02}", date(t), s / 3600, s % 3600 / 60)
}

/// Content-stream builder for one page of `pdf`.
struct Page<'a> {
    pdf: &'a mut Pdf,
    out: Vec<u8>,
    /// Configured fonts this page draws with.
    fonts: BTreeSet<usize>,
}

impl<'a> Page<'a> {
    fn new(pdf: &'a mut Pdf) -> Self {
        Page {
            pdf,
            out: Vec::new(),
            fonts: BTreeSet::new(),
        }
    }

    /// Add the page to its document.
    fn finish(self) {
        self.pdf.page_with(&self.out, &self.fonts);
    }

    /// Text at (x, y) in font 1 (regular) or 2 (bold). Text beyond Windows-1252 is laid out
    /// with the configured fonts, each glyph placed where the shaper put it; bold is their
    /// outlines filled and stroked.
    fn text(&mut self, font: u8, size: f64, x: f64, y: f64, s: &str) {
        if self.pdf.fonts.is_empty() || s.chars().all(|c| c.is_control() || win_ansi(c).is_some()) {
            self.out
                .extend_from_slice(format!("BT /F{font} {size} Tf {x:.2} {y:.2} Td ").as_bytes());
            self.out.extend_from_slice(&pdf_string(s));
            self.out.extend_from_slice(b" Tj ET\n");
            return;
        }
        let glyphs = self.pdf.fonts.shape(s);
        // The string as written (logical order), for search and copy: glyph-by-glyph maps
        // cannot express clusters of several glyphs (Indic vowel signs) or right-to-left order.
        let actual: String = std::iter::once(0xfeff)
            .chain(
                s.chars()
                    .filter(|c| !c.is_control())
                    .collect::<String>()
                    .encode_utf16(),
            )
            .map(|u| format!("{u:04X}"))
            .collect();
        self.out
            .extend_from_slice(format!("/Span << /ActualText <{actual}> >> BDC ").as_bytes());
        self.out.extend_from_slice(b"BT ");
        if font == 2 {
            self.out
                .extend_from_slice(format!("2 Tr {:.2} w ", size * 0.03).as_bytes());
        }
        let mut current = None;
        for g in glyphs {
            if current != Some(g.font) {
                self.out
                    .extend_from_slice(format!("/E{} {size} Tf ", g.font).as_bytes());
                current = Some(g.font);
                self.fonts.insert(g.font);
            }
            let cid = self.pdf.cid(g.font, g.gid, &g.text);
            self.out.extend_from_slice(
                format!(
                    "1 0 0 1 {:.2} {:.2} Tm <{cid:04X}> Tj\n",
                    x + g.x * size,
                    y + g.y * size
                )
                .as_bytes(),
            );
        }
        // Text rendering mode is graphics state: it outlives ET.
        self.out.extend_from_slice(b"0 Tr ET EMC\n");
    }

    /// A QR symbol (with its quiet zone, white) whose outer side is `side` points, lower-left
    /// corner at (x, y). Dark modules are merged into horizontal runs.
    fn qr(&mut self, sym: &Symbol, x: f64, y: f64, side: f64) {
        let n = sym.width + 2 * QUIET_ZONE;
        let m = side / n as f64;
        self.out.extend_from_slice(
            format!("1 g {x:.2} {y:.2} {side:.2} {side:.2} re f 0 g\n").as_bytes(),
        );
        for row in 0..sym.width {
            let top = y + side - (row + QUIET_ZONE) as f64 * m;
            let mut col = 0;
            while col < sym.width {
                if !sym.modules[row * sym.width + col] {
                    col += 1;
                    continue;
                }
                let start = col;
                while col < sym.width && sym.modules[row * sym.width + col] {
                    col += 1;
                }
                let rx = x + (start + QUIET_ZONE) as f64 * m;
                self.out.extend_from_slice(
                    format!(
                        "{rx:.3} {:.3} {:.3} {m:.3} re\n",
                        top - m,
                        (col - start) as f64 * m
                    )
                    .as_bytes(),
                );
            }
        }
        self.out.extend_from_slice(b"f\n");
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64) {
        self.out
            .extend_from_slice(format!("0.5 w {x1:.2} {y1:.2} m {x2:.2} {y2:.2} l S\n").as_bytes());
    }
}

/// What a voucher letter shows besides the voucher itself.
pub struct Letter<'a> {
    pub program_name: &'a str,
    pub voucher: &'a Voucher,
    pub text: &'a str,
}

/// Add one voucher letter page.
pub fn letter(pdf: &mut Pdf, l: &Letter<'_>) -> Result<(), evoucher_core::error::EncodeError> {
    let v = l.voucher;
    let sym = evoucher_core::qr::symbol(l.text)?;
    let mut p = Page::new(pdf);
    let left = 56.0;
    let mut y = H - 72.0;
    p.text(2, 22.0, left, y, l.program_name);
    y -= 20.0;
    p.text(1, 10.0, left, y, &format!("Issued by {}", v.iss));
    y -= 12.0;
    p.line(left, y, W - left, y);
    y -= 30.0;
    p.text(2, 16.0, left, y, "E-VOUCHER");
    y -= 28.0;
    let field = |p: &mut Page, y: &mut f64, label: &str, value: &str| {
        p.text(1, 11.0, left, *y, label);
        p.text(2, 12.0, left + 130.0, *y, value);
        *y -= 20.0;
    };
    field(
        &mut p,
        &mut y,
        "Beneficiary",
        v.beneficiary.name.as_deref().unwrap_or("-"),
    );
    field(&mut p, &mut y, "Beneficiary ID", &v.beneficiary.id);
    if let Some(a) = &v.value {
        field(
            &mut p,
            &mut y,
            "Value",
            &format_amount(a.amount, &a.currency),
        );
    }
    for (i, it) in v.items.iter().enumerate() {
        let what = it.description.as_deref().unwrap_or(&it.code);
        let unit = it
            .unit
            .as_deref()
            .map(|u| format!(" {u}"))
            .unwrap_or_default();
        field(
            &mut p,
            &mut y,
            if i == 0 { "Items" } else { "" },
            &format!("{}{unit} {what}", it.quantity),
        );
    }
    field(
        &mut p,
        &mut y,
        "Valid",
        &format!(
            "{} to {} UTC",
            date_time(v.nbf.unwrap_or(v.iat)),
            date_time(v.exp)
        ),
    );
    field(
        &mut p,
        &mut y,
        "Use",
        match v.rule {
            RedemptionRule::Single => "once, in full",
            RedemptionRule::Partial => "in parts, up to the value",
        },
    );
    if !v.categories.is_empty() {
        field(&mut p, &mut y, "Where", &v.categories.join(", "));
    }
    let side = 260.0;
    let qy = (y - 30.0 - side).max(110.0);
    p.qr(&sym, (W - side) / 2.0, qy, side);
    p.text(
        1,
        8.0,
        (W - side) / 2.0,
        qy - 14.0,
        &format!("Voucher {}", v.id.to_hex()),
    );
    p.line(left, 90.0, W - left, 90.0);
    p.text(
        1,
        9.0,
        left,
        74.0,
        "Show this code at a participating service provider. It can be used only as stated above.",
    );
    p.text(
        1,
        9.0,
        left,
        62.0,
        "Keep it safe: whoever holds the code can use it. Report a lost voucher to the program.",
    );
    p.finish();
    Ok(())
}

/// Add an account-payable page: the payable's fields as `Label: value` lines (the list of
/// [`evoucher_core::payable::printed`], which the verifier reads back) and the signed payable
/// in a QR code.
pub fn payable(
    pdf: &mut Pdf,
    program_name: &str,
    p: &evoucher_core::payable::Payable,
    text: &str,
) -> Result<(), evoucher_core::error::EncodeError> {
    let sym = evoucher_core::qr::symbol(text)?;
    let mut page = Page::new(pdf);
    let left = 56.0;
    let mut y = H - 72.0;
    page.text(2, 20.0, left, y, "ACCOUNT PAYABLE");
    y -= 20.0;
    page.text(1, 11.0, left, y, program_name);
    y -= 12.0;
    page.line(left, y, W - left, y);
    y -= 24.0;
    for (label, value) in evoucher_core::payable::printed(p) {
        page.text(1, 10.0, left, y, &format!("{label}:"));
        page.text(2, 10.0, left + 120.0, y, &value);
        y -= 16.0;
    }
    let side = 220.0;
    let qy = (y - 20.0 - side).max(100.0);
    page.qr(&sym, W - left - side, qy, side);
    page.text(
        1,
        8.0,
        W - left - side,
        qy - 12.0,
        "The signed payable (EP1)",
    );
    page.line(left, 80.0, W - left, 80.0);
    page.text(
        1,
        9.0,
        left,
        64.0,
        "Pay only if evoucher payable verify accepts this document: the QR code carries the payable as the",
    );
    page.text(
        1,
        9.0,
        left,
        52.0,
        "program signed it, and every field above must say the same. A changed account or amount is refused.",
    );
    page.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_798_675_200), "2026-12-31");
        assert_eq!(date(-86_400), "1969-12-31");
        assert_eq!(
            date_time(1_798_675_200 + 3_600 * 13 + 60 * 7 + 59),
            "2026-12-31 13:07"
        );
    }

    #[test]
    fn strings_are_escaped_and_win_ansi() {
        assert_eq!(pdf_string("a(b)\\c"), b"(a\\(b\\)\\\\c)".to_vec());
        assert_eq!(pdf_string("José €5"), b"(Jos\xe9 \x805)".to_vec());
        assert_eq!(pdf_string("\u{0939}\n"), b"(?)".to_vec());
    }

    #[test]
    fn the_xref_points_at_every_object() {
        let mut pdf = Pdf::new();
        pdf.page(b"BT /F1 12 Tf 10 10 Td (x) Tj ET");
        let out = pdf.finish();
        let tail = String::from_utf8_lossy(&out[out.len() - 40..]).into_owned();
        let xref: usize = tail
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let table = String::from_utf8(out[xref..].to_vec()).unwrap();
        assert!(table.starts_with("xref\n0 7\n"));
        for (i, line) in table.lines().skip(3).take(6).enumerate() {
            let off: usize = line[..10].parse().unwrap();
            assert!(
                out[off..].starts_with(format!("{} 0 obj", i + 1).as_bytes()),
                "object {}",
                i + 1
            );
        }
    }
}
