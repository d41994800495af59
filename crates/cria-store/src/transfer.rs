//! Export a conversation to Markdown (the visible branch, for reading) or JSON (the whole tree,
//! for import), and import that JSON.
//!
//! Contract: `import(export(c))` creates a new conversation (new ids) whose export is identical
//! to `export(c)`: every branch, branch pointer, status, figure and timestamp survives. The
//! one exception: a reply exported while still `streaming` comes back `interrupted`, because
//! nothing is writing it any more. Attachments are referenced by sha256 and, optionally,
//! embedded (base64); a referenced-only blob must already be in this library.
//!
//! Import files are untrusted: the reader is capped, every field is bounded and checked, blob
//! bytes must hash to their stated sha256, and no path is built from file content (blobs are
//! placed by validated sha256 only). The whole import is one transaction: a crash or an error
//! leaves nothing behind except unreferenced blob files, which garbage collection removes.

use std::collections::HashMap;
use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::attachments::{self, AttachmentKind, AttachmentMeta, BlobRef, StagedBlob};
use crate::conversations::{self, ConversationId};
use crate::documents::{self, DocumentPage, NewChunk};
use crate::messages::{self, GenerationStats, MessageId, MessageStatus, NewMessage, Role};
use crate::{Result, Store, StoreError};

/// The `format` field of every export.
pub const EXPORT_FORMAT: &str = "cria.conversation";
/// The export format version this build writes and reads.
pub const EXPORT_VERSION: u32 = 1;
/// Largest import file accepted.
pub const MAX_IMPORT_BYTES: u64 = 512 << 20;
/// Most messages one imported conversation may have.
pub const MAX_IMPORT_MESSAGES: usize = 200_000;
/// Largest single text field (message, page, chunk) accepted on import.
pub const MAX_IMPORT_TEXT_BYTES: usize = 16 << 20;
/// Largest short field (title, model id, route, MIME type, name) accepted on import.
pub const MAX_IMPORT_SHORT_BYTES: usize = 4096;
/// Most attachments per message, and pages/chunks per document, accepted on import.
pub const MAX_IMPORT_ITEMS: usize = 100_000;

