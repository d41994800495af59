//! Queries on the `messages` table: a tree per conversation, walked through active children.
//!
//! Contract: nothing is ever overwritten to change the conversation. Editing a message or
//! regenerating a reply adds a sibling and makes it active; switching branches only moves
//! `active_child_id` pointers (and `conversations.active_root_id` for roots). Only a
//! `streaming` message's text grows, and only until it is finished.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::conversations::{self, ConversationId, now_ms};
use crate::{Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
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

    pub(crate) fn parse(text: &str) -> Option<Self> {
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

/// Figures about how a reply was generated; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerationStats {
    pub model_id: Option<String>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    /// Time to first token.
    pub ttft_ms: Option<u32>,
    pub tokens_per_second: Option<f64>,
    /// Which engine path produced the reply (for example `fast` or `vision`).
    pub route: Option<String>,
    /// Prompt positions taken from the engine's cache instead of being processed again.
    pub reused_tokens: Option<u32>,
    /// Why the reply went to this model ("the message has an image", "pinned by you", …).
    pub route_reason: Option<String>,
    /// Why generation ended: `stop`, `stop_string`, `length`, `context_full` or `cancelled`.
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub parent_id: Option<MessageId>,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    pub error: Option<String>,
    /// Model, token counts, timings and route (empty for the user's own messages).
    pub stats: GenerationStats,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// For replies: what the user should know about the context it was written from
    /// (material left out of the prompt, images the model could not see).
    pub notices: Vec<String>,
}

/// A message on the visible branch with its place among its siblings ("‹ 2/3 ›").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathEntry {
    pub message: Message,
    /// 0-based position among the siblings, oldest first.
    pub sibling_index: usize,
    pub sibling_count: usize,
}

/// A message's siblings (itself included), oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Siblings {
    pub ids: Vec<MessageId>,
    /// Position of the asked-for message in `ids`.
    pub index: usize,
}

pub(crate) const COLUMNS: &str = "id, conversation_id, parent_id, role, content, status, model_id, \
     error, prompt_tokens, completion_tokens, ttft_ms, tokens_per_second, route, created_at_ms, \
     finished_at_ms, reused_tokens, route_reason, notices, finish_reason";

pub(crate) fn invalid(column: usize, value: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("unexpected value {value:?}").into(),
    )
}

pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    let role: String = row.get(3)?;
    let status: String = row.get(5)?;
    Ok(Message {
        id: MessageId(row.get(0)?),
        conversation_id: ConversationId(row.get(1)?),
        parent_id: row.get::<_, Option<i64>>(2)?.map(MessageId),
        role: Role::parse(&role).ok_or_else(|| invalid(3, role.clone()))?,
        content: row.get(4)?,
        status: MessageStatus::parse(&status).ok_or_else(|| invalid(5, status.clone()))?,
        error: row.get(7)?,
        stats: GenerationStats {
            model_id: row.get(6)?,
            prompt_tokens: row.get(8)?,
            completion_tokens: row.get(9)?,
            ttft_ms: row.get(10)?,
            tokens_per_second: row.get(11)?,
            route: row.get(12)?,
            reused_tokens: row.get(15)?,
            route_reason: row.get(16)?,
            finish_reason: row.get(18)?,
        },
        created_at_ms: row.get(13)?,
        finished_at_ms: row.get(14)?,
        notices: parse_notices(row.get(17)?),
    })
}

/// Notices are stored as a JSON array; anything else (a hand-edited database) reads as none.
fn parse_notices(json: Option<String>) -> Vec<String> {
    json.and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

pub(crate) fn notices_json(notices: &[String]) -> Option<String> {
    (!notices.is_empty()).then(|| serde_json::Value::from(notices.to_vec()).to_string())
}

pub(crate) fn get(conn: &Connection, id: MessageId) -> Result<Message> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id.0], from_row)
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "message",
            id: id.0,
        })
}

/// Everything needed to insert a message; used by appends and by import.
pub(crate) struct NewMessage<'a> {
    pub conversation: ConversationId,
    pub parent: Option<MessageId>,
    pub role: Role,
    pub content: &'a str,
    pub status: MessageStatus,
    pub error: Option<&'a str>,
    pub stats: &'a GenerationStats,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

