//! Settings: a small key/value table. Values are text (callers store JSON where they need
//! structure); the store does not interpret them.

use rusqlite::{Connection, OptionalExtension, params};

use crate::conversations::now_ms;
use crate::{Result, StoreError};

/// Longest key accepted.
pub const MAX_KEY_CHARS: usize = 200;
/// Largest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

fn check(key: &str, value: Option<&str>) -> Result<()> {
    if key.is_empty() || key.chars().count() > MAX_KEY_CHARS {
        return Err(StoreError::InvalidInput(format!(
            "a setting key must have 1 to {MAX_KEY_CHARS} characters"
        )));
    }
    if value.is_some_and(|value| value.len() > MAX_VALUE_BYTES) {
        return Err(StoreError::TooLarge {
            what: "setting value",
            limit: MAX_VALUE_BYTES as u64,
        });
    }
    Ok(())
}

pub(crate) fn get(conn: &Connection, key: &str) -> Result<Option<String>> {
    check(key, None)?;
    Ok(conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?)
}

pub(crate) fn set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    check(key, Some(value))?;
    conn.execute(
        "INSERT INTO settings (key, value, updated_at_ms) VALUES (?1, ?2, ?3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
         updated_at_ms = excluded.updated_at_ms",
        params![key, value, now_ms()],
    )?;
    Ok(())
}

pub(crate) fn remove(conn: &Connection, key: &str) -> Result<bool> {
    check(key, None)?;
    Ok(conn.execute("DELETE FROM settings WHERE key = ?1", [key])? > 0)
}

pub(crate) fn all(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut statement = conn.prepare_cached("SELECT key, value FROM settings ORDER BY key")?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
