//! Attachments: content-addressed blobs on disk and the rows that reference them.
//!
//! Contract: a blob lives at `blobs/<first two hex digits>/<sha256>` and its bytes hash to its
//! name. It is written to `blobs/tmp/` first, flushed to disk (fsync), then renamed into place
//! and its folder flushed, so a crash leaves either no blob or a whole one, never a torn file
//! under a final name. The same bytes are stored once however often they are attached. Renames
//! into place and deletions happen while holding the store's connection lock, so garbage
//! collection never races a writer. Original file names are kept as metadata only: no path on
//! disk is ever built from anything but a validated sha256.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::conversations::now_ms;
use crate::messages::MessageId;
use crate::{Result, StoreError};

/// Largest attachment the store accepts.
pub const MAX_BLOB_BYTES: u64 = 4 << 30;
/// Longest original file name kept (in characters).
pub const MAX_NAME_CHARS: usize = 255;
/// Longest MIME type kept.
pub const MAX_MIME_CHARS: usize = 127;
/// Temporary files younger than this may belong to a write in progress; garbage collection
/// leaves them alone.
const TEMP_FILE_GRACE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AttachmentId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentKind {
    Image,
    Document,
    Text,
    Other,
}

impl AttachmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentKind::Image => "image",
            AttachmentKind::Document => "document",
            AttachmentKind::Text => "text",
            AttachmentKind::Other => "other",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "image" => AttachmentKind::Image,
            "document" => AttachmentKind::Document,
            "text" => AttachmentKind::Text,
            "other" => AttachmentKind::Other,
            _ => return None,
        })
    }
}

/// A stored blob: its name (sha256, lowercase hex) and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    pub message_id: MessageId,
    pub sha256: String,
    pub original_name: String,
    pub mime: String,
    pub size: u64,
    pub kind: AttachmentKind,
    pub thumbnail_sha256: Option<String>,
    pub created_at_ms: i64,
}

/// What the caller knows about a file it attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentMeta {
    pub original_name: String,
    pub mime: String,
    pub kind: AttachmentKind,
}

/// What [`crate::Store::collect_garbage`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GarbageReport {
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    pub stray_files_removed: u64,
}

pub(crate) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The file name only (no folders, either separator), without control characters, bounded.
pub fn clean_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|ch| !ch.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        "attachment".to_string()
    } else {
        cleaned.to_string()
    }
}

fn clean_mime(mime: &str) -> String {
    let mime: String = mime
        .chars()
        .filter(|ch| ch.is_ascii_graphic())
        .take(MAX_MIME_CHARS)
        .collect();
    if mime.is_empty() {
        "application/octet-stream".into()
    } else {
        mime
    }
}

/// Where blobs live; `None` for an in-memory store.
#[derive(Debug, Clone)]
pub(crate) struct BlobDir {
    root: PathBuf,
}

