//! Extracted documents: pages and chunks with page and line provenance, keyed by the blob
//! (sha256) they came from, so a file attached twice is parsed and indexed once.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::attachments::is_sha256_hex;
use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentPage {
    /// 1-based.
    pub page_number: u32,
    pub text: String,
    /// False for a page without a usable text layer (a scan): its text is empty or from OCR.
    pub text_layer_usable: bool,
}

/// A piece of a document as retrieval sees it; lines are 1-based and inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewChunk {
    pub page_number: u32,
    pub line_start: u32,
    pub line_end: u32,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentChunk {
    pub id: i64,
    pub sha256: String,
    /// Position of the chunk in the document, from 0.
    pub ordinal: u32,
    pub page_number: u32,
    pub line_start: u32,
    pub line_end: u32,
    pub text: String,
}

fn check_blob(conn: &Connection, sha256: &str) -> Result<()> {
    let known = is_sha256_hex(sha256)
        && conn
            .query_row(
                "SELECT 1 FROM blobs WHERE sha256 = ?1",
                [sha256],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
    if known {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "no stored file has the sha256 {sha256:?}; store the file before its document"
        )))
    }
}

/// Replaces the pages and chunks stored for the blob `sha256`.
pub(crate) fn put(
    conn: &Connection,
    sha256: &str,
    pages: &[DocumentPage],
    chunks: &[NewChunk],
) -> Result<()> {
    check_blob(conn, sha256)?;
    for chunk in chunks {
        if chunk.page_number == 0 || chunk.line_start == 0 || chunk.line_end < chunk.line_start {
            return Err(StoreError::InvalidInput(format!(
                "chunk provenance page {} lines {}..={} is not valid (pages and lines start at 1)",
                chunk.page_number, chunk.line_start, chunk.line_end
            )));
        }
    }
    if let Some(page) = pages.iter().find(|page| page.page_number == 0) {
        return Err(StoreError::InvalidInput(format!(
            "page number {} is not valid (pages start at 1)",
            page.page_number
        )));
    }
    conn.execute("DELETE FROM document_pages WHERE sha256 = ?1", [sha256])?;
    conn.execute("DELETE FROM document_chunks WHERE sha256 = ?1", [sha256])?;
    let mut insert_page = conn.prepare_cached(
        "INSERT INTO document_pages (sha256, page_number, text, text_layer_usable) \
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for page in pages {
        insert_page.execute(params![
            sha256,
            page.page_number,
            page.text,
            page.text_layer_usable
        ])?;
    }
    let mut insert_chunk = conn.prepare_cached(
        "INSERT INTO document_chunks (sha256, ordinal, page_number, line_start, line_end, text) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (ordinal, chunk) in chunks.iter().enumerate() {
        insert_chunk.execute(params![
            sha256,
            ordinal as i64,
            chunk.page_number,
            chunk.line_start,
            chunk.line_end,
            chunk.text
        ])?;
    }
    Ok(())
}

pub(crate) fn pages(conn: &Connection, sha256: &str) -> Result<Vec<DocumentPage>> {
    let mut statement = conn.prepare_cached(
        "SELECT page_number, text, text_layer_usable FROM document_pages \
         WHERE sha256 = ?1 ORDER BY page_number",
    )?;
    let rows = statement.query_map([sha256], |row| {
        Ok(DocumentPage {
            page_number: row.get(0)?,
            text: row.get(1)?,
            text_layer_usable: row.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn chunks(conn: &Connection, sha256: &str) -> Result<Vec<DocumentChunk>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {CHUNK_COLUMNS} FROM document_chunks WHERE sha256 = ?1 ORDER BY ordinal"
    ))?;
    let rows = statement.query_map([sha256], chunk_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The columns `CHUNK_COLUMNS` names, in that order, as a chunk.
pub(crate) const CHUNK_COLUMNS: &str =
    "id, sha256, ordinal, page_number, line_start, line_end, text";

pub(crate) fn chunk_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DocumentChunk> {
    Ok(DocumentChunk {
        id: row.get(0)?,
        sha256: row.get(1)?,
        ordinal: row.get(2)?,
        page_number: row.get(3)?,
        line_start: row.get(4)?,
        line_end: row.get(5)?,
        text: row.get(6)?,
    })
}
