//! Fonts for letter text that Windows-1252 cannot show (Cyrillic, Greek, Arabic, Hebrew,
//! Ethiopic, Indic scripts, …): TrueType/OpenType files the operator configures
//! (`evoucher serve --letter-font FILE`, in fallback order), laid out here and embedded as
//! subsets by [`crate::pdf`].
//!
//! Layout of one line: the Unicode bidirectional algorithm splits it into runs in visual order
//! (`unicode-bidi`); each run is split by font (the first configured font that has the
//! character, staying with the previous font while it has them) and shaped with `rustybuzz`
//! (HarfBuzz's shaping in Rust: Arabic joining, marks, Indic reordering, kerning).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustybuzz::{Direction, Face, UnicodeBuffer};
use unicode_bidi::BidiInfo;

/// A font file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FontError {
    #[error("letter font {0}: cannot read it")]
    Read(PathBuf),
    #[error("letter font {0}: not a TrueType or OpenType font")]
    Parse(PathBuf),
    #[error(
        "letter font {0}: PostScript (CFF) outlines are not supported; use a TrueType (glyf) font"
    )]
    Outlines(PathBuf),
}

/// One configured font file.
pub struct FontFile {
    pub data: Vec<u8>,
    /// The face's index in a collection (`.ttc`); 0 for a plain file.
    pub index: u32,
    /// Its PostScript name, restricted to what a PDF name may hold.
    pub name: String,
}

impl FontFile {
    pub fn face(&self) -> Option<Face<'_>> {
        Face::from_slice(&self.data, self.index)
    }
}

/// The configured fonts, in fallback order; cheap to clone. Empty: letters use the standard
/// Helvetica fonts only.
#[derive(Clone, Default)]
pub struct LetterFonts(Arc<Vec<FontFile>>);

/// One laid-out glyph. Positions are in ems (multiply by the font size) from the line's start.
#[derive(Debug, Clone, PartialEq)]
pub struct Glyph {
    /// Index of the font in [`LetterFonts`].
    pub font: usize,
    pub gid: u16,
    pub x: f64,
    pub y: f64,
    /// The text this glyph shows (its cluster) if it is the cluster's first glyph, else empty.
    pub text: String,
}