impl BlobDir {
    pub(crate) fn new(root: PathBuf) -> Self {
        BlobDir { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn temp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The final path of a blob; `sha256` must already be validated.
    pub(crate) fn path_of(&self, sha256: &str) -> PathBuf {
        self.root.join(&sha256[..2]).join(sha256)
    }

    pub(crate) fn create(&self) -> Result<()> {
        crate::fsutil::create_private_dir(&self.root)?;
        crate::fsutil::create_private_dir(&self.temp_dir())
    }
}

/// A blob written to a temporary file and flushed, not yet in place.
pub(crate) struct StagedBlob {
    temp_path: PathBuf,
    pub(crate) blob: BlobRef,
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        // After a successful `commit` the file was renamed and this finds nothing.
        let _ = std::fs::remove_file(&self.temp_path);
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Copies `reader` into a new temporary file through `wrap` (the file itself in production;
/// tests wrap it to inject write errors), hashing as it goes, then flushes it to disk.
pub(crate) fn stage<R: Read>(
    dir: &BlobDir,
    mut reader: R,
    wrap: impl for<'f> FnOnce(&'f mut File) -> Box<dyn Write + 'f>,
) -> Result<StagedBlob> {
    let temp_path = dir.temp_dir().join(format!(
        "{}-{}-{}.part",
        std::process::id(),
        now_ms(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = crate::fsutil::create_private_file(&temp_path)?;
    // From here on the guard removes the temporary file on every early return.
    let mut staged = StagedBlob {
        temp_path,
        blob: BlobRef {
            sha256: String::new(),
            size: 0,
        },
    };
    let temp_for_errors = staged.temp_path.clone();
    let io_error = |source: io::Error| StoreError::from_io(&temp_for_errors, source);
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    {
        let mut writer = wrap(&mut file);
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(StoreError::ReadSource { source }),
            };
            size += read as u64;
            if size > MAX_BLOB_BYTES {
                return Err(StoreError::TooLarge {
                    what: "attachment",
                    limit: MAX_BLOB_BYTES,
                });
            }
            hasher.update(&buffer[..read]);
            writer.write_all(&buffer[..read]).map_err(io_error)?;
        }
        writer.flush().map_err(io_error)?;
    }
    file.sync_all().map_err(io_error)?;
    drop(file);
    staged.blob = BlobRef {
        sha256: format!("{:x}", hasher.finalize()),
        size,
    };
    Ok(staged)
}

/// Moves a staged blob into place (unless the same bytes are already there) and records it.
/// Call with the connection lock held, inside the transaction that will reference it.
pub(crate) fn commit(conn: &Connection, dir: &BlobDir, staged: &StagedBlob) -> Result<BlobRef> {
    let blob = &staged.blob;
    let final_path = dir.path_of(&blob.sha256);
    let folder = final_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.root().to_path_buf());
    crate::fsutil::create_private_dir(&folder)?;
    let existing_len = std::fs::metadata(&final_path).ok().map(|m| m.len());
    if existing_len != Some(blob.size) {
        // Missing, or a different length (damaged by something outside Cria): replace it.
        std::fs::rename(&staged.temp_path, &final_path)
            .map_err(|source| StoreError::from_io(&final_path, source))?;
        crate::fsutil::sync_dir(&folder)?;
    }
    conn.execute(
        "INSERT OR IGNORE INTO blobs (sha256, size, created_at_ms) VALUES (?1, ?2, ?3)",
        params![blob.sha256, blob.size as i64, now_ms()],
    )?;
    Ok(blob.clone())
}

const COLUMNS: &str = "id, message_id, sha256, original_name, mime, size, kind, thumbnail_sha256, \
     created_at_ms";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Attachment> {
    let kind: String = row.get(6)?;
    Ok(Attachment {
        id: AttachmentId(row.get(0)?),
        message_id: MessageId(row.get(1)?),
        sha256: row.get(2)?,
        original_name: row.get(3)?,
        mime: row.get(4)?,
        size: row.get::<_, i64>(5)?.max(0) as u64,
        kind: AttachmentKind::parse(&kind)
            .ok_or_else(|| crate::messages::invalid(6, kind.clone()))?,
        thumbnail_sha256: row.get(7)?,
        created_at_ms: row.get(8)?,
    })
}

pub(crate) fn get(conn: &Connection, id: AttachmentId) -> Result<Attachment> {
    let sql = format!("SELECT {COLUMNS} FROM attachments WHERE id = ?1");
    conn.query_row(&sql, [id.0], from_row)
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "attachment",
            id: id.0,
        })
}

pub(crate) fn insert(
    conn: &Connection,
    message: MessageId,
    blob: &BlobRef,
    meta: &AttachmentMeta,
    thumbnail_sha256: Option<&str>,
    created_at_ms: i64,
) -> Result<Attachment> {
    crate::messages::get(conn, message)?;
    conn.execute(
        "INSERT INTO attachments (message_id, sha256, original_name, mime, size, kind, \
         thumbnail_sha256, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            message.0,
            blob.sha256,
            clean_name(&meta.original_name),
            clean_mime(&meta.mime),
            blob.size as i64,
            meta.kind.as_str(),
            thumbnail_sha256,
            created_at_ms
        ],
    )?;
    get(conn, AttachmentId(conn.last_insert_rowid()))
}

pub(crate) fn set_thumbnail(conn: &Connection, id: AttachmentId, sha256: &str) -> Result<()> {
    if conn.execute(
        "UPDATE attachments SET thumbnail_sha256 = ?1 WHERE id = ?2",
        params![sha256, id.0],
    )? == 0
    {
        return Err(StoreError::NotFound {
            what: "attachment",
            id: id.0,
        });
    }
    Ok(())
}

