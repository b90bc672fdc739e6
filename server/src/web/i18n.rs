//! The back office's text, from one catalogue per language (`server/locales/*.json`, compiled
//! in): English, French and Arabic (laid out right to left). A key missing from a language
//! falls back to English; a test checks that none is missing and that every key the pages use
//! exists.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The languages, in the order the language menu shows them.
pub const LANGS: [(&str, &str); 3] = [("en", "English"), ("fr", "Français"), ("ar", "العربية")];

const CATALOGUES: [(&str, &str); 3] = [
    ("en", include_str!("../../locales/en.json")),
    ("fr", include_str!("../../locales/fr.json")),
    ("ar", include_str!("../../locales/ar.json")),
];

/// Every catalogue, by language.
pub fn catalogues() -> &'static HashMap<&'static str, HashMap<String, String>> {
    static C: OnceLock<HashMap<&'static str, HashMap<String, String>>> = OnceLock::new();
    C.get_or_init(|| {
        CATALOGUES
            .iter()
            .map(|(lang, text)| (*lang, serde_json::from_str(text).unwrap_or_default()))
            .collect()
    })
}

/// The text of one language.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub lang: &'static str,
}

impl Tr {
    /// A language we have, or English.
    pub fn new(lang: &str) -> Tr {
        Tr {
            lang: LANGS
                .iter()
                .map(|(l, _)| *l)
                .find(|l| *l == lang)
                .unwrap_or("en"),
        }
    }

    /// `ltr` or `rtl`.
    pub fn dir(&self) -> &'static str {
        if self.lang == "ar" {
            "rtl"
        } else {
            "ltr"
        }
    }

    /// The text for `key` (English when this language lacks it, the key when both do).
    pub fn t<'a>(&self, key: &'a str) -> &'a str
    where
        'static: 'a,
    {
        let c = catalogues();
        c.get(self.lang)
            .and_then(|m| m.get(key))
            .or_else(|| c.get("en").and_then(|m| m.get(key)))
            .map(String::as_str)
            .unwrap_or(key)
    }

    /// The text for `key` with `{name}` placeholders filled.
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut s = self.t(key).to_owned();
        for (k, v) in args {
            s = s.replace(&format!("{{{k}}}"), v);
        }
        s
    }
}

/// The language of a request: the `lang` cookie, else the first of `Accept-Language` we have.
pub fn of_request(headers: &axum::http::HeaderMap) -> Tr {
    if let Some(l) = crate::auth::cookie(headers, "lang") {
        return Tr::new(l);
    }
    let accept = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for part in accept.split(',') {
        let tag = part.split(';').next().unwrap_or("").trim();
        let primary = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
        if LANGS.iter().any(|(l, _)| *l == primary) {
            return Tr::new(&primary);
        }
    }
    Tr::new("en")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_key_and_every_page_key_exists() {
        let c = catalogues();
        let en = &c["en"];
        assert!(en.len() > 150);
        for (lang, _) in LANGS {
            let m = &c[lang];
            for k in en.keys() {
                assert!(m.contains_key(k), "{lang} lacks {k}");
                assert!(!m[k].trim().is_empty(), "{lang} {k} is empty");
            }
            assert_eq!(m.len(), en.len(), "{lang} has keys English lacks");
        }
        // Every `t("…")` / `f("…"` in the templates and the page code names a key.
        let dirs = [
            concat!(env!("CARGO_MANIFEST_DIR"), "/templates"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/src/web"),
        ];
        let mut used = 0;
        for d in dirs {
            for f in std::fs::read_dir(d).unwrap() {
                let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
                for call in ["t(\"", "f(\""] {
                    for part in text.split(call).skip(1) {
                        let key = part.split('"').next().unwrap();
                        if key.contains('.') && !key.contains(' ') {
                            assert!(
                                en.contains_key(key),
                                "{key} is used but not in the catalogue"
                            );
                            used += 1;
                        }
                    }
                }
            }
        }
        assert!(used > 100, "{used}");
    }

    #[test]
    fn arabic_is_right_to_left_and_unknown_languages_are_english() {
        assert_eq!(Tr::new("ar").dir(), "rtl");
        assert_eq!(Tr::new("fr").dir(), "ltr");
        assert_eq!(Tr::new("xx").lang, "en");
        assert_eq!(Tr::new("fr").t("nav.dashboard"), "Tableau de bord");
        assert_eq!(
            Tr::new("en").f("issue.issued", &[("n", "3")]),
            "3 vouchers issued."
        );
        let mut h = axum::http::HeaderMap::new();
        h.insert("accept-language", "de-DE, fr-CA;q=0.8".parse().unwrap());
        assert_eq!(of_request(&h).lang, "fr");
        h.insert("cookie", "lang=ar".parse().unwrap());
        assert_eq!(of_request(&h).lang, "ar");
    }
}
