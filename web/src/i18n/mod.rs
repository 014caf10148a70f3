//! The pages' languages (SPEC §9): English and French, chosen by the `lang` cookie
//! (the switch in every page's header) or else by `Accept-Language`.
//!
//! Every string a page shows is a field of [`Texts`], written once per language in
//! `en.rs` and `fr.rs`: a string missing from a language does not compile. A `{}` in a
//! string is filled by [`fill`], in order.

use axum::http::{header, HeaderMap};

mod en;
mod fr;
mod texts;

pub(crate) use en::EN;
pub(crate) use fr::FR;
pub(crate) use texts::Texts;

/// The cookie that holds the language chosen with the switch.
pub(crate) const LANG_COOKIE: &str = "lang";

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    En,
    Fr,
}

impl Lang {
    /// Every language, in the switch's order.
    pub(crate) const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// Its strings.
    pub(crate) fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::Fr => &FR,
        }
    }

    /// Its code (`lang` attribute, cookie, switch).
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// Its name in itself, for the switch.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Fr => "Français",
        }
    }

    pub(crate) fn from_code(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The language of a request: the switch's cookie, else the first language of
    /// `Accept-Language` (by quality) that the pages speak, else English.
    pub(crate) fn of(headers: &HeaderMap) -> Lang {
        if let Some(lang) = crate::session::cookie(headers, LANG_COOKIE).and_then(Lang::from_code) {
            return lang;
        }
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Lang::from_accept_language)
            .unwrap_or(Lang::En)
    }

    /// RFC 9110 §12.5.4: `fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5`.
    fn from_accept_language(value: &str) -> Option<Lang> {
        let mut best: Option<(Lang, f32)> = None;
        for item in value.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(lang) = Lang::from_code(primary) {
                if quality > 0.0 && best.is_none_or(|(_, q)| quality > q) {
                    best = Some((lang, quality));
                }
            }
        }
        best.map(|(lang, _)| lang)
    }
}

/// `template` with each `{}` replaced by the next of `values`.
pub(crate) fn fill(template: &str, values: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut values = values.iter();
    let mut rest = template;
    while let Some(at) = rest.find("{}") {
        out.push_str(&rest[..at]);
        out.push_str(values.next().copied().unwrap_or(""));
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(accept: &str, cookie: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_str(accept).unwrap(),
        );
        if let Some(c) = cookie {
            h.insert(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn the_language_follows_the_switch_then_the_browser() {
        assert_eq!(
            Lang::of(&headers("fr-CH, fr;q=0.9, en;q=0.8", None)),
            Lang::Fr
        );
        assert_eq!(Lang::of(&headers("de, en;q=0.5, fr;q=0.4", None)), Lang::En);
        assert_eq!(Lang::of(&headers("en;q=0.2, fr;q=0.9", None)), Lang::Fr);
        assert_eq!(Lang::of(&headers("de, es", None)), Lang::En);
        assert_eq!(Lang::of(&headers("fr;q=0", None)), Lang::En);
        assert_eq!(Lang::of(&headers("fr", Some("lang=en"))), Lang::En);
        assert_eq!(Lang::of(&headers("en", Some("x=1; lang=fr"))), Lang::Fr);
    }

    #[test]
    fn placeholders_are_filled_in_order() {
        assert_eq!(fill("{} of {}", &["1", "3"]), "1 of 3");
        assert_eq!(fill("none", &["x"]), "none");
        assert_eq!(fill("{} {}", &["only"]), "only ");
    }

    /// Both languages fill the same placeholders: a `{}` dropped or added in a
    /// translation would show the wrong value or none.
    #[test]
    fn translations_keep_their_placeholders() {
        for ((name, en), (_, fr)) in EN.fields().iter().zip(FR.fields().iter()) {
            assert_eq!(
                en.matches("{}").count(),
                fr.matches("{}").count(),
                "{name}: {en:?} / {fr:?}"
            );
            assert!(!fr.trim().is_empty(), "{name} is empty in French");
        }
    }
}
