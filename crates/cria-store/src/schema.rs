//! The schema: append-only migrations, the SQL functions they rely on, and a text dump of the
//! schema for snapshot tests and diagnostics.
//!
//! Contract: a shipped migration is never edited; the next change is a new file appended to
//! [`MIGRATION_SCRIPTS`]. All pending migrations run in one transaction (rusqlite_migration),
//! so a crash during an upgrade leaves the old schema, and the next open runs it again.

use std::path::Path;

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite_migration::{M, Migrations};

use crate::Result;

const MIGRATION_SCRIPTS: &[&str] = &[
    include_str!("../migrations/0001_conversations.sql"),
    include_str!("../migrations/0002_attachments_documents_settings.sql"),
    include_str!("../migrations/0003_search.sql"),
    include_str!("../migrations/0004_turn_context.sql"),
];

/// The schema version a freshly opened store has (`PRAGMA user_version`).
pub const LATEST_VERSION: usize = MIGRATION_SCRIPTS.len();

/// Indexes rows that existed before search did (part of migration 3, append-only like it).
const SEARCH_BACKFILL: &str = "\
    INSERT INTO messages_fts (rowid, body) \
        SELECT id, cria_search_text(content) FROM messages WHERE status <> 'streaming'; \
    INSERT INTO chunks_fts (rowid, body) SELECT id, cria_search_text(text) FROM document_chunks;";

pub(crate) fn migrations() -> Migrations<'static> {
    let mut steps: Vec<M<'static>> = MIGRATION_SCRIPTS
        .iter()
        .map(|sql| M::up(sql).foreign_key_check())
        .collect();
    // The hook runs inside the migration's transaction, so the backfill is atomic with it.
    steps[2] = M::up_with_hook(MIGRATION_SCRIPTS[2], |tx: &rusqlite::Transaction<'_>| {
        register_functions(tx).map_err(|error| {
            rusqlite_migration::HookError::Hook(format!("could not register functions: {error}"))
        })?;
        tx.execute_batch(SEARCH_BACKFILL)?;
        Ok(())
    })
    .foreign_key_check();
    Migrations::new(steps)
}

/// Functions that triggers and migrations call; registered on every connection before use.
pub(crate) fn register_functions(conn: &Connection) -> Result<()> {
    conn.create_scalar_function(
        "cria_search_text",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |context| {
            let text: Option<String> = context.get(0)?;
            Ok(text.map(|text| crate::search::search_text(&text)))
        },
    )?;
    Ok(())
}

/// Every schema object (tables, indexes, triggers, FTS shadow tables) with its SQL, sorted,
/// preceded by the schema version. Two databases with the same dump have the same schema.
pub fn dump(conn: &Connection) -> Result<String> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let mut out = format!("-- user_version {version}\n");
    let mut statement = conn.prepare(
        "SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master \
         WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (kind, name, table, sql) = row?;
        out.push_str(&format!("\n-- {kind} {name} on {table}\n{sql};\n"));
    }
    Ok(out)
}

/// Creates a database at `path` with only the first `version` migrations applied: the schema
/// an older Cria left behind. For upgrade tests and tools; the app itself always migrates to
/// [`LATEST_VERSION`].
pub fn create_at_version(path: &Path, version: usize) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    register_functions(&conn)?;
    migrations().to_version(&mut conn, version)?;
    Ok(conn)
}

/// The [`dump`] of the database at `path` as it is, without migrating or changing it (a
/// crash-recovery of the WAL aside, which SQLite does on any open).
pub fn dump_file(path: &Path) -> Result<String> {
    let conn = Connection::open(path)?;
    dump(&conn)
}
