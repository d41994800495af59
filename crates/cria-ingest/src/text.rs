//! Text of unknown encoding, and CSV to Markdown tables.
//!
//! A BOM (UTF-8, UTF-16LE/BE) decides the encoding; otherwise valid UTF-8 is taken as UTF-8 and
//! anything else is guessed by `chardetng` (Shift-JIS, EUC-KR, GBK, windows-125x, …) and decoded
//! with `encoding_rs`. A guessed encoding is reported as a warning so a wrong guess is visible.

use crate::{DocumentKind, IngestError, IngestLimits, IngestedDocument, Page, Result};
use std::collections::BTreeMap;

pub(crate) struct Decoded {
    pub text: String,
    pub warning: Option<String>,
}

pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded> {
    if let Some((encoding, bom_length)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _had_errors) = encoding.decode_without_bom_handling(&bytes[bom_length..]);
        return Ok(Decoded {
            text: text.into_owned(),
            warning: None,
        });
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Decoded {
            text: text.to_owned(),
            warning: None,
        });
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let encoding = detector.guess(None, chardetng::Utf8Detection::Deny);
    let (text, _, had_errors) = encoding.decode(bytes);
    let mut warning = format!("text encoding guessed as {}", encoding.name());
    if had_errors {
        warning.push_str("; some bytes were not valid in it and were replaced");
    }
    Ok(Decoded {
        text: text.into_owned(),
        warning: Some(warning),
    })
}

pub(crate) fn single_page(kind: DocumentKind, text: String) -> IngestedDocument {
    IngestedDocument {
        kind,
        metadata: BTreeMap::new(),
        pages: vec![Page {
            number: 1,
            text,
            text_layer_usable: true,
            image: None,
        }],
        chunks: Vec::new(),
        image: None,
        warnings: Vec::new(),
    }
}

/// Parses CSV (or TSV, or `;`-separated, detected from the first line) with RFC 4180 quoting and
/// renders it as a Markdown table. Cells are escaped so a `|` in data cannot break the table.
pub(crate) fn csv_to_markdown(text: &str, limits: &IngestLimits) -> Result<String> {
    let first_line = text.lines().next().unwrap_or_default();
    let delimiter = [',', '\t', ';']
        .into_iter()
        .max_by_key(|candidate| first_line.matches(*candidate).count())
        .unwrap_or(',');
    let rows = parse_delimited(text, delimiter)?;
    if rows.len() as u64 > limits.max_document_bytes / 2 {
        return Err(IngestError::TooLarge {
            what: "the table".into(),
            actual: rows.len() as u64,
            limit: limits.max_document_bytes / 2,
        });
    }
    Ok(rows_to_markdown(&rows))
}

pub(crate) fn rows_to_markdown(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    if columns == 0 {
        return String::new();
    }
    let mut out = String::new();
    for (row_index, row) in rows.iter().enumerate() {
        out.push('|');
        for column in 0..columns {
            let cell = row.get(column).map(String::as_str).unwrap_or("");
            out.push(' ');
            out.push_str(&escape_cell(cell));
            out.push_str(" |");
        }
        out.push('\n');
        if row_index == 0 {
            out.push('|');
            for _ in 0..columns {
                out.push_str(" --- |");
            }
            out.push('\n');
        }
    }
    out
}

fn escape_cell(cell: &str) -> String {
    cell.trim()
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\r', '\n'], " ")
}

fn parse_delimited(text: &str, delimiter: char) -> Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(character) = chars.next() {
        if in_quotes {
            if character == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(character);
            }
            continue;
        }
        match character {
            '"' if field.is_empty() => in_quotes = true,
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            c if c == delimiter => row.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows.retain(|row| !(row.len() == 1 && row[0].is_empty()));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_pipes_survive() {
        let markdown = csv_to_markdown(
            "name,note\n\"a, b\",x|y\n\"say \"\"hi\"\"\",\n",
            &IngestLimits::default(),
        )
        .expect("valid csv");
        assert_eq!(
            markdown,
            "| name | note |\n| --- | --- |\n| a, b | x\\|y |\n| say \"hi\" |  |\n"
        );
    }

    #[test]
    fn utf16_bom_and_shift_jis_decode() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("héllo".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&utf16).expect("decodes").text, "héllo");
        let (shift_jis, _, _) =
            encoding_rs::SHIFT_JIS.encode("日本語のテキスト、東京都の人口と面積");
        let decoded = decode(&shift_jis).expect("decodes");
        assert_eq!(decoded.text, "日本語のテキスト、東京都の人口と面積");
        assert!(decoded.warning.is_some_and(|w| w.contains("Shift_JIS")));
    }
}
