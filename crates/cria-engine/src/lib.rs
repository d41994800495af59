//! Running models: the interface every text generator implements, the supervised llama.cpp
//! worker process behind it, and a scripted test double.
//!
//! Architecture Invariant: llama.cpp never runs in the UI process. Callers talk to an
//! [`Engine`]; the llama.cpp implementation, [`EngineHandle`], forwards requests to a worker
//! process (the same executable re-run with [`WORKER_FLAG`]; every `main` calls
//! [`worker_main_if_requested`] first). A crash of llama.cpp costs the model, never the app.
//!
//! Contract of a generation: pieces streamed as [`GenerateEvent::Token`] are valid UTF-8 and
//! never contain (a prefix of) a stop string; text already streamed stays valid whatever the
//! outcome; a failed generation returns an [`EngineError`] that says what happened.

mod context_size;
mod offload;
mod protocol;
mod scripted;
mod supervisor;
mod text;
mod token_cache;
mod worker;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use context_size::{
    ContextSizeChoice, FreeMemory, KvCacheGeometry, MAX_DEFAULT_N_CTX, MIN_DEFAULT_N_CTX,
    choose_context_size, parse_mem_available,
};
pub use offload::gpu_backends_built;
pub use protocol::{BenchRequest, BenchResult};
pub use scripted::ScriptedEngine;
pub use supervisor::{EngineHandle, SupervisorOptions};
pub use text::{StopMatcher, StopScan, Utf8Stream, render_plain_prompt};
pub use worker::{WORKER_FLAG, default_threads, worker_main_if_requested};

/// Errors a generation can end with. Each says what happened and what the user can do.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum EngineError {
    #[error("No model is loaded. Import a Llama 4 GGUF file or pick one from the catalog.")]
    NoModelLoaded,
    #[error("The model file {path} was rejected before loading: {reason}")]
    InvalidModelFile { path: PathBuf, reason: String },
    #[error("llama.cpp could not load {path}: {reason}")]
    ModelLoad { path: PathBuf, reason: String },
    #[error(
        "The prompt needs {prompt_tokens} tokens but the context holds {n_ctx}. Start a new \
         conversation, shorten the message, or raise the context size in the settings."
    )]
    ContextOverflow { prompt_tokens: u32, n_ctx: u32 },
    #[error("Image {index} was rejected: {reason}")]
    ImageRejected { index: usize, reason: String },
    #[error(
        "This model cannot see images: load it with its vision projector (mmproj) file to ask \
         about pictures."
    )]
    NoVisionProjector,
    #[error("Generation failed inside llama.cpp: {0}")]
    Decode(String),
    #[error("The engine worker could not be started: {0}. Reinstall Cria if this persists.")]
    WorkerStart(String),
    #[error("The engine worker broke the protocol: {0}")]
    Protocol(String),
    #[error(
        "The engine stopped unexpectedly ({kind}). The reply so far was kept; the next request \
         restarts the engine. Details: {stderr_tail}"
    )]
    Crashed {
        kind: CrashKind,
        /// Text streamed before the crash (the caller has already received it as tokens).
        partial_text: String,
        /// The last lines the worker wrote to stderr (llama.cpp's log).
        stderr_tail: String,
    },
    #[error("Invalid request: {0}")]
    InvalidRequest(String),
}

/// Why the worker process died, from its exit status and the last lines of its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashKind {
    /// Memory ran out (host or device); try a smaller model, context or fewer GPU layers.
    OutOfMemory,
    /// The GPU driver reset or the device disappeared.
    DeviceLost,
    /// llama.cpp does not support something in this model file.
    UnsupportedModel,
    /// llama.cpp hit an internal check (`GGML_ASSERT`) or called `abort()`.
    Assertion,
    /// The process was killed from outside (for example by the system's OOM killer).
    Killed,
    /// Any other exit.
    Other,
}

impl std::fmt::Display for CrashKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CrashKind::OutOfMemory => "out of memory",
            CrashKind::DeviceLost => "graphics device lost",
            CrashKind::UnsupportedModel => "model not supported by llama.cpp",
            CrashKind::Assertion => "llama.cpp assertion failed",
            CrashKind::Killed => "killed",
            CrashKind::Other => "crashed",
        })
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

impl ChatRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatRole::System => "system",
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
        }
    }
}

/// A decoded image: tightly packed 8-bit RGB rows, `width * height * 3` bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInput {
    pub width: u32,
    pub height: u32,
    /// Identifies the picture's content; equal hashes mean equal pixels (the engine reuses the
    /// encoded image for an equal hash). Use [`ImageInput::from_rgb`] to compute it.
    pub content_hash: String,
    /// Travels outside the JSON frame in the worker protocol.
    #[serde(skip)]
    pub rgb: Arc<Vec<u8>>,
}

