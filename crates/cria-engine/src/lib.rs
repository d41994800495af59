//! Running models: the interface every text generator implements, the supervised llama.cpp
//! worker process behind it, and a scripted test double.
//!
//! Architecture Invariant: llama.cpp never runs in the UI process. Callers talk to an
//! [`Engine`]; the llama.cpp implementation forwards requests to a worker process.

mod scripted;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use scripted::ScriptedEngine;

/// Errors a generation can end with. Each says what happened and what the user can do.
#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
pub enum EngineError {
    #[error("No model is loaded. Import a Llama 4 GGUF file or pick one from the catalog.")]
    NoModelLoaded,
    #[error("The engine stopped unexpectedly: {0}")]
    Crashed(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

/// One message of the conversation as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub messages: Vec<ChatMessage>,
    pub max_tokens: u32,
}

/// Streamed while a reply is generated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GenerateEvent {
    /// A piece of the reply; always valid UTF-8 on its own.
    Token(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateOutcome {
    pub finish_reason: FinishReason,
    pub generated_tokens: u32,
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
