//! The single source of truth for conversations: SQLite (WAL), migrations, a message tree,
//! content-addressed attachments, documents, full-text search, settings, export and import.
//!
//! Architecture Invariant: `cria-store` knows nothing of llama.cpp, Tauri or file parsing. It
//! stores what it is given and hands it back; every write goes through a transaction
//! ([`Store::with_tx`]) and commits or rolls back as a whole.
//!
//! Durability (what survives what):
//! - The database is in WAL mode with `synchronous = NORMAL`: every commit survives a crash of
//!   the app (kill -9, abort, OOM). A power loss or OS crash may roll back the commits made
//!   since the last checkpoint; the commit that finishes a reply ([`Store::finish_message`])
//!   runs with `synchronous = FULL`, so a finished reply survives power loss too. The loss
//!   window for a streaming reply is therefore one batch on crash, and at most the streamed text
//!   since its start on power loss (it is then recovered as `interrupted`, never corrupt).
//! - On open, replies left `streaming` by a dead process become `interrupted`, but only when no
//!   other process has the database open: every open store holds a shared lock on
//!   `<database>.lock` (released by the kernel when the process dies, even on kill -9), and
//!   [`Store::open`] recovers only if it can first take that lock exclusively, then shares it.
//!   A process opening a database in use waits for the share (so it never writes while another
//!   recovers) and leaves streaming replies alone, because their writers may be alive.
//! - The database, its `-wal`/`-shm` files and the blob folder are owner-only (0600/0700).
//!
//! Threading: a [`Store`] owns one connection behind a mutex, and every call is blocking and
//! short. Callers on async runtimes use `spawn_blocking`.

mod attachments;
mod conversations;
mod documents;
mod fsutil;
mod messages;
pub mod schema;
mod search;
mod settings;
mod stream;
mod transfer;
mod turn_context;

#[cfg(test)]
mod tests;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

pub use attachments::{
    Attachment, AttachmentId, AttachmentKind, AttachmentMeta, BlobRef, GarbageReport,
    MAX_BLOB_BYTES, clean_name,
};
pub use conversations::{Conversation, ConversationId, Listing, MAX_TITLE_CHARS};
pub use documents::{DocumentChunk, DocumentPage, NewChunk};
pub use messages::{
    GenerationStats, MAX_DEPTH, Message, MessageId, MessageStatus, PathEntry, Role, Siblings,
};
pub use search::{
    DocumentHome, RANKED_MATCHES, SearchHit, SearchSource, fts_query, retrieval_query, search_text,
};
pub use stream::{ReplyStream, StreamPolicy};
pub use transfer::{
    ConversationExport, EXPORT_FORMAT, EXPORT_VERSION, ExportOptions, ExportedAttachment,
    ExportedConversation, ExportedDocument, ExportedMessage, MAX_IMPORT_BYTES,
};
pub use turn_context::{Citation, PreparedImageRef, PromptView};

/// Errors from the store. Messages say what happened and what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error(
        "the disk is full, so Cria could not save this change; free some disk space and try \
         again (everything saved before is intact)"
    )]
    DiskFull,
    #[error("could not upgrade the database schema: {0}")]
    Migration(rusqlite_migration::Error),
    #[error(
        "this database was written by a newer Cria (schema {found}; this version knows up to \
         {supported}); update Cria to open it"
    )]
    NewerSchema { found: usize, supported: usize },
    #[error("could not create the data folder {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not read or write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not read the file being stored: {source}")]
    ReadSource { source: std::io::Error },
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: i64 },
    #[error("the stored file {sha256} is missing from the blob folder")]
    BlobMissing { sha256: String },
    #[error("this store keeps no files (it was opened in memory)")]
    NoBlobFolder,
    #[error("{0}")]
    InvalidInput(String),
    #[error("the {what} is larger than the {limit} bytes Cria accepts")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("cannot import this conversation: {0}")]
    Import(String),
    #[error("the database is damaged: {0}")]
    Corrupt(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                StoreError::Corrupt(error.to_string())
            }
            _ => StoreError::Sqlite(error),
        }
    }
}

impl From<rusqlite_migration::Error> for StoreError {
    fn from(error: rusqlite_migration::Error) -> Self {
        match error {
            rusqlite_migration::Error::RusqliteError { err, .. }
                if err.sqlite_error_code() == Some(ErrorCode::DiskFull) =>
            {
                StoreError::DiskFull
            }
            other => StoreError::Migration(other),
        }
    }
}