/// Options for [`Store::export_json`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Include attachment bytes (base64) so the file can be imported on another machine.
    pub embed_attachments: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationExport {
    pub format: String,
    pub version: u32,
    pub conversation: ExportedConversation,
    /// Oldest first; a parent always comes before its children.
    pub messages: Vec<ExportedMessage>,
    /// Index into `messages` of the visible root, if one was chosen.
    pub active_root: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedConversation {
    pub title: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub pinned: bool,
    pub archived: bool,
    pub system_prompt: Option<String>,
    pub model_profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedMessage {
    /// Index into `messages`; `None` for a root.
    pub parent: Option<usize>,
    /// Index into `messages` of the child that continues the visible branch.
    pub active_child: Option<usize>,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    pub error: Option<String>,
    pub stats: GenerationStats,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub attachments: Vec<ExportedAttachment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedAttachment {
    pub sha256: String,
    pub original_name: String,
    pub mime: String,
    pub size: u64,
    pub kind: AttachmentKind,
    pub thumbnail_sha256: Option<String>,
    pub created_at_ms: i64,
    /// The bytes, base64, when the export embeds attachments.
    pub data_base64: Option<String>,
    pub thumbnail_base64: Option<String>,
    pub document: Option<ExportedDocument>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedDocument {
    pub pages: Vec<DocumentPage>,
    pub chunks: Vec<NewChunk>,
}

fn read_blob(store: &Store, sha256: &str) -> Result<String> {
    let path = store.blob_path(sha256)?;
    let bytes = std::fs::read(&path).map_err(|source| StoreError::from_io(&path, source))?;
    Ok(BASE64.encode(bytes))
}

pub(crate) fn export(
    store: &Store,
    conversation: ConversationId,
    options: ExportOptions,
) -> Result<ConversationExport> {
    let mut export = store.with_tx(|tx| export_rows(tx, conversation))?;
    if options.embed_attachments {
        // Outside the transaction: files can be large and blobs never change under a name.
        for message in &mut export.messages {
            for attachment in &mut message.attachments {
                attachment.data_base64 = Some(read_blob(store, &attachment.sha256)?);
                if let Some(thumbnail) = &attachment.thumbnail_sha256 {
                    attachment.thumbnail_base64 = Some(read_blob(store, thumbnail)?);
                }
            }
        }
    }
    Ok(export)
}

fn export_rows(conn: &Connection, conversation: ConversationId) -> Result<ConversationExport> {
    let header = conversations::get(conn, conversation)?;
    let rows = messages::all_in_conversation(conn, conversation)?;
    let index_of: HashMap<MessageId, usize> =
        rows.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
    let (active_root, pointers) = messages::branch_pointers(conn, conversation)?;
    let pointers: HashMap<MessageId, MessageId> = pointers.into_iter().collect();
    let mut documents_seen: HashMap<String, ExportedDocument> = HashMap::new();
    let mut exported = Vec::with_capacity(rows.len());
    for message in rows {
        let mut exported_attachments = Vec::new();
        for attachment in attachments::of_message(conn, message.id)? {
            let document = match documents_seen.get(&attachment.sha256) {
                Some(document) => Some(document.clone()),
                None => {
                    let pages = documents::pages(conn, &attachment.sha256)?;
                    let chunks: Vec<NewChunk> = documents::chunks(conn, &attachment.sha256)?
                        .into_iter()
                        .map(|chunk| NewChunk {
                            page_number: chunk.page_number,
                            line_start: chunk.line_start,
                            line_end: chunk.line_end,
                            text: chunk.text,
                        })
                        .collect();
                    let document = (!pages.is_empty() || !chunks.is_empty())
                        .then_some(ExportedDocument { pages, chunks });
                    if let Some(document) = &document {
                        documents_seen.insert(attachment.sha256.clone(), document.clone());
                    }
                    document
                }
            };
            exported_attachments.push(ExportedAttachment {
                sha256: attachment.sha256,
                original_name: attachment.original_name,
                mime: attachment.mime,
                size: attachment.size,
                kind: attachment.kind,
                thumbnail_sha256: attachment.thumbnail_sha256,
                created_at_ms: attachment.created_at_ms,
                data_base64: None,
                thumbnail_base64: None,
                document,
            });
        }
        exported.push(ExportedMessage {
            parent: message.parent_id.and_then(|p| index_of.get(&p).copied()),
            active_child: pointers
                .get(&message.id)
                .and_then(|child| index_of.get(child).copied()),
            role: message.role,
            content: message.content,
            status: message.status,
            error: message.error,
            stats: message.stats,
            created_at_ms: message.created_at_ms,
            finished_at_ms: message.finished_at_ms,
            attachments: exported_attachments,
        });
    }
    Ok(ConversationExport {
        format: EXPORT_FORMAT.into(),
        version: EXPORT_VERSION,
        conversation: ExportedConversation {
            title: header.title,
            created_at_ms: header.created_at_ms,
            updated_at_ms: header.updated_at_ms,
            pinned: header.pinned,
            archived: header.archived,
            system_prompt: header.system_prompt,
            model_profile: header.model_profile,
        },
        messages: exported,
        active_root: active_root.and_then(|root| index_of.get(&root).copied()),
    })
}

fn invalid(reason: impl Into<String>) -> StoreError {
    StoreError::Import(reason.into())
}

fn check_short(what: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(value) if value.len() > MAX_IMPORT_SHORT_BYTES => Err(invalid(format!(
            "{what} is {} bytes; at most {MAX_IMPORT_SHORT_BYTES} are allowed",
            value.len()
        ))),
        _ => Ok(()),
    }
}

fn check_text(what: &str, value: &str) -> Result<()> {
    if value.len() > MAX_IMPORT_TEXT_BYTES {
        return Err(invalid(format!(
            "{what} is {} bytes; at most {MAX_IMPORT_TEXT_BYTES} are allowed",
            value.len()
        )));
    }
    Ok(())
}

fn check_sha(value: &str) -> Result<()> {
    if attachments::is_sha256_hex(value) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{:?} is not a sha256 (64 lowercase hex digits)",
            value.chars().take(80).collect::<String>()
        )))
    }
}

