//! Any beneficiary name (any Unicode, any mix of scripts and directions, control characters)
//! lays out and prints without a panic, with or without configured fonts, and the PDF stays
//! well formed: every glyph placed at a finite position, every name's page present.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use proptest::prelude::*;

/// Names drawn from several scripts at once, with spaces, digits, marks and bidi controls.
fn name() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "Amina",
        "José",
        "Алексей",
        "Ελένη",
        "محمد",
        "علي",
        "አበበ",
        "सीता",
        "देवी",
        "שרה",
        " ",
        "12",
        "\u{200f}",
        "\u{202e}",
        "\u{0301}",
        "\u{064b}",
        "\t",
        "(",
        ")",
        "\\",
        "\u{fffd}",
    ]);
    prop::collection::vec(pieces, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_text_lays_out(s in "\\PC{0,40}", n in name()) {
        let fonts = common::noto(&["Sans", "SansArabic", "SansEthiopic", "SansDevanagari", "SansHebrew"]);
        for text in [s.as_str(), n.as_str()] {
            let glyphs = fonts.shape(text);
            prop_assert!(glyphs.iter().all(|g| g.x.is_finite() && g.y.is_finite()));
            prop_assert!(glyphs.iter().all(|g| g.font < fonts.files().len()));
            // Every character's text is on some glyph (ToUnicode and ActualText aside).
            let shown: String = glyphs.iter().map(|g| g.text.as_str()).collect();
            let visible = text.chars().filter(|c| !c.is_control()).count();
            prop_assert_eq!(shown.chars().count(), visible);
        }
    }
}
