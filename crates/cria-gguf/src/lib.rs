//! Reading, validating and writing GGUF model files without trusting them.
//!
//! Architecture Invariant: this crate knows nothing of llama.cpp and contains no `unsafe`.
//! Every model file passes [`validate`] here before the engine's worker is asked to load it.
#![forbid(unsafe_code)]

/// Errors from reading or validating a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("not a GGUF file (bad magic)")]
    BadMagic,
}

pub type Result<T> = std::result::Result<T, GgufError>;
