//! Queries on the `messages` table: a tree per conversation, walked through active children.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::conversations::{self, ConversationId, now_ms};
use crate::{Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub i64);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Streaming,
    Complete,
    Interrupted,
    Failed,
    Cancelled,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Streaming => "streaming",
            MessageStatus::Complete => "complete",
            MessageStatus::Interrupted => "interrupted",
            MessageStatus::Failed => "failed",
            MessageStatus::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "streaming" => MessageStatus::Streaming,
            "complete" => MessageStatus::Complete,
            "interrupted" => MessageStatus::Interrupted,
            "failed" => MessageStatus::Failed,
            "cancelled" => MessageStatus::Cancelled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub parent_id: Option<MessageId>,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    pub model_id: Option<String>,
    pub error: Option<String>,
    pub created_at_ms: i64,
}

const COLUMNS: &str =
    "id, conversation_id, parent_id, role, content, status, model_id, error, created_at_ms";

fn invalid(column: usize, value: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("unexpected value {value:?}").into(),
    )
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    let role: String = row.get(3)?;
    let status: String = row.get(5)?;
    Ok(Message {
        id: MessageId(row.get(0)?),
        conversation_id: ConversationId(row.get(1)?),
        parent_id: row.get::<_, Option<i64>>(2)?.map(MessageId),
        role: Role::parse(&role).ok_or_else(|| invalid(3, role.clone()))?,
        content: row.get(4)?,
        status: MessageStatus::parse(&status).ok_or_else(|| invalid(5, status.clone()))?,
        model_id: row.get(6)?,
        error: row.get(7)?,
        created_at_ms: row.get(8)?,
    })
}

fn get(conn: &Connection, id: MessageId) -> Result<Message> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE id = ?1");
    conn.query_row(&sql, [id.0], from_row)
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "message",
            id: id.0,
        })
}

pub(crate) fn append(
    tx: &Transaction<'_>,
    conversation: ConversationId,
    parent: Option<MessageId>,
    role: Role,
    content: &str,
    status: MessageStatus,
) -> Result<Message> {
    conversations::get(tx, conversation)?;
    tx.execute(
        "INSERT INTO messages (conversation_id, parent_id, role, content, status, created_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            conversation.0,
            parent.map(|p| p.0),
            role.as_str(),
            content,
            status.as_str(),
            now_ms()
        ],
    )?;
    let id = MessageId(tx.last_insert_rowid());
    if let Some(parent) = parent {
        tx.execute(
            "UPDATE messages SET active_child_id = ?1 WHERE id = ?2",
            params![id.0, parent.0],
        )?;
    }
    conversations::touch(tx, conversation)?;
    get(tx, id)
}

pub(crate) fn append_text(tx: &Transaction<'_>, id: MessageId, text: &str) -> Result<()> {
    let changed = tx.execute(
        "UPDATE messages SET content = content || ?1 WHERE id = ?2 AND status = 'streaming'",
        params![text, id.0],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: "streaming message",
            id: id.0,
        });
    }
    Ok(())
}

pub(crate) fn finalize(
    conn: &Connection,
    id: MessageId,
    status: MessageStatus,
    error: Option<&str>,
) -> Result<()> {
    let changed = conn.execute(
        "UPDATE messages SET status = ?1, error = ?2 WHERE id = ?3 AND status = 'streaming'",
        params![status.as_str(), error, id.0],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: "streaming message",
            id: id.0,
        });
    }
    Ok(())
}

pub(crate) fn recover_streaming(tx: &Transaction<'_>) -> Result<usize> {
    Ok(tx.execute(
        "UPDATE messages SET status = 'interrupted', \
         error = COALESCE(error, 'Cria stopped while this reply was being written.') \
         WHERE status = 'streaming'",
        [],
    )?)
}

/// Walks from the root through each node's active child (or its newest child).
pub(crate) fn active_path(
    tx: &Transaction<'_>,
    conversation: ConversationId,
) -> Result<Vec<Message>> {
    conversations::get(tx, conversation)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM messages WHERE conversation_id = ?1 AND parent_id IS NULL \
         ORDER BY id DESC LIMIT 1"
    );
    let mut next = tx.query_row(&sql, [conversation.0], from_row).optional()?;
    let mut path = Vec::new();
    while let Some(message) = next {
        let child_sql = format!(
            "SELECT {COLUMNS} FROM messages WHERE parent_id = ?1 \
             ORDER BY (id = (SELECT active_child_id FROM messages WHERE id = ?1)) DESC, id DESC \
             LIMIT 1"
        );
        next = tx
            .query_row(&child_sql, [message.id.0], from_row)
            .optional()?;
        path.push(message);
    }
    Ok(path)
}