/// Checks everything that does not need the database: shape, bounds, references.
fn validate(export: &ConversationExport) -> Result<()> {
    if export.format != EXPORT_FORMAT {
        return Err(invalid(format!(
            "this is not a Cria conversation export (format {:?})",
            export.format.chars().take(80).collect::<String>()
        )));
    }
    if export.version != EXPORT_VERSION {
        return Err(invalid(format!(
            "export format version {} is not supported (this Cria reads version {EXPORT_VERSION}); \
             update Cria to import it",
            export.version
        )));
    }
    let header = &export.conversation;
    check_short("the title", Some(&header.title))?;
    check_text(
        "the system prompt",
        header.system_prompt.as_deref().unwrap_or_default(),
    )?;
    check_short("the model profile", header.model_profile.as_deref())?;
    let count = export.messages.len();
    if count > MAX_IMPORT_MESSAGES {
        return Err(invalid(format!(
            "the conversation has {count} messages; at most {MAX_IMPORT_MESSAGES} are allowed"
        )));
    }
    if let Some(root) = export.active_root
        && export.messages.get(root).is_none_or(|m| m.parent.is_some())
    {
        return Err(invalid(format!("active_root {root} is not a root message")));
    }
    for (index, message) in export.messages.iter().enumerate() {
        if let Some(parent) = message.parent
            && parent >= index
        {
            return Err(invalid(format!(
                "message {index} names parent {parent}, which does not come before it"
            )));
        }
        if let Some(child) = message.active_child
            && export
                .messages
                .get(child)
                .is_none_or(|c| c.parent != Some(index))
        {
            return Err(invalid(format!(
                "message {index} names active child {child}, which is not its child"
            )));
        }
        check_text("a message", &message.content)?;
        check_text(
            "an error text",
            message.error.as_deref().unwrap_or_default(),
        )?;
        check_short("a model id", message.stats.model_id.as_deref())?;
        check_short("a route", message.stats.route.as_deref())?;
        if message
            .stats
            .tokens_per_second
            .is_some_and(|rate| !rate.is_finite() || rate < 0.0)
        {
            return Err(invalid(format!(
                "message {index} has an invalid tokens_per_second"
            )));
        }
        if message.attachments.len() > MAX_IMPORT_ITEMS {
            return Err(invalid(format!("message {index} has too many attachments")));
        }
        for attachment in &message.attachments {
            check_sha(&attachment.sha256)?;
            if let Some(thumbnail) = &attachment.thumbnail_sha256 {
                check_sha(thumbnail)?;
            }
            check_short("an attachment name", Some(&attachment.original_name))?;
            check_short("a MIME type", Some(&attachment.mime))?;
            if let Some(document) = &attachment.document {
                if document.pages.len() > MAX_IMPORT_ITEMS
                    || document.chunks.len() > MAX_IMPORT_ITEMS
                {
                    return Err(invalid("a document has too many pages or chunks"));
                }
                for page in &document.pages {
                    check_text("a document page", &page.text)?;
                }
                for chunk in &document.chunks {
                    check_text("a document chunk", &chunk.text)?;
                }
            }
        }
    }
    Ok(())
}

/// Decodes embedded bytes and stages them as a blob whose hash must be `sha256`.
fn stage_embedded(store: &Store, sha256: &str, data: &str) -> Result<StagedBlob> {
    let bytes = BASE64.decode(data).map_err(|error| {
        invalid(format!(
            "the embedded file {sha256} is not valid base64: {error}"
        ))
    })?;
    let staged = store.stage_blob(bytes.as_slice())?;
    if staged.blob.sha256 != sha256 {
        return Err(invalid(format!(
            "the embedded file does not match its sha256 {sha256} (it hashes to {})",
            staged.blob.sha256
        )));
    }
    Ok(staged)
}

