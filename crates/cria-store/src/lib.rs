//! The single source of truth for conversations: SQLite (WAL), migrations, a message tree.
//!
//! Architecture Invariant: `cria-store` knows nothing of llama.cpp, Tauri or file parsing. It
//! stores what it is given and hands it back; every write goes through [`Store::with_tx`].
//!
//! Threading: a [`Store`] owns one connection behind a mutex. Callers on async runtimes use
//! `spawn_blocking`; SQLite calls are short, so one connection per process is enough for now.

mod conversations;
mod messages;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, Transaction};
use rusqlite_migration::{M, Migrations};

pub use conversations::{Conversation, ConversationId};
pub use messages::{Message, MessageId, MessageStatus, Role};

/// Errors from the store. Messages say what happened; the shell maps kinds for the UI.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("could not upgrade the database schema: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("could not create the data folder {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: i64 },
}

pub type Result<T> = std::result::Result<T, StoreError>;

const MIGRATION_SCRIPTS: &[&str] = &[include_str!("../migrations/0001_conversations.sql")];

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATION_SCRIPTS.iter().map(|sql| M::up(sql)).collect())
}

/// An open database.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, migrates it, and marks replies that
    /// were still streaming when the last process died as `interrupted`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::DataDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        Self::from_connection(conn)
    }

    /// An in-memory database, for tests and previews.
    pub fn open_in_memory() -> Result<Self> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut conn: Connection) -> Result<Self> {
        // Per-connection settings live outside migrations: they are not part of the schema.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        // NORMAL in WAL mode: a commit survives an application crash (kill -9); only a power
        // loss can roll back the last few commits. Finalising a message uses FULL for itself.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrations().to_latest(&mut conn)?;
        let store = Store {
            conn: Mutex::new(conn),
        };
        let recovered = store.with_tx(messages::recover_streaming)?;
        if recovered > 0 {
            tracing::warn!(
                recovered,
                "marked replies left streaming by a previous run as interrupted"
            );
        }
        Ok(store)
    }

    /// Runs `f` in a transaction: committed when it returns `Ok`, rolled back otherwise.
    pub fn with_tx<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls back
        // on drop), so a poisoned mutex is safe to reuse.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn create_conversation(&self, title: &str) -> Result<Conversation> {
        self.with_tx(|tx| conversations::create(tx, title))
    }

    pub fn list_conversations(&self, limit: u32, offset: u32) -> Result<Vec<Conversation>> {
        self.with_tx(|tx| conversations::list_recent(tx, limit, offset))
    }

    pub fn get_conversation(&self, id: ConversationId) -> Result<Conversation> {
        self.with_tx(|tx| conversations::get(tx, id))
    }

    /// Appends a message under `parent` (or as a root) and makes it the parent's active child.
    pub fn append_message(
        &self,
        conversation: ConversationId,
        parent: Option<MessageId>,
        role: Role,
        content: &str,
        status: MessageStatus,
    ) -> Result<Message> {
        self.with_tx(|tx| messages::append(tx, conversation, parent, role, content, status))
    }

    /// Appends streamed text to a message that is still `streaming`.
    pub fn append_text(&self, id: MessageId, text: &str) -> Result<()> {
        self.with_tx(|tx| messages::append_text(tx, id, text))
    }

    /// Ends a streaming message with its final status (and an error text for failures).
    pub fn finalize_message(
        &self,
        id: MessageId,
        status: MessageStatus,
        error: Option<&str>,
    ) -> Result<()> {
        let conn = self.lock();
        // The commit that ends a reply is the one a user would miss most: make it durable
        // against power loss too, not only against a crash of the app.
        conn.pragma_update(None, "synchronous", "FULL")?;
        let result = messages::finalize(&conn, id, status, error);
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        result
    }

    /// The visible branch of a conversation: from the root, following active children.
    pub fn active_path(&self, conversation: ConversationId) -> Result<Vec<Message>> {
        self.with_tx(|tx| messages::active_path(tx, conversation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn a_conversation_and_its_messages_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cria.sqlite3");
        let conversation_id;
        {
            let store = Store::open(&path).unwrap();
            let conversation = store.create_conversation("Hello").unwrap();
            conversation_id = conversation.id;
            let user = store
                .append_message(
                    conversation.id,
                    None,
                    Role::User,
                    "hi",
                    MessageStatus::Complete,
                )
                .unwrap();
            let reply = store
                .append_message(
                    conversation.id,
                    Some(user.id),
                    Role::Assistant,
                    "",
                    MessageStatus::Streaming,
                )
                .unwrap();
            store.append_text(reply.id, "Hel").unwrap();
            store.append_text(reply.id, "lo!").unwrap();
            store
                .finalize_message(reply.id, MessageStatus::Complete, None)
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let listed = store.list_conversations(10, 0).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].title, "Hello");
        let path_messages = store.active_path(conversation_id).unwrap();
        let texts: Vec<_> = path_messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["hi", "Hello!"]);
        assert_eq!(path_messages[1].status, MessageStatus::Complete);
    }

    #[test]
    fn a_reply_left_streaming_is_recovered_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cria.sqlite3");
        let conversation_id;
        {
            let store = Store::open(&path).unwrap();
            let conversation = store.create_conversation("Crash").unwrap();
            conversation_id = conversation.id;
            let reply = store
                .append_message(
                    conversation.id,
                    None,
                    Role::Assistant,
                    "",
                    MessageStatus::Streaming,
                )
                .unwrap();
            store.append_text(reply.id, "partial").unwrap();
            // Dropped without finalising, as a killed process would leave it.
        }
        let store = Store::open(&path).unwrap();
        let messages = store.active_path(conversation_id).unwrap();
        assert_eq!(messages[0].status, MessageStatus::Interrupted);
        assert_eq!(messages[0].content, "partial");
    }

    #[test]
    fn appending_to_a_finished_message_is_refused() {
        let store = Store::open_in_memory().unwrap();
        let conversation = store.create_conversation("x").unwrap();
        let message = store
            .append_message(
                conversation.id,
                None,
                Role::User,
                "done",
                MessageStatus::Complete,
            )
            .unwrap();
        assert!(matches!(
            store.append_text(message.id, "more"),
            Err(StoreError::NotFound { .. })
        ));
    }
}