impl StoreError {
    /// An I/O error on `path`, with "no space" (and quota/too big) reported as [`Self::DiskFull`].
    pub(crate) fn from_io(path: &Path, source: std::io::Error) -> Self {
        const ENOSPC: i32 = 28;
        const EFBIG: i32 = 27;
        const EDQUOT: i32 = 122;
        let full = matches!(
            source.kind(),
            std::io::ErrorKind::StorageFull
                | std::io::ErrorKind::QuotaExceeded
                | std::io::ErrorKind::FileTooLarge
        ) || (cfg!(unix)
            && matches!(source.raw_os_error(), Some(ENOSPC | EFBIG | EDQUOT)));
        if full {
            StoreError::DiskFull
        } else {
            StoreError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// What `PRAGMA integrity_check` and `PRAGMA foreign_key_check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityReport {
    /// `["ok"]` for a healthy database.
    pub integrity: Vec<String>,
    pub foreign_key_violations: usize,
}

impl IntegrityReport {
    pub fn is_ok(&self) -> bool {
        self.integrity == ["ok"] && self.foreign_key_violations == 0
    }
}

/// An open database.
pub struct Store {
    conn: Mutex<Connection>,
    blobs: Option<attachments::BlobDir>,
    path: Option<PathBuf>,
    /// Held (shared) for the life of the store; see [`fsutil::DatabaseLock`].
    database_lock: Option<fsutil::DatabaseLock>,
}

/// `path` with `suffix` appended to its file name (`cria.sqlite3` → `cria.sqlite3-wal`).
fn side_path(path: &Path, suffix: &str) -> PathBuf {
    let mut side = path.as_os_str().to_os_string();
    side.push(suffix);
    PathBuf::from(side)
}

/// The folder, next to the database, that holds attachment blobs.
pub fn blob_folder_for(database: &Path) -> PathBuf {
    database
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("blobs")
}

impl Store {
    /// Opens (creating if needed) the database at `path` and its blob folder beside it,
    /// migrates it, and marks replies that were still streaming when the last process died as
    /// `interrupted`. Missing folders are created owner-only.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
            && !parent.exists()
        {
            // Only folders we create are made owner-only: the caller may point at a folder of
            // its own whose permissions are not ours to change.
            fsutil::create_private_dir(parent)?;
        }
        fsutil::ensure_private_file(path)?;
        let database_lock = fsutil::DatabaseLock::acquire(&side_path(path, ".lock"))?;
        let conn = Connection::open(path)?;
        let blobs = attachments::BlobDir::new(blob_folder_for(path));
        blobs.create()?;
        let store = Self::from_connection(
            conn,
            Some(blobs),
            Some(path.to_path_buf()),
            Some(database_lock),
        )?;
        store.secure_files()?;
        Ok(store)
    }

    /// An in-memory database without a blob folder, for tests and previews.
    pub fn open_in_memory() -> Result<Self> {
        Self::from_connection(Connection::open_in_memory()?, None, None, None)
    }

    /// Whether this store had its database to itself when it opened it, and so recovered
    /// replies left streaming (see the crate docs on recovery).
    pub fn owns_database(&self) -> bool {
        self.database_lock
            .as_ref()
            .is_none_or(fsutil::DatabaseLock::alone_at_open)
    }

    fn from_connection(
        mut conn: Connection,
        blobs: Option<attachments::BlobDir>,
        path: Option<PathBuf>,
        database_lock: Option<fsutil::DatabaseLock>,
    ) -> Result<Self> {
        // Per-connection settings live outside migrations: they are not part of the schema.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "busy_timeout", 5000)?;
        // NORMAL in WAL mode: a commit survives an application crash (kill -9); only a power
        // loss can roll back the commits since the last checkpoint. Finishing a message uses
        // FULL for its own commit (see the crate docs).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Keep the WAL from growing without bound after a burst of writes.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        schema::register_functions(&conn)?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        let found = usize::try_from(found).unwrap_or(usize::MAX);
        if found > schema::LATEST_VERSION {
            return Err(StoreError::NewerSchema {
                found,
                supported: schema::LATEST_VERSION,
            });
        }
        if let Err(error) = schema::migrations().to_latest(&mut conn) {
            // Another process may have run the same migrations at the same moment (its commit
            // makes ours fail on a stale snapshot). If the schema is now current, all is well.
            let now: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
            if usize::try_from(now).ok() != Some(schema::LATEST_VERSION) {
                return Err(error.into());
            }
        }
        let store = Store {
            conn: Mutex::new(conn),
            blobs,
            path,
            database_lock,
        };
        if !store.owns_database() {
            tracing::info!("another process has this database open; leaving its replies alone");
            return Ok(store);
        }
        let recovered = store.with_tx(|tx| messages::recover_streaming(tx))?;
        if recovered > 0 {
            tracing::warn!(
                recovered,
                "marked replies left streaming by a previous run as interrupted"
            );
        }
        if let Some(lock) = &store.database_lock {
            lock.share()?;
        }
        Ok(store)
    }

    /// Makes the database and its WAL/shared-memory files owner-only (older files included).
    fn secure_files(&self) -> Result<()> {
        if let Some(path) = &self.path {
            fsutil::set_mode(path, 0o600)?;
            for suffix in ["-wal", "-shm", ".lock"] {
                fsutil::set_mode(&side_path(path, suffix), 0o600)?;
            }
        }
        Ok(())
    }

    /// Runs `f` in a write transaction: committed when it returns `Ok`, rolled back otherwise.
    /// The write lock is taken at the start (IMMEDIATE), so another process using the same
    /// database waits (`busy_timeout`) instead of failing halfway.
    pub fn with_tx<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs `f` in a read transaction: one consistent snapshot, no write lock.
    pub fn with_read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    pub(crate) fn with_tx_and_blobs<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &attachments::BlobDir) -> Result<T>,
    ) -> Result<T> {
        let blobs = self.blobs.as_ref().ok_or(StoreError::NoBlobFolder)?;
        self.with_tx(|tx| f(tx, blobs))
    }

    /// The blob folder, if this store has one (an in-memory store has none).
    pub(crate) fn blob_dir(&self) -> Option<&attachments::BlobDir> {
        self.blobs.as_ref()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (the transaction rolls back
        // on drop), so a poisoned mutex is safe to reuse.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The database file, if this store has one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    // --- Conversations -------------------------------------------------------------------

    pub fn create_conversation(&self, title: &str) -> Result<Conversation> {
        self.with_tx(|tx| conversations::create(tx, title))
    }

    /// Not-archived conversations, pinned first, then most recently updated.
    pub fn list_conversations(&self, limit: u32, offset: u32) -> Result<Vec<Conversation>> {
        self.list_conversations_in(Listing::Active, limit, offset)
    }

    pub fn list_conversations_in(
        &self,
        listing: Listing,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<Conversation>> {
        self.with_read(|tx| conversations::list_recent(tx, listing, limit, offset))
    }

    pub fn get_conversation(&self, id: ConversationId) -> Result<Conversation> {
        self.with_read(|tx| conversations::get(tx, id))
    }

    pub fn rename_conversation(&self, id: ConversationId, title: &str) -> Result<()> {
        self.with_tx(|tx| conversations::rename(tx, id, title))
    }

    pub fn set_pinned(&self, id: ConversationId, pinned: bool) -> Result<()> {
        self.with_tx(|tx| conversations::set_pinned(tx, id, pinned))
    }

    pub fn set_archived(&self, id: ConversationId, archived: bool) -> Result<()> {
        self.with_tx(|tx| conversations::set_archived(tx, id, archived))
    }

    pub fn set_system_prompt(&self, id: ConversationId, system_prompt: Option<&str>) -> Result<()> {
        self.with_tx(|tx| conversations::set_system_prompt(tx, id, system_prompt))
    }

    pub fn set_model_profile(&self, id: ConversationId, model_profile: Option<&str>) -> Result<()> {
        self.with_tx(|tx| conversations::set_model_profile(tx, id, model_profile))
    }

    /// Deletes a conversation with all its messages, then removes attachment files nothing
    /// else uses.
    pub fn delete_conversation(&self, id: ConversationId) -> Result<()> {
        self.with_tx(|tx| conversations::delete(tx, id))?;
        if self.blobs.is_some() {
            self.collect_garbage()?;
        }
        Ok(())
    }

    // --- Messages ------------------------------------------------------------------------

    /// Appends a message under `parent` (or as a root) and makes it the visible continuation.
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

    pub fn get_message(&self, id: MessageId) -> Result<Message> {
        self.with_read(|tx| messages::get(tx, id))
    }

    /// Appends streamed text to a message that is still `streaming`, in one commit.
    pub fn append_text(&self, id: MessageId, text: &str) -> Result<()> {
        self.with_tx(|tx| messages::append_text(tx, id, text))
    }

    /// A writer that commits a streaming reply in batches (see [`StreamPolicy`]).
    pub fn stream_reply(&self, id: MessageId, policy: StreamPolicy) -> ReplyStream<'_> {
        ReplyStream::new(self, id, policy)
    }

    /// Records the model and route writing a reply, before it finishes.
    pub fn set_message_model(
        &self,
        id: MessageId,
        model_id: Option<&str>,
        route: Option<&str>,
    ) -> Result<()> {
        self.with_tx(|tx| messages::set_model(tx, id, model_id, route))
    }

    /// Ends a streaming message with its final status (and an error text for failures).
    pub fn finalize_message(
        &self,
        id: MessageId,
        status: MessageStatus,
        error: Option<&str>,
    ) -> Result<()> {
        self.finish_message(id, status, error, &GenerationStats::default())
    }

    /// Ends a streaming message with its final status, error text and generation figures.
    /// This commit is durable against power loss too (`synchronous = FULL`).
    pub fn finish_message(
        &self,
        id: MessageId,
        status: MessageStatus,
        error: Option<&str>,
        stats: &GenerationStats,
    ) -> Result<()> {
        let mut conn = self.lock();
        conn.pragma_update(None, "synchronous", "FULL")?;
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            messages::finish(&tx, id, status, error, stats)?;
            tx.commit()?;
            Ok(())
        })();
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        result
    }

    /// Adds an edited copy of `id` as its sibling (same parent, same attachments) and shows it.
    pub fn edit_message(&self, id: MessageId, content: &str) -> Result<Message> {
        self.with_tx(|tx| messages::edit(tx, id, content))
    }

    /// Adds an empty `streaming` reply as a sibling of the reply `id` and shows it.
    pub fn regenerate_message(&self, id: MessageId) -> Result<Message> {
        self.with_tx(|tx| messages::regenerate(tx, id))
    }

    /// Shows the branch through `id` (it and all its ancestors become active).
    pub fn switch_branch(&self, id: MessageId) -> Result<()> {
        self.with_tx(|tx| messages::switch_branch(tx, id))
    }

    /// The siblings of `id` (itself included) for "‹ 2/3 ›" navigation.
    pub fn siblings(&self, id: MessageId) -> Result<Siblings> {
        self.with_read(|tx| messages::siblings(tx, id))
    }

    /// The visible branch of a conversation: from the root, following active children.
    pub fn active_path(&self, conversation: ConversationId) -> Result<Vec<Message>> {
        Ok(self
            .active_path_entries(conversation)?
            .into_iter()
            .map(|entry| entry.message)
            .collect())
    }

    /// The visible branch with each message's position among its siblings.
    pub fn active_path_entries(&self, conversation: ConversationId) -> Result<Vec<PathEntry>> {
        self.with_read(|tx| messages::active_path_entries(tx, conversation))
    }

    /// Every message of a conversation, all branches, oldest first.
    pub fn all_messages(&self, conversation: ConversationId) -> Result<Vec<Message>> {
        self.with_read(|tx| messages::all_in_conversation(tx, conversation))
    }

    // --- Attachments and documents -------------------------------------------------------

    pub(crate) fn stage_blob(&self, reader: impl Read) -> Result<attachments::StagedBlob> {
        let blobs = self.blobs.as_ref().ok_or(StoreError::NoBlobFolder)?;
        attachments::stage(blobs, reader, |file| Box::new(file))
    }

    /// Stores the bytes from `reader` (once, whatever the number of copies) and attaches them
    /// to `message`.
    pub fn add_attachment(
        &self,
        message: MessageId,
        meta: &AttachmentMeta,
        reader: impl Read,
    ) -> Result<Attachment> {
        let staged = self.stage_blob(reader)?;
        self.attach_staged(message, meta, &staged)
    }

    fn attach_staged(
        &self,
        message: MessageId,
        meta: &AttachmentMeta,
        staged: &attachments::StagedBlob,
    ) -> Result<Attachment> {
        self.with_tx_and_blobs(|tx, blobs| {
            let blob = attachments::commit(tx, blobs, staged)?;
            attachments::insert(tx, message, &blob, meta, None, conversations::now_ms())
        })
    }

    /// Stores a thumbnail image for an attachment.
    pub fn set_thumbnail(&self, attachment: AttachmentId, reader: impl Read) -> Result<BlobRef> {
        let staged = self.stage_blob(reader)?;
        self.with_tx_and_blobs(|tx, blobs| {
            let blob = attachments::commit(tx, blobs, &staged)?;
            attachments::set_thumbnail(tx, attachment, &blob.sha256)?;
            Ok(blob)
        })
    }

    pub fn get_attachment(&self, id: AttachmentId) -> Result<Attachment> {
        self.with_read(|tx| attachments::get(tx, id))
    }

    pub fn attachments(&self, message: MessageId) -> Result<Vec<Attachment>> {
        self.with_read(|tx| attachments::of_message(tx, message))
    }

    /// Where the bytes of a stored blob are (read-only for callers).
    pub fn blob_path(&self, sha256: &str) -> Result<PathBuf> {
        let blobs = self.blobs.as_ref().ok_or(StoreError::NoBlobFolder)?;
        if !attachments::is_sha256_hex(sha256) {
            return Err(StoreError::InvalidInput(format!(
                "{:?} is not a sha256",
                sha256.chars().take(80).collect::<String>()
            )));
        }
        let path = blobs.path_of(sha256);
        if !path.is_file() {
            return Err(StoreError::BlobMissing {
                sha256: sha256.to_string(),
            });
        }
        Ok(path)
    }

    /// Removes blobs no attachment uses (rows and files), stray files left by crashes, and
    /// abandoned temporary files. Holds the write lock throughout, so it never races a writer
    /// in this or another process.
    pub fn collect_garbage(&self) -> Result<GarbageReport> {
        let blobs = self.blobs.as_ref().ok_or(StoreError::NoBlobFolder)?;
        let mut conn = self.lock();
        attachments::collect_garbage(&mut conn, blobs)
    }

    /// Replaces the extracted pages and chunks of the stored file `sha256`.
    pub fn put_document(
        &self,
        sha256: &str,
        pages: &[DocumentPage],
        chunks: &[NewChunk],
    ) -> Result<()> {
        self.with_tx(|tx| documents::put(tx, sha256, pages, chunks))
    }

    pub fn document_pages(&self, sha256: &str) -> Result<Vec<DocumentPage>> {
        self.with_read(|tx| documents::pages(tx, sha256))
    }

    pub fn document_chunks(&self, sha256: &str) -> Result<Vec<DocumentChunk>> {
        self.with_read(|tx| documents::chunks(tx, sha256))
    }

    // --- Turn context ----------------------------------------------------------------------

    /// Records what the model was shown for the user message `id`.
    pub fn set_prompt_view(&self, id: MessageId, view: &PromptView) -> Result<()> {
        self.with_tx(|tx| turn_context::set_prompt_view(tx, id, view))
    }

    pub fn prompt_view(&self, id: MessageId) -> Result<PromptView> {
        self.with_read(|tx| turn_context::prompt_view(tx, id))
    }

    /// Replaces the notes shown to the user with a reply.
    pub fn set_notices(&self, id: MessageId, notices: &[String]) -> Result<()> {
        self.with_tx(|tx| turn_context::set_notices(tx, id, notices))
    }

    /// Stores an image prepared for the vision encoder (PNG bytes from `reader`) as page
    /// `page_number` of the stored file `source_sha256`.
    pub fn put_prepared_image(
        &self,
        source_sha256: &str,
        page_number: u32,
        width: u32,
        height: u32,
        reader: impl Read,
    ) -> Result<PreparedImageRef> {
        let staged = self.stage_blob(reader)?;
        self.with_tx_and_blobs(|tx, blobs| {
            let blob = attachments::commit(tx, blobs, &staged)?;
            let image = PreparedImageRef {
                source_sha256: source_sha256.to_string(),
                page_number,
                image_sha256: blob.sha256,
                width,
                height,
            };
            turn_context::put_prepared_image(tx, &image)?;
            Ok(image)
        })
    }

    /// The prepared images made from the stored file `source_sha256`, by page.
    pub fn prepared_images(&self, source_sha256: &str) -> Result<Vec<PreparedImageRef>> {
        self.with_read(|tx| turn_context::prepared_images(tx, source_sha256))
    }

    pub fn set_citations(&self, message: MessageId, citations: &[Citation]) -> Result<()> {
        self.with_tx(|tx| turn_context::replace_citations(tx, message, citations))
    }

    pub fn citations(&self, message: MessageId) -> Result<Vec<Citation>> {
        self.with_read(|tx| turn_context::citations(tx, message))
    }

    /// Records the first message that was in the prompt of the reply `reply`.
    pub fn set_context_from(&self, reply: MessageId, from: MessageId) -> Result<()> {
        self.with_tx(|tx| turn_context::set_context_from(tx, reply, from))
    }

    /// The first message that was in the prompt of `reply`, when older ones were left out.
    pub fn context_from(&self, reply: MessageId) -> Result<Option<MessageId>> {
        self.with_read(|tx| turn_context::context_from(tx, reply))
    }

    /// Makes a finished reply `streaming` again so that more text can be appended to it.
    pub fn reopen_reply(&self, id: MessageId) -> Result<Message> {
        self.with_tx(|tx| {
            turn_context::reopen_reply(tx, id)?;
            messages::get(tx, id)
        })
    }

    // --- Search --------------------------------------------------------------------------

    /// Finished messages and document chunks matching `query`, best first, with snippets.
    pub fn search(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
        self.with_read(|tx| search::search_all(tx, query, limit))
    }

    pub fn search_messages(&self, query: &str, limit: u32) -> Result<Vec<SearchHit>> {
        self.with_read(|tx| search::search_messages(tx, query, limit))
    }

    /// Document chunks matching `query`; with `only_blobs`, only those documents' chunks
    /// (retrieval over the files attached to one conversation).
    pub fn search_chunks(
        &self,
        query: &str,
        only_blobs: Option<&[String]>,
        limit: u32,
    ) -> Result<Vec<SearchHit>> {
        self.with_read(|tx| search::search_chunks(tx, query, only_blobs, limit))
    }

    /// Retrieval for a question over the documents `only_blobs`: their chunks that share the
    /// most (and rarest) words with it, best first.
    pub fn retrieve_chunks(
        &self,
        question: &str,
        only_blobs: &[String],
        limit: u32,
    ) -> Result<Vec<DocumentChunk>> {
        self.with_read(|tx| search::retrieve_chunks(tx, question, only_blobs, limit))
    }

    // --- Export and import ---------------------------------------------------------------

    /// The whole conversation tree, ready to serialise as JSON.
    pub fn export_json(
        &self,
        conversation: ConversationId,
        options: ExportOptions,
    ) -> Result<ConversationExport> {
        transfer::export(self, conversation, options)
    }

    /// [`Self::export_json`] as pretty-printed JSON text.
    pub fn export_json_string(
        &self,
        conversation: ConversationId,
        options: ExportOptions,
    ) -> Result<String> {
        let export = self.export_json(conversation, options)?;
        serde_json::to_string_pretty(&export)
            .map_err(|error| StoreError::InvalidInput(format!("could not write JSON: {error}")))
    }

    /// The visible branch as Markdown, for reading and sharing.
    pub fn export_markdown(&self, conversation: ConversationId) -> Result<String> {
        transfer::export_markdown(self, conversation)
    }

    /// Imports a JSON export as a new conversation (new ids), all or nothing.
    pub fn import_json(&self, reader: impl Read) -> Result<ConversationId> {
        transfer::import(self, reader)
    }

    // --- Settings ------------------------------------------------------------------------

    pub fn get_setting(&self, key: &str) -> Result<Option<String>> {
        self.with_read(|tx| settings::get(tx, key))
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.with_tx(|tx| settings::set(tx, key, value))
    }

    /// Removes a setting; `true` if it existed.
    pub fn remove_setting(&self, key: &str) -> Result<bool> {
        self.with_tx(|tx| settings::remove(tx, key))
    }

    pub fn settings(&self) -> Result<Vec<(String, String)>> {
        self.with_read(|tx| settings::all(tx))
    }

    // --- Maintenance ---------------------------------------------------------------------

    /// Runs SQLite's integrity and foreign-key checks.
    pub fn check_integrity(&self) -> Result<IntegrityReport> {
        let conn = self.lock();
        let integrity = conn
            .prepare("PRAGMA integrity_check")?
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let foreign_key_violations = conn
            .prepare("PRAGMA foreign_key_check")?
            .query_map([], |_| Ok(()))?
            .count();
        Ok(IntegrityReport {
            integrity,
            foreign_key_violations,
        })
    }

    /// Copies the WAL into the database and truncates it (for example on quit).
    pub fn checkpoint(&self) -> Result<()> {
        let conn = self.lock();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The schema as text (see [`schema::dump`]).
    pub fn schema_dump(&self) -> Result<String> {
        schema::dump(&self.lock())
    }
}
