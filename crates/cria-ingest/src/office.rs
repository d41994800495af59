//! Word, PowerPoint and Excel files (OOXML and legacy binary) to Markdown via `office_oxide`,
//! which keeps headings, tables and equations.
//!
//! OOXML files are zip archives, so before parsing every entry is inflated into a counting
//! sink: an entry over `max_stream_bytes`, a total over `max_document_bytes`, or an archive
//! with more than `max_pages` slides or sheets is refused with a typed error instead of being
//! handed to the parser.

use crate::text::single_page;
use crate::{DocumentKind, IngestError, IngestLimits, IngestedDocument, Result};
use office_oxide::DocumentFormat;
use std::io::{Cursor, Read};

/// Most zip entries a document may have (real documents have tens to a few thousand).
const MAX_ZIP_ENTRIES: usize = 20_000;

pub(crate) fn ingest_office(
    bytes: &[u8],
    kind: DocumentKind,
    limits: &IngestLimits,
) -> Result<IngestedDocument> {
    let format = match kind {
        DocumentKind::Docx => DocumentFormat::Docx,
        DocumentKind::Pptx => DocumentFormat::Pptx,
        DocumentKind::Xlsx => DocumentFormat::Xlsx,
        DocumentKind::Doc => DocumentFormat::Doc,
        DocumentKind::Xls => DocumentFormat::Xls,
        DocumentKind::Ppt => DocumentFormat::Ppt,
        other => {
            return Err(IngestError::Unsupported {
                detail: format!("{other:?} is not an office format"),
            });
        }
    };
    if matches!(
        kind,
        DocumentKind::Docx | DocumentKind::Pptx | DocumentKind::Xlsx
    ) {
        check_zip(bytes, kind, limits)?;
    }
    let document = office_oxide::Document::from_reader(Cursor::new(bytes.to_vec()), format)
        .map_err(|error| IngestError::Corrupt {
            kind: format!("{kind:?}"),
            detail: error.to_string(),
        })?;
    let markdown = document.to_markdown();
    Ok(single_page(kind, markdown))
}

fn check_zip(bytes: &[u8], kind: DocumentKind, limits: &IngestLimits) -> Result<()> {
    let corrupt = |detail: String| IngestError::Corrupt {
        kind: format!("{kind:?}"),
        detail,
    };
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|error| corrupt(error.to_string()))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(IngestError::TooLarge {
            what: "the number of parts in the document".into(),
            actual: archive.len() as u64,
            limit: MAX_ZIP_ENTRIES as u64,
        });
    }
    let mut total: u64 = 0;
    let mut pages: u64 = 0;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|error| corrupt(error.to_string()))?;
        let name = entry
            .name()
            .map(|name| name.into_owned())
            .unwrap_or_default();
        let is_page = (name.starts_with("ppt/slides/slide")
            || name.starts_with("xl/worksheets/sheet"))
            && name.ends_with(".xml");
        pages += u64::from(is_page);
        // Read one byte past the cap so "exactly at the cap" and "over it" differ.
        let mut limited = (&mut entry).take(limits.max_stream_bytes + 1);
        let size = std::io::copy(&mut limited, &mut std::io::sink())
            .map_err(|error| corrupt(format!("part {name}: {error}")))?;
        if size > limits.max_stream_bytes {
            return Err(IngestError::Bomb {
                detail: format!(
                    "part {name} inflates to more than {} bytes",
                    limits.max_stream_bytes
                ),
            });
        }
        total += size;
        if total > limits.max_document_bytes {
            return Err(IngestError::Bomb {
                detail: format!(
                    "the parts inflate to more than {} bytes in all",
                    limits.max_document_bytes
                ),
            });
        }
    }
    if pages > u64::from(limits.max_pages) {
        return Err(IngestError::TooLarge {
            what: "the number of slides or sheets".into(),
            actual: pages,
            limit: u64::from(limits.max_pages),
        });
    }
    Ok(())
}
