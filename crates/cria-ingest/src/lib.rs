//! Turning files a user drops (images, PDFs, office documents, text) into model-ready input.
//!
//! Architecture Invariant: this crate knows nothing of llama.cpp, SQLite or Tauri.

/// Errors from ingesting a file.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("unsupported file type: {0}")]
    Unsupported(String),
}

pub type Result<T> = std::result::Result<T, IngestError>;
