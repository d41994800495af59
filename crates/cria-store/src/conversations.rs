//! Queries on the `conversations` table.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::{Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConversationId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub title: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub pinned: bool,
    pub archived: bool,
    pub system_prompt: Option<String>,
    pub model_profile: Option<String>,
}

/// Longest title kept; longer ones are cut (titles are shown in a one-line list).
pub const MAX_TITLE_CHARS: usize = 500;

const COLUMNS: &str =
    "id, title, created_at_ms, updated_at_ms, pinned, archived, system_prompt, model_profile";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: ConversationId(row.get(0)?),
        title: row.get(1)?,
        created_at_ms: row.get(2)?,
        updated_at_ms: row.get(3)?,
        pinned: row.get(4)?,
        archived: row.get(5)?,
        system_prompt: row.get(6)?,
        model_profile: row.get(7)?,
    })
}

pub(crate) fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

fn clean_title(title: &str) -> String {
    let one_line: String = title
        .trim()
        .chars()
        .map(|ch| if ch.is_control() { ' ' } else { ch })
        .take(MAX_TITLE_CHARS)
        .collect();
    one_line
}

pub(crate) fn create(conn: &Connection, title: &str) -> Result<Conversation> {
    let now = now_ms();
    insert(conn, &clean_title(title), now, now)
}

pub(crate) fn insert(
    conn: &Connection,
    title: &str,
    created_at_ms: i64,
    updated_at_ms: i64,
) -> Result<Conversation> {
    conn.execute(
        "INSERT INTO conversations (title, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?3)",
        params![title, created_at_ms, updated_at_ms],
    )?;
    get(conn, ConversationId(conn.last_insert_rowid()))
}

pub(crate) fn get(conn: &Connection, id: ConversationId) -> Result<Conversation> {
    let sql = format!("SELECT {COLUMNS} FROM conversations WHERE id = ?1");
    conn.query_row(&sql, [id.0], from_row)
        .optional()?
        .ok_or(StoreError::NotFound {
            what: "conversation",
            id: id.0,
        })
}

/// Which conversations a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listing {
    /// Not archived: the sidebar.
    #[default]
    Active,
    Archived,
    All,
}

/// Pinned first, then most recently updated.
pub(crate) fn list_recent(
    conn: &Connection,
    listing: Listing,
    limit: u32,
    offset: u32,
) -> Result<Vec<Conversation>> {
    let filter = match listing {
        Listing::Active => "WHERE archived = 0",
        Listing::Archived => "WHERE archived = 1",
        Listing::All => "",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM conversations {filter} \
         ORDER BY pinned DESC, updated_at_ms DESC, id DESC LIMIT ?1 OFFSET ?2"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params![limit, offset], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn update(
    conn: &Connection,
    id: ConversationId,
    set: &str,
    value: rusqlite::types::Value,
) -> Result<()> {
    let sql = format!("UPDATE conversations SET {set} = ?1, updated_at_ms = ?2 WHERE id = ?3");
    if conn.execute(&sql, params![value, now_ms(), id.0])? == 0 {
        return Err(StoreError::NotFound {
            what: "conversation",
            id: id.0,
        });
    }
    Ok(())
}

pub(crate) fn rename(conn: &Connection, id: ConversationId, title: &str) -> Result<()> {
    update(conn, id, "title", clean_title(title).into())
}

pub(crate) fn set_pinned(conn: &Connection, id: ConversationId, pinned: bool) -> Result<()> {
    update(conn, id, "pinned", i64::from(pinned).into())
}

pub(crate) fn set_archived(conn: &Connection, id: ConversationId, archived: bool) -> Result<()> {
    update(conn, id, "archived", i64::from(archived).into())
}

pub(crate) fn set_system_prompt(
    conn: &Connection,
    id: ConversationId,
    system_prompt: Option<&str>,
) -> Result<()> {
    update(
        conn,
        id,
        "system_prompt",
        system_prompt.map(str::to_string).into(),
    )
}

pub(crate) fn set_model_profile(
    conn: &Connection,
    id: ConversationId,
    model_profile: Option<&str>,
) -> Result<()> {
    update(
        conn,
        id,
        "model_profile",
        model_profile.map(str::to_string).into(),
    )
}

/// Deletes the conversation with its messages and attachment rows (blobs are collected later).
pub(crate) fn delete(conn: &Connection, id: ConversationId) -> Result<()> {
    // Clear the tree's own pointers first so cascading deletes never trip over each other.
    conn.execute(
        "UPDATE conversations SET active_root_id = NULL WHERE id = ?1",
        [id.0],
    )?;
    if conn.execute("DELETE FROM conversations WHERE id = ?1", [id.0])? == 0 {
        return Err(StoreError::NotFound {
            what: "conversation",
            id: id.0,
        });
    }
    Ok(())
}

pub(crate) fn touch(conn: &Connection, id: ConversationId) -> Result<()> {
    conn.execute(
        "UPDATE conversations SET updated_at_ms = ?1 WHERE id = ?2",
        params![now_ms(), id.0],
    )?;
    Ok(())
}
