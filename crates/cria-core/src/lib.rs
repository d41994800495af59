//! Cria's use cases, composed from the engine, the store and ingest. The Tauri shell and the
//! `cria` CLI are both thin clients of this crate.
//!
//! Architecture Invariant: `cria-core` knows nothing of Tauri, IPC or TypeScript.

mod attach;
mod chat;
mod chat_settings;
mod citations;
pub mod context;
mod conversations;
mod engine_settings;
mod models;
mod paths;
pub mod routing;
mod views;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cria_engine::{CancelToken, Engine, EngineHandle, ScriptedEngine, SupervisorOptions};
use cria_store::Store;

pub use attach::{AttachmentInput, AttachmentPreview, IngestProgress, MAX_ATTACHMENTS_PER_MESSAGE};
pub use chat::{
    AUTO_TITLE_SETTING, CitationView, MIN_P_SETTING, SYSTEM_PROMPT_SETTING, TEMPERATURE_SETTING,
    TOP_P_SETTING, TurnEvent, TurnRequest, TurnStarted, TurnSummary,
};
pub use chat_settings::{ChatSettings, MAX_SYSTEM_PROMPT_CHARS};
pub use conversations::{
    EXPORTS_DIR, ExportFormat, MAX_QUERY_CHARS, MAX_SEARCH_RESULTS, Theme, checked_external_url,
};
/// Stops an attachment preview (`Cria::preview_attachment`) the user no longer wants.
pub use cria_ingest::CancelFlag as PreviewCancel;
/// Downloads' cancel token, events and errors, for clients that show a download.
pub use cria_models::ModelsError;
pub use cria_models::download::{CancelToken as DownloadCancel, DownloadEvent};
pub use cria_store::{
    Attachment, AttachmentId, AttachmentKind, Conversation, ConversationId, DocumentHome,
    GenerationStats, Listing, Message, MessageId, MessageStatus, PathEntry, Role, SearchHit,
    SearchSource, StoreError,
};
pub use engine_settings::{CONTEXT_SIZE_RANGE, EngineSettings, MAX_GPU_LAYERS, MAX_THREADS};
pub use models::{
    ACTIVE_MODEL_SETTING, CatalogEntry, FitReport, FitSource, LoadedModel, ModelSummary,
    TEST_CATALOG_BASE_URL_ENV,
};
pub use paths::AppPaths;
pub use routing::{FAST_PROFILE_SETTING, ModelPin, VISION_PROFILE_SETTING};
pub use views::{AttachmentSummary, MessageView, PagePreview};