/// Inserts a row without touching any branch pointer.
pub(crate) fn insert(conn: &Connection, new: &NewMessage<'_>) -> Result<MessageId> {
    if let Some(parent) = new.parent {
        let parent_conversation: Option<i64> = conn
            .query_row(
                "SELECT conversation_id FROM messages WHERE id = ?1",
                [parent.0],
                |row| row.get(0),
            )
            .optional()?;
        match parent_conversation {
            None => {
                return Err(StoreError::NotFound {
                    what: "parent message",
                    id: parent.0,
                });
            }
            Some(owner) if owner != new.conversation.0 => {
                return Err(StoreError::InvalidInput(format!(
                    "message {} belongs to another conversation",
                    parent.0
                )));
            }
            Some(_) => {}
        }
    }
    conn.prepare_cached(
        "INSERT INTO messages (conversation_id, parent_id, role, content, status, error, \
         model_id, prompt_tokens, completion_tokens, ttft_ms, tokens_per_second, route, \
         created_at_ms, finished_at_ms, reused_tokens, route_reason, finish_reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        new.conversation.0,
        new.parent.map(|p| p.0),
        new.role.as_str(),
        new.content,
        new.status.as_str(),
        new.error,
        new.stats.model_id,
        new.stats.prompt_tokens,
        new.stats.completion_tokens,
        new.stats.ttft_ms,
        new.stats.tokens_per_second,
        new.stats.route,
        new.created_at_ms,
        new.finished_at_ms,
        new.stats.reused_tokens,
        new.stats.route_reason,
        new.stats.finish_reason,
    ])?;
    Ok(MessageId(conn.last_insert_rowid()))
}

/// Makes `id` the visible continuation of its parent (or the conversation's visible root).
fn make_active(conn: &Connection, id: MessageId) -> Result<()> {
    let (conversation, parent): (i64, Option<i64>) = conn
        .query_row(
            "SELECT conversation_id, parent_id FROM messages WHERE id = ?1",
            [id.0],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "message",
            id: id.0,
        })?;
    match parent {
        Some(parent) => conn.execute(
            "UPDATE messages SET active_child_id = ?1 WHERE id = ?2",
            params![id.0, parent],
        )?,
        None => conn.execute(
            "UPDATE conversations SET active_root_id = ?1 WHERE id = ?2",
            params![id.0, conversation],
        )?,
    };
    Ok(())
}

pub(crate) fn append(
    conn: &Connection,
    conversation: ConversationId,
    parent: Option<MessageId>,
    role: Role,
    content: &str,
    status: MessageStatus,
) -> Result<Message> {
    conversations::get(conn, conversation)?;
    let now = now_ms();
    let id = insert(
        conn,
        &NewMessage {
            conversation,
            parent,
            role,
            content,
            status,
            error: None,
            stats: &GenerationStats::default(),
            created_at_ms: now,
            finished_at_ms: (status != MessageStatus::Streaming).then_some(now),
        },
    )?;
    make_active(conn, id)?;
    conversations::touch(conn, conversation)?;
    get(conn, id)
}

pub(crate) fn append_text(conn: &Connection, id: MessageId, text: &str) -> Result<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE messages SET content = content || ?1 WHERE id = ?2 AND status = 'streaming'",
        )?
        .execute(params![text, id.0])?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: "streaming message",
            id: id.0,
        });
    }
    Ok(())
}

/// Ends a streaming message with its final status, error text and figures.
pub(crate) fn finish(
    conn: &Connection,
    id: MessageId,
    status: MessageStatus,
    error: Option<&str>,
    stats: &GenerationStats,
) -> Result<()> {
    if status == MessageStatus::Streaming {
        return Err(StoreError::InvalidInput(
            "a message cannot be finished as `streaming`".into(),
        ));
    }
    let changed = conn.execute(
        "UPDATE messages SET status = ?1, error = ?2, \
         model_id = COALESCE(?3, model_id), prompt_tokens = ?4, completion_tokens = ?5, \
         ttft_ms = ?6, tokens_per_second = ?7, route = COALESCE(?8, route), finished_at_ms = ?9, \
         reused_tokens = ?11, route_reason = COALESCE(?12, route_reason), finish_reason = ?13 \
         WHERE id = ?10 AND status = 'streaming'",
        params![
            status.as_str(),
            error,
            stats.model_id,
            stats.prompt_tokens,
            stats.completion_tokens,
            stats.ttft_ms,
            stats.tokens_per_second,
            stats.route,
            now_ms(),
            id.0,
            stats.reused_tokens,
            stats.route_reason,
            stats.finish_reason,
        ],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: "streaming message",
            id: id.0,
        });
    }
    Ok(())
}

