//! What a turn needs beyond the message text: the prompt view of each user message (so a later
//! turn sends it unchanged and the engine's KV cache stays valid), images prepared for the vision
//! encoder, notices for the user, and the citations resolved from a reply.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::attachments::{AttachmentId, is_sha256_hex};
use crate::messages::{MessageId, notices_json};
use crate::{Result, StoreError};

/// What the model was shown for a user message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptView {
    /// `None`: exactly the message's content.
    pub text: Option<String>,
    /// Prepared images (blob sha256) sent with the message, in order.
    pub images: Vec<String>,
}

/// An image stored ready for the vision encoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreparedImageRef {
    /// The stored file it was made from (an image, or a PDF for a rendered page).
    pub source_sha256: String,
    pub page_number: u32,
    /// The PNG holding the prepared pixels.
    pub image_sha256: String,
    pub width: u32,
    pub height: u32,
}

/// A citation in a reply: bytes `span_start..span_end` of its content name `page_number` of the
/// attachment `attachment_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    pub span_start: u32,
    pub span_end: u32,
    pub attachment_id: AttachmentId,
    pub page_number: u32,
}

fn not_found(id: MessageId) -> StoreError {
    StoreError::NotFound {
        what: "message",
        id: id.0,
    }
}

pub(crate) fn set_prompt_view(conn: &Connection, id: MessageId, view: &PromptView) -> Result<()> {
    if let Some(bad) = view.images.iter().find(|sha| !is_sha256_hex(sha)) {
        return Err(StoreError::InvalidInput(format!(
            "{bad:?} is not a sha256 of a prepared image"
        )));
    }
    let images =
        (!view.images.is_empty()).then(|| serde_json::Value::from(view.images.clone()).to_string());
    let changed = conn.execute(
        "UPDATE messages SET prompt_text = ?1, prompt_images = ?2 WHERE id = ?3",
        params![view.text, images, id.0],
    )?;
    if changed == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

pub(crate) fn prompt_view(conn: &Connection, id: MessageId) -> Result<PromptView> {
    let (text, images): (Option<String>, Option<String>) = conn
        .prepare_cached("SELECT prompt_text, prompt_images FROM messages WHERE id = ?1")?
        .query_row([id.0], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?
        .ok_or_else(|| not_found(id))?;
    let images: Vec<String> = images
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    Ok(PromptView {
        text,
        images: images
            .into_iter()
            .filter(|sha| is_sha256_hex(sha))
            .collect(),
    })
}

pub(crate) fn set_notices(conn: &Connection, id: MessageId, notices: &[String]) -> Result<()> {
    let changed = conn.execute(
        "UPDATE messages SET notices = ?1 WHERE id = ?2",
        params![notices_json(notices), id.0],
    )?;
    if changed == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

pub(crate) fn put_prepared_image(conn: &Connection, image: &PreparedImageRef) -> Result<()> {
    if image.page_number == 0 || image.width == 0 || image.height == 0 {
        return Err(StoreError::InvalidInput(
            "a prepared image needs a page number and a size of at least 1".into(),
        ));
    }
    conn.execute(
        "INSERT INTO prepared_images (source_sha256, page_number, image_sha256, width, height) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (source_sha256, page_number) DO UPDATE SET image_sha256 = excluded.image_sha256, \
         width = excluded.width, height = excluded.height",
        params![
            image.source_sha256,
            image.page_number,
            image.image_sha256,
            image.width,
            image.height
        ],
    )?;
    Ok(())
}

pub(crate) fn prepared_images(conn: &Connection, source: &str) -> Result<Vec<PreparedImageRef>> {
    let mut statement = conn.prepare_cached(
        "SELECT source_sha256, page_number, image_sha256, width, height FROM prepared_images \
         WHERE source_sha256 = ?1 ORDER BY page_number",
    )?;
    let rows = statement.query_map([source], |row| {
        Ok(PreparedImageRef {
            source_sha256: row.get(0)?,
            page_number: row.get(1)?,
            image_sha256: row.get(2)?,
            width: row.get(3)?,
            height: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn replace_citations(
    conn: &Connection,
    message: MessageId,
    citations: &[Citation],
) -> Result<()> {
    conn.execute("DELETE FROM citations WHERE message_id = ?1", [message.0])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO citations (message_id, span_start, span_end, attachment_id, page_number) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for citation in citations {
        insert.execute(params![
            message.0,
            citation.span_start,
            citation.span_end,
            citation.attachment_id.0,
            citation.page_number
        ])?;
    }
    Ok(())
}

pub(crate) fn citations(conn: &Connection, message: MessageId) -> Result<Vec<Citation>> {
    let mut statement = conn.prepare_cached(
        "SELECT span_start, span_end, attachment_id, page_number FROM citations \
         WHERE message_id = ?1 ORDER BY span_start, id",
    )?;
    let rows = statement.query_map([message.0], |row| {
        Ok(Citation {
            span_start: row.get(0)?,
            span_end: row.get(1)?,
            attachment_id: AttachmentId(row.get(2)?),
            page_number: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Opens a finished reply for more text ("continue"): it becomes `streaming` again.
pub(crate) fn reopen_reply(conn: &Connection, id: MessageId) -> Result<()> {
    let changed = conn.execute(
        "UPDATE messages SET status = 'streaming', error = NULL, finished_at_ms = NULL \
         WHERE id = ?1 AND role = 'assistant' AND status <> 'streaming'",
        [id.0],
    )?;
    if changed == 0 {
        return Err(StoreError::InvalidInput(format!(
            "message {} is not a finished reply that can be continued",
            id.0
        )));
    }
    Ok(())
}

/// Records the first message in a reply's prompt (older messages were left out).
pub(crate) fn set_context_from(conn: &Connection, reply: MessageId, from: MessageId) -> Result<()> {
    let changed = conn.execute(
        "UPDATE messages SET context_from_id = ?1 WHERE id = ?2",
        params![from.0, reply.0],
    )?;
    if changed == 0 {
        return Err(not_found(reply));
    }
    Ok(())
}

pub(crate) fn context_from(conn: &Connection, reply: MessageId) -> Result<Option<MessageId>> {
    Ok(conn
        .prepare_cached("SELECT context_from_id FROM messages WHERE id = ?1")?
        .query_row([reply.0], |row| row.get::<_, Option<i64>>(0))
        .optional()?
        .ok_or_else(|| not_found(reply))?
        .map(MessageId))
}