/// Errors of Cria's use cases.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] cria_store::StoreError),
    #[error(transparent)]
    Engine(#[from] cria_engine::EngineError),
    #[error(transparent)]
    Models(#[from] cria_models::ModelsError),
    #[error("{0}")]
    InvalidInput(String),
    /// A file the user attached cannot be used; nothing was stored.
    #[error("{file}: {reason}")]
    Attachment { file: String, reason: String },
    #[error("no folder for Cria's data could be found; set CRIA_DATA_DIR")]
    NoDataDir,
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, CoreError>;

/// Every Cria executable (the app, the CLI) calls this first thing in `main`: when the process
/// was started as one of Cria's worker processes (the llama.cpp engine with
/// `--cria-engine-worker`, or the document reader with `--cria-ingest-worker`), it runs that
/// worker and returns its exit code; otherwise `None` and `main` goes on.
pub fn worker_main_if_requested() -> Option<std::process::ExitCode> {
    cria_engine::worker_main_if_requested().or_else(cria_ingest::worker_main_if_requested)
}

/// Environment variable that selects a test double for the engine. Only tests set it.
pub const TEST_ENGINE_ENV: &str = "CRIA_TEST_ENGINE";
/// `CRIA_TEST_ENGINE=scripted-file:<path>` streams the text of `<path>` as every reply.
pub const SCRIPTED_FILE_PREFIX: &str = "scripted-file:";

/// Everything a running Cria holds: where its data lives, the database, the engine.
#[derive(Clone)]
pub struct Cria {
    paths: AppPaths,
    store: Arc<Store>,
    library: Arc<cria_models::library::Library>,
    engine: Arc<dyn Engine>,
    /// The llama.cpp engine, when `engine` is one (not a test double): loads models.
    engine_handle: Option<EngineHandle>,
    /// The compute devices llama.cpp sees, asked once (for fit verdicts).
    gpu_devices: Arc<tokio::sync::OnceCell<Vec<cria_engine::DeviceInfo>>>,
    /// Replies being generated now, by reply id, so a stop request can reach them.
    running: Arc<Mutex<HashMap<MessageId, CancelToken>>>,
    /// The program run as the ingest worker; `None`: this executable.
    ingest_worker: Option<std::path::PathBuf>,
    /// Attached files parsed ahead of their message ([`Cria::preview_attachment`]).
    parsed_files: Arc<attach::ParsedFiles>,
    /// Previews that may parse at once (each runs an ingest worker process).
    preview_slots: Arc<tokio::sync::Semaphore>,
}

impl Cria {
    /// Opens Cria's data folder (creating it on first run) with the llama.cpp engine (its
    /// worker process starts on first use), or a scripted double when a test asks for one.
    pub fn open(paths: AppPaths) -> Result<Self> {
        match test_engine_from_env()? {
            Some(engine) => Self::open_with_engine(paths, engine),
            None => {
                let handle = EngineHandle::new(SupervisorOptions::current_exe()?);
                Self::open_with_engine_handle(paths, handle)
            }
        }
    }

    /// Opens with the llama.cpp engine behind `handle` (tests pass a handle on a worker host).
    pub fn open_with_engine_handle(paths: AppPaths, handle: EngineHandle) -> Result<Self> {
        let mut cria = Self::open_with_engine(paths, Arc::new(handle.clone()))?;
        cria.engine_handle = Some(handle);
        Ok(cria)
    }

    /// Opens with any engine; models cannot be loaded into it (test doubles).
    pub fn open_with_engine(paths: AppPaths, engine: Arc<dyn Engine>) -> Result<Self> {
        paths.create_private_dirs()?;
        let store = Store::open(&paths.database_file())?;
        let library = Self::open_library(&paths)?;
        Ok(Cria {
            paths,
            store: Arc::new(store),
            library,
            engine,
            engine_handle: None,
            gpu_devices: Arc::default(),
            running: Arc::default(),
            ingest_worker: None,
            parsed_files: Arc::default(),
            preview_slots: Arc::new(tokio::sync::Semaphore::new(2)),
        })
    }

    /// Parses attachments with `program` (started with the ingest worker flag) instead of this
    /// executable: for tests, whose executable is a test harness.
    pub fn with_ingest_worker(mut self, program: impl Into<std::path::PathBuf>) -> Self {
        self.ingest_worker = Some(program.into());
        self
    }

    pub(crate) fn ingest_client(&self) -> Result<cria_ingest::IngestClient> {
        match &self.ingest_worker {
            Some(program) => Ok(cria_ingest::IngestClient::with_worker_program(program)),
            None => cria_ingest::IngestClient::new().map_err(|error| {
                CoreError::Internal(format!("cannot start the file reader: {error}"))
            }),
        }
    }

    /// Follows model loads (the fraction of the weights read while one runs, `None` when none
    /// does), whatever started them; `None` for test engines, which load nothing.
    pub fn model_load_progress(&self) -> Option<tokio::sync::watch::Receiver<Option<f32>>> {
        self.engine_handle.as_ref().map(EngineHandle::load_progress)
    }

    /// Asks the reply `reply` to stop. Returns false when it is not being generated (any more).
    pub fn stop_reply(&self, reply: MessageId) -> bool {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match running.get(&reply) {
            Some(cancel) => {
                cancel.cancel();
                true
            }
            None => false,
        }
    }

    pub fn paths(&self) -> &AppPaths {
        &self.paths
    }

    pub async fn list_conversations(&self, limit: u32, offset: u32) -> Result<Vec<Conversation>> {
        let store = Arc::clone(&self.store);
        blocking(move || store.list_conversations(limit, offset)).await
    }

    /// The visible branch of a conversation, root first.
    pub async fn conversation_messages(&self, id: ConversationId) -> Result<Vec<Message>> {
        let store = Arc::clone(&self.store);
        blocking(move || store.active_path(id)).await
    }
}

/// The test double a test asked for through `CRIA_TEST_ENGINE`, if any.
fn test_engine_from_env() -> Result<Option<Arc<dyn Engine>>> {
    match std::env::var(TEST_ENGINE_ENV).ok().as_deref() {
        None | Some("") => Ok(None),
        Some("scripted") => {
            tracing::warn!("using the scripted test engine ({TEST_ENGINE_ENV}=scripted)");
            let engine = ScriptedEngine::echo(std::time::Duration::from_millis(40));
            Ok(Some(Arc::new(engine)))
        }
        Some(mode) if mode.starts_with(SCRIPTED_FILE_PREFIX) => {
            // Streams a file's text as every reply, piece by piece: the XSS end-to-end test
            // feeds its payload corpus through the real app this way.
            let path = &mode[SCRIPTED_FILE_PREFIX.len()..];
            let script = std::fs::read_to_string(path).map_err(|error| {
                CoreError::InvalidInput(format!("{TEST_ENGINE_ENV}: cannot read {path}: {error}"))
            })?;
            tracing::warn!(path, "using the scripted test engine with a file's text");
            Ok(Some(Arc::new(ScriptedEngine::fixed(
                script,
                std::time::Duration::from_millis(2),
            ))))
        }
        Some(other) => Err(CoreError::InvalidInput(format!(
            "{TEST_ENGINE_ENV}={other:?} is not a known test engine"
        ))),
    }
}

/// Runs SQLite work off the async runtime's worker threads.
pub(crate) async fn blocking<T, E, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    E: Into<CoreError> + Send + 'static,
    F: FnOnce() -> std::result::Result<T, E> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|join_error| CoreError::Internal(join_error.to_string()))?
        .map_err(Into::into)
}