/// Records which model and route are writing a streaming reply (known before it finishes).
pub(crate) fn set_model(
    conn: &Connection,
    id: MessageId,
    model_id: Option<&str>,
    route: Option<&str>,
) -> Result<()> {
    let changed = conn.execute(
        "UPDATE messages SET model_id = ?1, route = ?2 WHERE id = ?3",
        params![model_id, route, id.0],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: "message",
            id: id.0,
        });
    }
    Ok(())
}

pub(crate) fn recover_streaming(conn: &Connection) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE messages SET status = 'interrupted', finished_at_ms = ?1, \
         error = COALESCE(error, 'Cria stopped while this reply was being written.') \
         WHERE status = 'streaming'",
        [now_ms()],
    )?)
}

/// Adds a sibling of `id` with new text (same parent and role) and makes it visible. The
/// attachments of the original go with it: the user edited the words, not the files.
pub(crate) fn edit(conn: &Connection, id: MessageId, content: &str) -> Result<Message> {
    let original = get(conn, id)?;
    if original.status == MessageStatus::Streaming {
        return Err(StoreError::InvalidInput(
            "a reply cannot be edited while it is being written".into(),
        ));
    }
    let now = now_ms();
    let sibling = insert(
        conn,
        &NewMessage {
            conversation: original.conversation_id,
            parent: original.parent_id,
            role: original.role,
            content,
            status: MessageStatus::Complete,
            error: None,
            stats: &GenerationStats::default(),
            created_at_ms: now,
            finished_at_ms: Some(now),
        },
    )?;
    crate::attachments::copy_to(conn, id, sibling)?;
    make_active(conn, sibling)?;
    conversations::touch(conn, original.conversation_id)?;
    get(conn, sibling)
}

/// Adds an empty `streaming` sibling of the assistant reply `id` and makes it visible.
pub(crate) fn regenerate(conn: &Connection, id: MessageId) -> Result<Message> {
    let original = get(conn, id)?;
    if original.role != Role::Assistant {
        return Err(StoreError::InvalidInput(format!(
            "message {} is not a reply; only replies can be regenerated",
            id.0
        )));
    }
    if original.status == MessageStatus::Streaming {
        return Err(StoreError::InvalidInput(
            "this reply is still being written; stop it before regenerating".into(),
        ));
    }
    append(
        conn,
        original.conversation_id,
        original.parent_id,
        Role::Assistant,
        "",
        MessageStatus::Streaming,
    )
}

/// Makes the branch through `id` visible: `id` and each of its ancestors become active.
pub(crate) fn switch_branch(conn: &Connection, id: MessageId) -> Result<()> {
    let mut current = Some(id);
    let mut steps = 0usize;
    while let Some(message) = current {
        make_active(conn, message)?;
        current = conn
            .query_row(
                "SELECT parent_id FROM messages WHERE id = ?1",
                [message.0],
                |row| row.get::<_, Option<i64>>(0),
            )?
            .map(MessageId);
        steps += 1;
        if steps > MAX_DEPTH {
            return Err(StoreError::Corrupt(format!(
                "message {} has a parent chain longer than {MAX_DEPTH}",
                id.0
            )));
        }
    }
    let conversation: i64 = conn.query_row(
        "SELECT conversation_id FROM messages WHERE id = ?1",
        [id.0],
        |row| row.get(0),
    )?;
    conversations::touch(conn, ConversationId(conversation))
}