impl LetterFonts {
    /// Read and check the files (`FILE` or `FILE#INDEX` for a face of a collection).
    pub fn load(paths: &[PathBuf]) -> Result<Self, FontError> {
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            let s = p.to_string_lossy();
            let (file, index) = match s.rsplit_once('#') {
                Some((f, i)) if i.parse::<u32>().is_ok() => {
                    (Path::new(f).to_path_buf(), i.parse().unwrap_or(0))
                }
                _ => (p.clone(), 0),
            };
            let data = std::fs::read(&file).map_err(|_| FontError::Read(p.clone()))?;
            let name = {
                let face = ttf_parser_face(&data, index).ok_or(FontError::Parse(p.clone()))?;
                if face.tables().glyf.is_none() {
                    return Err(FontError::Outlines(p.clone()));
                }
                postscript_name(&face).unwrap_or_else(|| format!("Font{}", out.len()))
            };
            out.push(FontFile { data, index, name });
        }
        Ok(LetterFonts(Arc::new(out)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn files(&self) -> &[FontFile] {
        &self.0
    }

    /// Lay out one line of text (control characters dropped) in visual order.
    pub fn shape(&self, text: &str) -> Vec<Glyph> {
        let faces: Vec<Option<Face<'_>>> = self.0.iter().map(FontFile::face).collect();
        let covers = |f: usize, c: char| {
            faces
                .get(f)
                .and_then(Option::as_ref)
                .is_some_and(|face| face.glyph_index(c).is_some())
        };
        let text: String = text.chars().filter(|c| !c.is_control()).collect();
        let bidi = BidiInfo::new(&text, None);
        let mut out = Vec::new();
        let mut pen = 0.0;
        for para in &bidi.paragraphs {
            let (levels, runs) = bidi.visual_runs(para, para.range.clone());
            for run in runs {
                let rtl = levels.get(run.start).is_some_and(|l| l.is_rtl());
                // Split the run by font, in logical order.
                let mut segs: Vec<(usize, std::ops::Range<usize>)> = Vec::new();
                for (i, c) in text[run.clone()].char_indices() {
                    let at = run.start + i;
                    let prev = segs.last().map(|s| s.0);
                    let font = match prev {
                        Some(p) if covers(p, c) => p,
                        _ => (0..faces.len())
                            .find(|&f| covers(f, c))
                            .or(prev)
                            .unwrap_or(0),
                    };
                    match segs.last_mut() {
                        Some((f, r)) if *f == font => r.end = at + c.len_utf8(),
                        _ => segs.push((font, at..at + c.len_utf8())),
                    }
                }
                if rtl {
                    segs.reverse();
                }
                for (font, range) in segs {
                    let Some(face) = faces.get(font).and_then(Option::as_ref) else {
                        continue;
                    };
                    let seg = &text[range];
                    let mut buf = UnicodeBuffer::new();
                    buf.push_str(seg);
                    buf.set_direction(if rtl {
                        Direction::RightToLeft
                    } else {
                        Direction::LeftToRight
                    });
                    buf.guess_segment_properties();
                    let shaped = rustybuzz::shape(face, &[], buf);
                    let upem = f64::from(face.units_per_em().max(1));
                    let mut starts: Vec<usize> = shaped
                        .glyph_infos()
                        .iter()
                        .map(|g| g.cluster as usize)
                        .collect();
                    starts.sort_unstable();
                    starts.dedup();
                    let mut named = std::collections::HashSet::new();
                    for (info, pos) in shaped.glyph_infos().iter().zip(shaped.glyph_positions()) {
                        let start = info.cluster as usize;
                        let end = starts
                            .iter()
                            .copied()
                            .find(|&s| s > start)
                            .unwrap_or(seg.len());
                        let text = if named.insert(start) {
                            seg.get(start..end).unwrap_or_default().to_owned()
                        } else {
                            String::new()
                        };
                        out.push(Glyph {
                            font,
                            gid: u16::try_from(info.glyph_id).unwrap_or(0),
                            x: pen + f64::from(pos.x_offset) / upem,
                            y: f64::from(pos.y_offset) / upem,
                            text,
                        });
                        pen += f64::from(pos.x_advance) / upem;
                    }
                }
            }
        }
        out
    }
}

fn ttf_parser_face(data: &[u8], index: u32) -> Option<rustybuzz::ttf_parser::Face<'_>> {
    rustybuzz::ttf_parser::Face::parse(data, index).ok()
}

/// The PostScript name (name ID 6), keeping only characters a PDF name may hold unescaped.
fn postscript_name(face: &rustybuzz::ttf_parser::Face<'_>) -> Option<String> {
    let name = face
        .names()
        .into_iter()
        .filter(|n| n.name_id == rustybuzz::ttf_parser::name_id::POST_SCRIPT_NAME)
        .find_map(|n| n.to_string())?;
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(60)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_broken_font_is_a_typed_error() {
        let dir = std::env::temp_dir().join(format!("evoucher-fonts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        let bad = dir.join("bad.ttf");
        std::fs::write(&bad, b"not a font at all").ok();
        assert!(matches!(
            LetterFonts::load(&[dir.join("missing.ttf")]),
            Err(FontError::Read(_))
        ));
        assert!(matches!(
            LetterFonts::load(std::slice::from_ref(&bad)),
            Err(FontError::Parse(_))
        ));
        assert!(LetterFonts::load(&[]).is_ok_and(|f| f.is_empty()));
        assert!(LetterFonts::default().shape("abc").is_empty());
    }

    fn noto(files: &[&str]) -> LetterFonts {
        let dir = Path::new("/usr/share/fonts/truetype/noto");
        let paths: Vec<_> = files.iter().map(|f| dir.join(f)).collect();
        LetterFonts::load(&paths).expect("fonts-noto-core (scripts/test.sh installs it)")
    }

    #[test]
    fn arabic_is_joined_and_laid_out_right_to_left() {
        let fonts = noto(&["NotoSansArabic-Regular.ttf"]);
        let face = fonts.files()[0].face().unwrap();
        let word = "محمد";
        let glyphs = fonts.shape(word);
        assert_eq!(glyphs.len(), 4);
        // Visual order: the leftmost glyph is the last letter.
        let texts: Vec<&str> = glyphs.iter().map(|g| g.text.as_str()).collect();
        assert_eq!(texts, ["د", "م", "ح", "م"]);
        // Joined forms, not the letters' nominal (isolated) glyphs.
        let nominal: Vec<u16> = word
            .chars()
            .rev()
            .map(|c| face.glyph_index(c).unwrap().0)
            .collect();
        let drawn: Vec<u16> = glyphs.iter().map(|g| g.gid).collect();
        assert_ne!(drawn, nominal);
        // Left to right on the page, each glyph after the previous one.
        assert!(glyphs.windows(2).all(|w| w[0].x < w[1].x));
    }

    #[test]
    fn each_character_goes_to_the_first_font_that_has_it() {
        let fonts = noto(&["NotoSans-Regular.ttf", "NotoSansEthiopic-Regular.ttf"]);
        let glyphs = fonts.shape("Abebe አበበ");
        let used: Vec<usize> = glyphs.iter().map(|g| g.font).collect();
        assert_eq!(used, [0, 0, 0, 0, 0, 0, 1, 1, 1]);
        assert!(glyphs.iter().all(|g| g.gid != 0), "no .notdef boxes");
        // Mixed directions: the Latin word stays left of the Arabic one, which reads right to left.
        let fonts = noto(&["NotoSans-Regular.ttf", "NotoSansArabic-Regular.ttf"]);
        let glyphs = fonts.shape("ID علي");
        let texts: Vec<&str> = glyphs.iter().map(|g| g.text.as_str()).collect();
        assert_eq!(texts, ["I", "D", " ", "ي", "ل", "ع"]);
    }
}