pub(crate) fn import(store: &Store, reader: impl Read) -> Result<ConversationId> {
    let mut limited = reader.take(MAX_IMPORT_BYTES + 1);
    let mut bytes = Vec::new();
    limited
        .read_to_end(&mut bytes)
        .map_err(|source| StoreError::ReadSource { source })?;
    if bytes.len() as u64 > MAX_IMPORT_BYTES {
        return Err(StoreError::TooLarge {
            what: "import file",
            limit: MAX_IMPORT_BYTES,
        });
    }
    let export: ConversationExport = serde_json::from_slice(&bytes).map_err(|error| {
        invalid(format!(
            "the file is not a valid conversation export: {error}"
        ))
    })?;
    drop(bytes);
    validate(&export)?;

    // Stage embedded blobs first (slow, outside the lock); each is checked against its name.
    let mut staged: HashMap<String, StagedBlob> = HashMap::new();
    let mut wanted: Vec<(String, u64)> = Vec::new();
    for attachment in export.messages.iter().flat_map(|m| &m.attachments) {
        wanted.push((attachment.sha256.clone(), attachment.size));
        if let Some(data) = &attachment.data_base64
            && !staged.contains_key(&attachment.sha256)
        {
            let blob = stage_embedded(store, &attachment.sha256, data)?;
            if blob.blob.size != attachment.size {
                return Err(invalid(format!(
                    "the embedded file {} has {} bytes, not the stated {}",
                    attachment.sha256, blob.blob.size, attachment.size
                )));
            }
            staged.insert(attachment.sha256.clone(), blob);
        }
        if let (Some(thumbnail), Some(data)) =
            (&attachment.thumbnail_sha256, &attachment.thumbnail_base64)
            && !staged.contains_key(thumbnail)
        {
            staged.insert(thumbnail.clone(), stage_embedded(store, thumbnail, data)?);
        }
    }

    store.with_tx(|tx| {
        let mut blobs: HashMap<String, BlobRef> = HashMap::new();
        for (sha256, blob) in &staged {
            // Only reached with staged blobs, which only a store with a blob folder makes.
            let blob_dir = store.blob_dir().ok_or(StoreError::NoBlobFolder)?;
            blobs.insert(sha256.clone(), attachments::commit(tx, blob_dir, blob)?);
        }
        let header = &export.conversation;
        let conversation = conversations::insert(
            tx,
            &header.title,
            header.created_at_ms,
            header.updated_at_ms,
        )?;
        tx.execute(
            "UPDATE conversations SET pinned = ?1, archived = ?2, system_prompt = ?3, \
             model_profile = ?4 WHERE id = ?5",
            rusqlite::params![
                header.pinned,
                header.archived,
                header.system_prompt,
                header.model_profile,
                conversation.id.0
            ],
        )?;
        let mut ids: Vec<MessageId> = Vec::with_capacity(export.messages.len());
        for message in &export.messages {
            let status = match message.status {
                MessageStatus::Streaming => MessageStatus::Interrupted,
                other => other,
            };
            let id = messages::insert(
                tx,
                &NewMessage {
                    conversation: conversation.id,
                    parent: message.parent.map(|p| ids[p]),
                    role: message.role,
                    content: &message.content,
                    status,
                    error: message.error.as_deref(),
                    stats: &message.stats,
                    created_at_ms: message.created_at_ms,
                    finished_at_ms: message.finished_at_ms,
                },
            )?;
            ids.push(id);
            for attachment in &message.attachments {
                let blob = known_blob(tx, &blobs, &attachment.sha256, &attachment.original_name)?;
                if blob.size != attachment.size {
                    return Err(invalid(format!(
                        "attachment {} is {} bytes in this library, not the stated {}",
                        attachment.sha256, blob.size, attachment.size
                    )));
                }
                let thumbnail = match &attachment.thumbnail_sha256 {
                    Some(sha) => Some(known_blob(tx, &blobs, sha, "thumbnail")?.sha256),
                    None => None,
                };
                attachments::insert(
                    tx,
                    id,
                    &blob,
                    &AttachmentMeta {
                        original_name: attachment.original_name.clone(),
                        mime: attachment.mime.clone(),
                        kind: attachment.kind,
                    },
                    thumbnail.as_deref(),
                    attachment.created_at_ms,
                )?;
                if let Some(document) = &attachment.document {
                    documents::put(tx, &blob.sha256, &document.pages, &document.chunks)?;
                }
            }
        }
        let pointers: Vec<(MessageId, MessageId)> = export
            .messages
            .iter()
            .enumerate()
            .filter_map(|(index, m)| m.active_child.map(|child| (ids[index], ids[child])))
            .collect();
        messages::restore_pointers(
            tx,
            conversation.id,
            export.active_root.map(|root| ids[root]),
            &pointers,
        )?;
        // Restoring pointers must not count as a change to the conversation.
        tx.execute(
            "UPDATE conversations SET updated_at_ms = ?1 WHERE id = ?2",
            rusqlite::params![header.updated_at_ms, conversation.id.0],
        )?;
        Ok(conversation.id)
    })
}