pub(crate) fn of_message(conn: &Connection, message: MessageId) -> Result<Vec<Attachment>> {
    let sql = format!("SELECT {COLUMNS} FROM attachments WHERE message_id = ?1 ORDER BY id");
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map([message.0], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Gives `to` the same attachments as `from` (new rows, same blobs).
pub(crate) fn copy_to(conn: &Connection, from: MessageId, to: MessageId) -> Result<()> {
    conn.execute(
        "INSERT INTO attachments (message_id, sha256, original_name, mime, size, kind, \
         thumbnail_sha256, created_at_ms) \
         SELECT ?2, sha256, original_name, mime, size, kind, thumbnail_sha256, created_at_ms \
         FROM attachments WHERE message_id = ?1 ORDER BY id",
        params![from.0, to.0],
    )?;
    Ok(())
}

/// Removes blob rows nobody references and their files, then stray files. Everything happens
/// inside one IMMEDIATE transaction: no writer (in this process or another) can be between
/// renaming a blob into place and committing its row while files are being removed. If the
/// commit fails after files were removed, the rows left behind are unreferenced anyway, and a
/// later [`commit`] of the same bytes puts the file back.
pub(crate) fn collect_garbage(conn: &mut Connection, dir: &BlobDir) -> Result<GarbageReport> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let doomed: Vec<(String, i64)> = {
        let mut statement = tx.prepare(
            "SELECT sha256, size FROM blobs b \
             WHERE NOT EXISTS (SELECT 1 FROM attachments a WHERE a.sha256 = b.sha256) \
             AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.thumbnail_sha256 = b.sha256) \
             AND NOT EXISTS (SELECT 1 FROM prepared_images p WHERE p.image_sha256 = b.sha256)",
        )?;
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut report = GarbageReport::default();
    for (sha256, size) in &doomed {
        tx.execute("DELETE FROM blobs WHERE sha256 = ?1", [sha256])?;
        match std::fs::remove_file(dir.path_of(sha256)) {
            Ok(()) => report.bytes_freed += size.max(&0).unsigned_abs(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::from_io(&dir.path_of(sha256), source)),
        }
        report.blobs_removed += 1;
    }
    report.stray_files_removed = remove_stray_files(&tx, dir)?;
    tx.commit()?;
    Ok(report)
}

/// Files under the blob folder that no row names (a crash between rename and commit), and
/// temporary files old enough to be abandoned.
fn remove_stray_files(conn: &Connection, dir: &BlobDir) -> Result<u64> {
    let mut removed = 0;
    let read_dir = |path: &Path| -> Result<Vec<std::fs::DirEntry>> {
        match std::fs::read_dir(path) {
            Ok(entries) => entries
                .collect::<io::Result<Vec<_>>>()
                .map_err(|source| StoreError::from_io(path, source)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(StoreError::from_io(path, source)),
        }
    };
    let mut known = conn.prepare("SELECT 1 FROM blobs WHERE sha256 = ?1")?;
    for folder in read_dir(dir.root())? {
        let folder_name = folder.file_name().to_string_lossy().into_owned();
        let is_temp = folder_name == "tmp";
        if !is_temp && (folder_name.len() != 2 || !folder.path().is_dir()) {
            continue;
        }
        for entry in read_dir(&folder.path())? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stray = if is_temp {
                entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|modified| modified.elapsed().ok())
                    .is_some_and(|age| age > TEMP_FILE_GRACE)
            } else {
                is_sha256_hex(&name)
                    && name.starts_with(&folder_name)
                    && known.query_row([&name], |_| Ok(())).optional()?.is_none()
            };
            if stray {
                std::fs::remove_file(entry.path())
                    .map_err(|source| StoreError::from_io(&entry.path(), source))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_only_the_file_name() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\x\\report.pdf"), "report.pdf");
        assert_eq!(clean_name(".."), "attachment");
        assert_eq!(clean_name("a\0b\nc.txt"), "abc.txt");
        assert_eq!(
            clean_name(&"x".repeat(1000)).chars().count(),
            MAX_NAME_CHARS
        );
    }

    #[test]
    fn only_lowercase_hex_of_the_right_length_is_a_sha256() {
        assert!(is_sha256_hex(&"ab".repeat(32)));
        assert!(!is_sha256_hex(&"AB".repeat(32)));
        assert!(!is_sha256_hex("../../../../etc/passwd"));
        assert!(!is_sha256_hex(&"a".repeat(63)));
    }
}