pub(crate) fn siblings(conn: &Connection, id: MessageId) -> Result<Siblings> {
    let message = get(conn, id)?;
    let mut statement = conn.prepare_cached(
        "SELECT id FROM messages WHERE conversation_id = ?1 AND parent_id IS ?2 ORDER BY id",
    )?;
    let ids: Vec<MessageId> = statement
        .query_map(
            params![message.conversation_id.0, message.parent_id.map(|p| p.0)],
            |row| Ok(MessageId(row.get(0)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let index = ids.iter().position(|&s| s == id).unwrap_or_default();
    Ok(Siblings { ids, index })
}

/// Deeper trees than this are refused while walking: it bounds the work a corrupt or hostile
/// database (a parent cycle) can cause. No real conversation comes near it.
pub const MAX_DEPTH: usize = 100_000;

/// All children of each message of a conversation, oldest first, plus its roots.
fn children_map(
    conn: &Connection,
    conversation: ConversationId,
) -> Result<std::collections::HashMap<Option<MessageId>, Vec<Message>>> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE conversation_id = ?1 ORDER BY id");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut map: std::collections::HashMap<Option<MessageId>, Vec<Message>> =
        std::collections::HashMap::new();
    for message in statement.query_map([conversation.0], from_row)? {
        let message = message?;
        map.entry(message.parent_id).or_default().push(message);
    }
    Ok(map)
}

/// The visible branch with sibling positions: from the active root through active children.
pub(crate) fn active_path_entries(
    conn: &Connection,
    conversation: ConversationId,
) -> Result<Vec<PathEntry>> {
    let active_root: Option<i64> = conn
        .query_row(
            "SELECT active_root_id FROM conversations WHERE id = ?1",
            [conversation.0],
            |row| row.get(0),
        )
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "conversation",
            id: conversation.0,
        })?;
    let mut active_children: std::collections::HashMap<MessageId, MessageId> =
        std::collections::HashMap::new();
    {
        let mut statement = conn.prepare_cached(
            "SELECT id, active_child_id FROM messages \
             WHERE conversation_id = ?1 AND active_child_id IS NOT NULL",
        )?;
        for pair in statement.query_map([conversation.0], |row| {
            Ok((MessageId(row.get(0)?), MessageId(row.get(1)?)))
        })? {
            let (parent, child) = pair?;
            active_children.insert(parent, child);
        }
    }
    let mut children = children_map(conn, conversation)?;
    let mut path = Vec::new();
    let mut parent: Option<MessageId> = None;
    let mut wanted = active_root.map(MessageId);
    while let Some(mut siblings) = children.remove(&parent) {
        // The pointer wins; without one (or if it points elsewhere) the newest child does.
        let index = wanted
            .and_then(|w| siblings.iter().position(|m| m.id == w))
            .unwrap_or(siblings.len() - 1);
        let sibling_count = siblings.len();
        let message = siblings.swap_remove(index);
        parent = Some(message.id);
        wanted = active_children.get(&message.id).copied();
        path.push(PathEntry {
            message,
            sibling_index: index,
            sibling_count,
        });
        if path.len() > MAX_DEPTH {
            return Err(StoreError::Corrupt(format!(
                "conversation {} is deeper than {MAX_DEPTH} messages",
                conversation.0
            )));
        }
    }
    Ok(path)
}

/// Every message of a conversation (all branches), oldest first.
pub(crate) fn all_in_conversation(
    conn: &Connection,
    conversation: ConversationId,
) -> Result<Vec<Message>> {
    conversations::get(conn, conversation)?;
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE conversation_id = ?1 ORDER BY id");
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map([conversation.0], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The active root, and `(message, active child)` for each message that has a pointer.
pub(crate) type BranchPointers = (Option<MessageId>, Vec<(MessageId, MessageId)>);

/// The active child pointer of each message that has one, and the active root.
pub(crate) fn branch_pointers(
    conn: &Connection,
    conversation: ConversationId,
) -> Result<BranchPointers> {
    let root: Option<i64> = conn.query_row(
        "SELECT active_root_id FROM conversations WHERE id = ?1",
        [conversation.0],
        |row| row.get(0),
    )?;
    let mut statement = conn.prepare_cached(
        "SELECT id, active_child_id FROM messages \
         WHERE conversation_id = ?1 AND active_child_id IS NOT NULL ORDER BY id",
    )?;
    let pairs = statement
        .query_map([conversation.0], |row| {
            Ok((MessageId(row.get(0)?), MessageId(row.get(1)?)))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok((root.map(MessageId), pairs))
}

/// Sets branch pointers as they were (import); each must point at a child of its message.
pub(crate) fn restore_pointers(
    conn: &Connection,
    conversation: ConversationId,
    root: Option<MessageId>,
    pairs: &[(MessageId, MessageId)],
) -> Result<()> {
    conn.execute(
        "UPDATE conversations SET active_root_id = ?1 WHERE id = ?2",
        params![root.map(|r| r.0), conversation.0],
    )?;
    let mut statement = conn.prepare_cached(
        "UPDATE messages SET active_child_id = ?1 \
         WHERE id = ?2 AND EXISTS (SELECT 1 FROM messages c WHERE c.id = ?1 AND c.parent_id = ?2)",
    )?;
    for (parent, child) in pairs {
        if statement.execute(params![child.0, parent.0])? == 0 {
            return Err(StoreError::InvalidInput(format!(
                "message {} is not a child of message {}",
                child.0, parent.0
            )));
        }
    }
    Ok(())
}