impl std::fmt::Debug for ImageInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageInput")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("content_hash", &self.content_hash)
            .finish_non_exhaustive()
    }
}

impl ImageInput {
    /// Largest accepted image (pixels); bigger pictures must be scaled down by the caller.
    pub const MAX_PIXELS: u64 = 8192 * 8192;

    /// Wraps decoded RGB pixels, checking the size and hashing the content.
    pub fn from_rgb(width: u32, height: u32, rgb: Vec<u8>) -> Result<Self> {
        let pixels = u64::from(width) * u64::from(height);
        if width == 0 || height == 0 || pixels > Self::MAX_PIXELS {
            return Err(EngineError::InvalidRequest(format!(
                "image of {width}x{height} pixels: sides must be at least 1 and the area at most \
                 {} pixels",
                Self::MAX_PIXELS
            )));
        }
        if rgb.len() as u64 != pixels * 3 {
            return Err(EngineError::InvalidRequest(format!(
                "image of {width}x{height} needs {} RGB bytes, got {}",
                pixels * 3,
                rgb.len()
            )));
        }
        let content_hash = text::content_hash(width, height, &rgb);
        Ok(ImageInput {
            width,
            height,
            content_hash,
            rgb: Arc::new(rgb),
        })
    }
}

/// One message of the conversation as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
    /// Pictures shown with this message, placed before its text.
    #[serde(default)]
    pub images: Vec<ImageInput>,
}

impl ChatMessage {
    pub fn text(role: ChatRole, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
            images: Vec::new(),
        }
    }
}

/// How the next token is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0 means greedy (always the most likely token; deterministic).
    pub temperature: f32,
    pub top_p: f32,
    pub min_p: f32,
    pub seed: u32,
}

impl Sampling {
    /// Meta's recommended settings for Llama 4.
    pub const LLAMA4_DEFAULT: Sampling = Sampling {
        temperature: 0.6,
        top_p: 0.9,
        min_p: 0.01,
        seed: 0,
    };

    /// Always the most likely token: reproducible output for tests and benchmarks.
    pub const GREEDY: Sampling = Sampling {
        temperature: 0.0,
        top_p: 1.0,
        min_p: 0.0,
        seed: 0,
    };
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling::LLAMA4_DEFAULT
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub messages: Vec<ChatMessage>,
    pub max_tokens: u32,
    #[serde(default)]
    pub sampling: Sampling,
    /// Generation ends before any of these strings; they are never streamed.
    #[serde(default)]
    pub stop: Vec<String>,
    /// Keep generating past the model's end-of-turn token (benchmarks and tests that need a
    /// fixed number of tokens; chat leaves it off).
    #[serde(default)]
    pub ignore_eos: bool,
    /// The last message is an assistant reply cut short: generate more of it (its text is the
    /// start of the model's turn, not a finished turn).
    #[serde(default)]
    pub continue_reply: bool,
}

impl GenerateRequest {
    /// A request with Llama 4's default sampling and no stop strings.
    pub fn new(messages: Vec<ChatMessage>, max_tokens: u32) -> Self {
        GenerateRequest {
            messages,
            max_tokens,
            sampling: Sampling::default(),
            stop: Vec::new(),
            ignore_eos: false,
            continue_reply: false,
        }
    }

    /// The images of all messages, in prompt order.
    pub fn images(&self) -> impl Iterator<Item = &ImageInput> {
        self.messages
            .iter()
            .flat_map(|message| message.images.iter())
    }
}

