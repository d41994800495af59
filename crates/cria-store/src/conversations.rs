//! Queries on the `conversations` table.

use rusqlite::{Row, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::{Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
}

const COLUMNS: &str = "id, title, created_at_ms, updated_at_ms, pinned, archived";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: ConversationId(row.get(0)?),
        title: row.get(1)?,
        created_at_ms: row.get(2)?,
        updated_at_ms: row.get(3)?,
        pinned: row.get(4)?,
        archived: row.get(5)?,
    })
}

pub(crate) fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn create(tx: &Transaction<'_>, title: &str) -> Result<Conversation> {
    let now = now_ms();
    tx.execute(
        "INSERT INTO conversations (title, created_at_ms, updated_at_ms) VALUES (?1, ?2, ?2)",
        params![title, now],
    )?;
    get(tx, ConversationId(tx.last_insert_rowid()))
}

pub(crate) fn get(tx: &Transaction<'_>, id: ConversationId) -> Result<Conversation> {
    let sql = format!("SELECT {COLUMNS} FROM conversations WHERE id = ?1");
    match tx.query_row(&sql, [id.0], from_row) {
        Err(rusqlite::Error::QueryReturnedNoRows) => Err(StoreError::NotFound {
            what: "conversation",
            id: id.0,
        }),
        other => Ok(other?),
    }
}

/// Pinned first, then most recently updated; archived conversations are left out.
pub(crate) fn list_recent(
    tx: &Transaction<'_>,
    limit: u32,
    offset: u32,
) -> Result<Vec<Conversation>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM conversations WHERE archived = 0 \
         ORDER BY pinned DESC, updated_at_ms DESC, id DESC LIMIT ?1 OFFSET ?2"
    );
    let mut statement = tx.prepare(&sql)?;
    let rows = statement.query_map(params![limit, offset], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(crate) fn touch(tx: &Transaction<'_>, id: ConversationId) -> Result<()> {
    tx.execute(
        "UPDATE conversations SET updated_at_ms = ?1 WHERE id = ?2",
        params![now_ms(), id.0],
    )?;
    Ok(())
}
