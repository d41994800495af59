//! The CJK fallback font for rendering PDF pages whose Korean (or other CJK) fonts are not
//! embedded. NanumSquare Regular (SIL OFL 1.1, licence in `assets/fonts/`) covers Hangul and
//! Latin; without it such pages render as blank boxes and the vision model reads nothing.

use hayro::hayro_interpret::font::FallbackFontQuery;
use hayro::hayro_interpret::hayro_cmap::CidFamily;
use std::sync::Arc;

static NANUM_SQUARE: &[u8] = include_bytes!("../../../assets/fonts/NanumSquareR.ttf");

/// Font names PDF producers use for non-embedded CJK fonts.
const CJK_NAME_HINTS: &[&str] = &[
    "batang", "gulim", "dotum", "gungsuh", "malgun", "nanum", "myeongjo", "gothic", "hy", "kr",
    "korea", "mincho", "song", "hei", "kai", "ming", "cjk", "yu", "ms-",
];

pub(crate) fn wants_cjk_fallback(query: &FallbackFontQuery) -> bool {
    if let Some(collection) = &query.character_collection {
        if matches!(
            collection.family,
            CidFamily::AdobeKorea1
                | CidFamily::AdobeJapan1
                | CidFamily::AdobeGB1
                | CidFamily::AdobeCNS1
        ) {
            return true;
        }
        if collection.family == CidFamily::AdobeIdentity {
            let names = [
                &query.post_script_name,
                &query.font_name,
                &query.font_family,
            ];
            return names.into_iter().flatten().any(|name| {
                let name = name.to_ascii_lowercase();
                CJK_NAME_HINTS.iter().any(|hint| name.contains(hint))
            });
        }
    }
    false
}

pub(crate) fn cjk_fallback() -> (hayro::hayro_interpret::font::FontData, u32) {
    (Arc::new(NANUM_SQUARE), 0)
}