/// Streamed while a reply is generated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GenerateEvent {
    /// Prompt processing advanced: `done` of `total` new prompt positions are in the cache.
    PrefillProgress { done: u32, total: u32 },
    /// A piece of the reply; always valid UTF-8 on its own.
    Token(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model ended its turn.
    Stop,
    /// A stop string was reached.
    StopString,
    /// `max_tokens` were generated.
    Length,
    /// The context filled up during generation.
    ContextFull,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateOutcome {
    pub finish_reason: FinishReason,
    pub generated_tokens: u32,
    /// Positions of the whole prompt (text tokens plus image embeddings).
    #[serde(default)]
    pub prompt_tokens: u32,
    /// Prompt positions reused from the previous request's cache (not processed again).
    #[serde(default)]
    pub reused_tokens: u32,
    /// Prompt positions processed for this request (`prompt_tokens - reused_tokens`).
    #[serde(default)]
    pub prefilled_tokens: u32,
    /// Images run through the vision encoder for this request (cached ones do not count).
    #[serde(default)]
    pub images_encoded: u32,
    /// Images prepared for the encoder (mtmd's resize and normalisation) for this request;
    /// images whose embeddings the cache already holds are not.
    #[serde(default)]
    pub images_prepared: u32,
    /// Time from the request reaching the worker to the first generated token.
    #[serde(default)]
    pub time_to_first_token_ms: f64,
    /// Prompt processing speed (0 when nothing was prefilled).
    #[serde(default)]
    pub prefill_tokens_per_second: f64,
    /// Generation speed (0 with fewer than two tokens).
    #[serde(default)]
    pub generation_tokens_per_second: f64,
}

impl GenerateOutcome {
    /// An outcome with only a finish reason and a token count (for test doubles).
    pub fn simple(finish_reason: FinishReason, generated_tokens: u32) -> Self {
        GenerateOutcome {
            finish_reason,
            generated_tokens,
            prompt_tokens: 0,
            reused_tokens: 0,
            prefilled_tokens: 0,
            images_encoded: 0,
            images_prepared: 0,
            time_to_first_token_ms: 0.0,
            prefill_tokens_per_second: 0.0,
            generation_tokens_per_second: 0.0,
        }
    }
}

/// Cooperative cancellation shared between the caller and the engine.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What to load and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadOptions {
    pub model_path: PathBuf,
    /// Vision projector for image input.
    #[serde(default)]
    pub mmproj_path: Option<PathBuf>,
    /// Context size in tokens; `None` chooses one from the KV cache's cost and free memory
    /// ([`choose_context_size`]), never the training length itself.
    #[serde(default)]
    pub n_ctx: Option<u32>,
    /// CPU threads; `None` picks [`default_threads`].
    #[serde(default)]
    pub threads: Option<u32>,
    /// Layers to offload to a GPU; `None` offloads all when a GPU backend exists.
    #[serde(default)]
    pub gpu_layers: Option<u32>,
}

impl LoadOptions {
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        LoadOptions {
            model_path: model_path.into(),
            mmproj_path: None,
            n_ctx: None,
            threads: None,
            gpu_layers: None,
        }
    }
}

/// What the worker loaded, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub architecture: String,
    pub n_ctx: u32,
    /// Why the context has `n_ctx` tokens (chosen by the user, or from free memory and by how
    /// much), for the settings screen.
    #[serde(default)]
    pub n_ctx_reason: String,
    pub n_ctx_train: u32,
    pub threads: u32,
    /// Layers llama.cpp put on a GPU, as llama.cpp reported it (0 on the CPU).
    pub gpu_layers: u32,
    /// Layers that can be offloaded: the repeating layers plus the output layer.
    #[serde(default)]
    pub offloadable_layers: u32,
    /// Bytes of weights llama.cpp placed in GPU memory, from its own report (0 on the CPU).
    #[serde(default)]
    pub gpu_weight_bytes: u64,
    /// The GPUs holding weights, as `name (description)`.
    #[serde(default)]
    pub gpu_devices: Vec<String>,
    /// Why the model runs on the CPU although GPU offload was possible or asked for.
    pub cpu_fallback_reason: Option<String>,
    /// `"model"` (the GGUF's own), a built-in template name, or `"plain"`.
    pub chat_template: String,
    pub vision: bool,
}

/// A compute device llama.cpp sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: String,
    pub description: String,
    pub backend: String,
    /// `cpu`, `gpu`, `igpu`, `accel` or `unknown`.
    pub kind: String,
    pub memory_total_bytes: u64,
    pub memory_free_bytes: u64,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Anything that can turn a conversation into a streamed reply.
pub trait Engine: Send + Sync {
    /// Generates a reply, sending pieces to `events` as they are produced. Returns when the
    /// reply ends (stop, length, cancel) or fails; text already sent stays valid either way.
    fn generate(
        &self,
        request: GenerateRequest,
        events: mpsc::UnboundedSender<GenerateEvent>,
        cancel: CancelToken,
    ) -> BoxFuture<'_, Result<GenerateOutcome>>;
}

/// The engine used when no model is loaded: every request fails with a clear message.
#[derive(Debug, Default)]
pub struct NoModelEngine;

impl Engine for NoModelEngine {
    fn generate(
        &self,
        _request: GenerateRequest,
        _events: mpsc::UnboundedSender<GenerateEvent>,
        _cancel: CancelToken,
    ) -> BoxFuture<'_, Result<GenerateOutcome>> {
        Box::pin(async { Err(EngineError::NoModelLoaded) })
    }
}