/// A blob the import may reference: embedded in the file, or already in this library.
fn known_blob(
    conn: &Connection,
    staged: &HashMap<String, BlobRef>,
    sha256: &str,
    name: &str,
) -> Result<BlobRef> {
    if let Some(blob) = staged.get(sha256) {
        return Ok(blob.clone());
    }
    let size: Option<i64> = rusqlite::OptionalExtension::optional(conn.query_row(
        "SELECT size FROM blobs WHERE sha256 = ?1",
        [sha256],
        |row| row.get(0),
    ))?;
    size.map(|size| BlobRef {
        sha256: sha256.to_string(),
        size: size.max(0).unsigned_abs(),
    })
    .ok_or_else(|| {
        invalid(format!(
            "the file {:?} ({sha256}) is referenced but not included, and this library does not \
             have it; export the conversation again with attachments included",
            attachments::clean_name(name)
        ))
    })
}

/// Civil date and time (UTC) of a Unix time in milliseconds, as `YYYY-MM-DD HH:MM`.
fn format_utc(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    // Days to civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        of_day / 3600,
        (of_day % 3600) / 60
    )
}

/// The visible branch as Markdown: a heading per message, attachments listed by name and
/// sha256, failures and interruptions noted.
pub(crate) fn export_markdown(store: &Store, conversation: ConversationId) -> Result<String> {
    store.with_tx(|tx| {
        let header = conversations::get(tx, conversation)?;
        let path = messages::active_path_entries(tx, conversation)?;
        let mut out = format!("# {}\n\n", header.title.replace('\n', " "));
        out.push_str(&format!(
            "_Exported from Cria. Started {}, last changed {}._\n\n",
            format_utc(header.created_at_ms),
            format_utc(header.updated_at_ms)
        ));
        if let Some(system_prompt) = &header.system_prompt {
            out.push_str(&format!("## System prompt\n\n{system_prompt}\n\n"));
        }
        for entry in path {
            let message = entry.message;
            let who = match message.role {
                Role::System => "System".to_string(),
                Role::User => "You".to_string(),
                Role::Assistant => match &message.stats.model_id {
                    Some(model) => format!("Assistant ({model})"),
                    None => "Assistant".to_string(),
                },
            };
            out.push_str(&format!("## {who}\n\n"));
            out.push_str(&message.content);
            out.push_str("\n\n");
            let attached = attachments::of_message(tx, message.id)?;
            for attachment in attached {
                out.push_str(&format!(
                    "- Attachment: {} ({}, {} bytes, sha256 {})\n",
                    attachment.original_name, attachment.mime, attachment.size, attachment.sha256
                ));
            }
            match message.status {
                MessageStatus::Complete => {}
                MessageStatus::Streaming => out.push_str("_(still being written)_\n\n"),
                MessageStatus::Interrupted => out.push_str("_(interrupted)_\n\n"),
                MessageStatus::Cancelled => out.push_str("_(stopped)_\n\n"),
                MessageStatus::Failed => out.push_str(&format!(
                    "_(failed: {})_\n\n",
                    message.error.as_deref().unwrap_or("unknown error")
                )),
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_formatted_in_utc() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(format_utc(1_798_761_599_000), "2026-12-31 23:59 UTC");
    }
}
