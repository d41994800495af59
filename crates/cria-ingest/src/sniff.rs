//! Deciding what a file is from its bytes.
//!
//! Binary formats are recognised by their magic bytes; zip containers by the parts inside
//! (`word/document.xml`, `ppt/presentation.xml`, `xl/workbook.xml`); OLE compound files by the
//! stream names in their directory. Anything else must look like text (no NUL bytes, few
//! control characters in the first 8 KiB) before it is decoded as text. The file name only
//! chooses between text formats (CSV, Markdown, plain text) once the content is known to be
//! text: a `.pdf` full of random bytes is rejected, not parsed.

use crate::{IngestError, Result};
use serde::{Deserialize, Serialize};
use std::io::Cursor;

/// What a file is, decided by [`sniff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Png,
    Jpeg,
    Webp,
    Gif,
    Bmp,
    Tiff,
    Pdf,
    Docx,
    Pptx,
    Xlsx,
    Doc,
    Xls,
    Ppt,
    Html,
    Csv,
    Markdown,
    Text,
}

impl DocumentKind {
    pub fn is_image(self) -> bool {
        matches!(
            self,
            Self::Png | Self::Jpeg | Self::Webp | Self::Gif | Self::Bmp | Self::Tiff
        )
    }
}

/// How much of the start of a file the text/binary decision looks at.
const TEXT_SNIFF_BYTES: usize = 8 * 1024;

/// Sniffs the type of `bytes`. `file_name` refines text formats only.
pub fn sniff(bytes: &[u8], file_name: Option<&str>) -> Result<DocumentKind> {
    if bytes.is_empty() {
        return Err(IngestError::Unsupported {
            detail: "the file is empty".into(),
        });
    }
    if let Some(kind) = sniff_magic(bytes) {
        return match kind {
            Magic::Kind(kind) => Ok(kind),
            Magic::Zip => sniff_zip(bytes),
            Magic::Ole => sniff_ole(bytes),
        };
    }
    if !looks_like_text(bytes) {
        return Err(IngestError::Unsupported {
            detail: "binary data of an unknown format".into(),
        });
    }
    Ok(sniff_text_kind(bytes, file_name))
}

enum Magic {
    Kind(DocumentKind),
    Zip,
    Ole,
}

fn sniff_magic(bytes: &[u8]) -> Option<Magic> {
    let kind = |kind| Some(Magic::Kind(kind));
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return kind(DocumentKind::Png);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return kind(DocumentKind::Jpeg);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return kind(DocumentKind::Gif);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return kind(DocumentKind::Webp);
    }
    if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        return kind(DocumentKind::Tiff);
    }
    // "BM" alone is too weak (text can start with it): also require a plausible DIB header size.
    if bytes.len() >= 18 && bytes.starts_with(b"BM") {
        let header_size = u32::from_le_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]);
        if matches!(header_size, 12 | 40 | 52 | 56 | 64 | 108 | 124) {
            return kind(DocumentKind::Bmp);
        }
    }
    // Real PDFs may carry a few bytes of junk before the header; readers accept up to 1 KiB.
    let head = &bytes[..bytes.len().min(1024)];
    if head.windows(5).any(|window| window == b"%PDF-") {
        return kind(DocumentKind::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return Some(Magic::Zip);
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return Some(Magic::Ole);
    }
    None
}

fn sniff_zip(bytes: &[u8]) -> Result<DocumentKind> {
    let archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|error| IngestError::Corrupt {
            kind: "zip".into(),
            detail: error.to_string(),
        })?;
    let has = |name: &str| archive.index_for_name(name).is_some();
    if has("word/document.xml") {
        Ok(DocumentKind::Docx)
    } else if has("ppt/presentation.xml") {
        Ok(DocumentKind::Pptx)
    } else if has("xl/workbook.xml") {
        Ok(DocumentKind::Xlsx)
    } else {
        Err(IngestError::Unsupported {
            detail: "a zip archive that is not a Word, PowerPoint or Excel document".into(),
        })
    }
}

/// Legacy Office files are OLE compound files; their directory names the main stream in
/// UTF-16LE ("WordDocument", "Workbook"/"Book", "PowerPoint Document").
fn sniff_ole(bytes: &[u8]) -> Result<DocumentKind> {
    let utf16 =
        |name: &str| -> Vec<u8> { name.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    let contains = |name: &str| {
        let needle = utf16(name);
        bytes
            .windows(needle.len())
            .any(|window| window == needle.as_slice())
    };
    if contains("WordDocument") {
        Ok(DocumentKind::Doc)
    } else if contains("PowerPoint Document") {
        Ok(DocumentKind::Ppt)
    } else if contains("Workbook") || contains("Book") {
        Ok(DocumentKind::Xls)
    } else {
        Err(IngestError::Unsupported {
            detail: "an OLE compound file that is not a Word, PowerPoint or Excel document".into(),
        })
    }
}

/// True when the start of the file decodes as text: a UTF BOM, or no NUL bytes and at most
/// 2 % control characters other than whitespace.
pub(crate) fn looks_like_text(bytes: &[u8]) -> bool {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF])
        || bytes.starts_with(&[0xFF, 0xFE])
        || bytes.starts_with(&[0xFE, 0xFF])
    {
        return true;
    }
    let head = &bytes[..bytes.len().min(TEXT_SNIFF_BYTES)];
    if head.contains(&0) {
        return false;
    }
    let control = head
        .iter()
        .filter(|&&byte| byte < 0x20 && !matches!(byte, b'\n' | b'\r' | b'\t' | 0x0C | 0x1B))
        .count();
    control * 50 <= head.len()
}

fn sniff_text_kind(bytes: &[u8], file_name: Option<&str>) -> DocumentKind {
    let extension = file_name
        .and_then(|name| name.rsplit_once('.'))
        .map(|(_, extension)| extension.to_ascii_lowercase());
    let head = &bytes[..bytes.len().min(TEXT_SNIFF_BYTES)];
    let lowered: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let trimmed = lowered
        .iter()
        .position(|byte| {
            !byte.is_ascii_whitespace() && *byte != 0xEF && *byte != 0xBB && *byte != 0xBF
        })
        .map_or(&[][..], |start| &lowered[start..]);
    let looks_html = trimmed.starts_with(b"<!doctype html")
        || trimmed.starts_with(b"<html")
        || (trimmed.starts_with(b"<") && contains(&lowered, b"<body"));
    match extension.as_deref() {
        _ if looks_html => DocumentKind::Html,
        Some("csv" | "tsv") => DocumentKind::Csv,
        Some("md" | "markdown" | "mdx") => DocumentKind::Markdown,
        Some("htm" | "html" | "xhtml") if contains(&lowered, b"<") => DocumentKind::Html,
        _ => DocumentKind::Text,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_wins_over_extension() {
        assert_eq!(
            sniff(b"%PDF-1.7\n", Some("notes.txt")).ok(),
            Some(DocumentKind::Pdf)
        );
        assert_eq!(
            sniff(b"plain words", Some("photo.png")).ok(),
            Some(DocumentKind::Text)
        );
        assert!(matches!(
            sniff(&[0x00, 0x9F, 0x12, 0x00, 0x01, 0x02], Some("report.pdf")),
            Err(IngestError::Unsupported { .. })
        ));
    }

    #[test]
    fn text_formats_follow_the_name_once_content_is_text() {
        assert_eq!(
            sniff(b"a,b\n1,2\n", Some("t.csv")).ok(),
            Some(DocumentKind::Csv)
        );
        assert_eq!(
            sniff(b"# Title\n", Some("t.md")).ok(),
            Some(DocumentKind::Markdown)
        );
        assert_eq!(
            sniff(b"  <!DOCTYPE html><html><body>x</body></html>", None).ok(),
            Some(DocumentKind::Html)
        );
        assert!(sniff(b"", Some("t.txt")).is_err());
    }
}
